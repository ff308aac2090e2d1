"""Frame metrics, one definition for training and evaluation alike.

* Metrics take uint8 frames (``[..., H, W, 3]``) with a data range of 255. :func:`psnr` pools the squared error
  over all the frames and pixels it is given (one MSE, one PSNR), not a mean of per-frame PSNRs; it is inf for
  identical frames and NaN for an empty mask. Training logs, which must stay finite JSON, clamp it themselves
  (:data:`PSNR_LOG_CEILING`).
* SSIM is the standard one (Wang et al. 2004): Gaussian window 11x11, sigma 1.5, K1 = 0.01, K2 = 0.03, weighted
  (population) moments, computed on each RGB channel separately and averaged over channels, window positions
  that fit entirely inside the image ("valid"), and frames.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03
PSNR_LOG_CEILING = 100.0  # dB: what a training log writes for identical frames (JSON has no inf)


def _check_frames(a: np.ndarray, b: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as uint8 of one shape: a float image in [0, 1] would silently score as black, so refuse it."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != np.uint8 or b.dtype != np.uint8:
        raise ValueError(f"{what} takes uint8 frames (range 0..255), got {a.dtype} and {b.dtype}")
    if a.shape != b.shape:
        raise ValueError(f"{what} needs frames of one shape, got {a.shape} and {b.shape}")
    return a, b


def _pixel_mask(mask: np.ndarray | None, frames: np.ndarray) -> np.ndarray | None:
    """A boolean ``mask`` shaped ``[F, H, W]`` (or ``[H, W]``, the same pixels in every frame) broadcast to
    ``frames.shape[:-1]``; a mask of another shape or type raises."""
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise ValueError(f"mask must be boolean, got {mask.dtype}")
    if mask.shape not in (frames.shape[:-1], frames.shape[-3:-1]):
        raise ValueError(f"mask must be shaped {frames.shape[:-1]} or {frames.shape[-3:-1]} for frames "
                         f"{frames.shape}, got {mask.shape}")
    return np.broadcast_to(mask, frames.shape[:-1])


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB between uint8 frames ``[..., H, W, 3]``: ``10 log10(255^2 / MSE)``, inf when identical.

    ``mask`` (boolean) restricts the score to some pixels (all their channels): shaped like the frames without
    the channel axis (``[F, H, W]``) or ``[H, W]`` (the same pixels in every frame). NaN when the mask is empty,
    so that "no such pixels" never reads as a score.
    """
    a, b = _check_frames(a, b, "psnr")
    if a.ndim < 3 or a.shape[-1] != 3:
        raise ValueError(f"psnr expects frames [..., H, W, 3], got shape {a.shape}")
    error = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    if mask is None:
        mse = float(error.mean())
    else:
        mask = _pixel_mask(mask, a)
        count = int(mask.sum())
        if count == 0:
            return math.nan
        mse = float(error[mask].sum() / (3 * count))
    if mse == 0.0:
        return math.inf
    return float(10.0 * np.log10(255.0**2 / mse))


def _gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """The normalised 1-D Gaussian whose outer product is SSIM's window."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM at every valid window position of every frame and channel: ``[N, 3, H - 10, W - 10]`` (float64).

    Frames are ``[H, W, 3]`` or ``[F, H, W, 3]`` uint8. The Gaussian window is separable, so two 1-D
    convolutions (torch, float64) replace the 11x11 one.
    """
    a, b = _check_frames(a, b, "ssim")
    if a.ndim not in (3, 4) or a.shape[-1] != 3:
        raise ValueError(f"ssim expects frames [H, W, 3] or [F, H, W, 3], got shape {a.shape}")
    h, w = a.shape[-3:-1]
    if h < SSIM_WINDOW or w < SSIM_WINDOW:
        raise ValueError(f"ssim needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {h}x{w}")

    def planes(x: np.ndarray) -> torch.Tensor:  # [N, H, W, 3] -> [N * 3, 1, H, W]
        t = torch.from_numpy(x.reshape(-1, h, w, 3).astype(np.float64)).permute(0, 3, 1, 2)
        return t.reshape(-1, 1, h, w)

    g = torch.from_numpy(_gaussian_window())
    gy, gx = g.view(1, 1, -1, 1), g.view(1, 1, 1, -1)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(torch.nn.functional.conv2d(x, gy), gx)

    with torch.no_grad():
        x, y = planes(a), planes(b)
        mu_x, mu_y = blur(x), blur(y)
        var_x = blur(x * x) - mu_x * mu_x
        var_y = blur(y * y) - mu_y * mu_y
        cov = blur(x * y) - mu_x * mu_y
        c1, c2 = (SSIM_K1 * 255.0) ** 2, (SSIM_K2 * 255.0) ** 2
        value = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2))
    return value.reshape(-1, 3, h - SSIM_WINDOW + 1, w - SSIM_WINDOW + 1).numpy()


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean SSIM of uint8 frames ``[H, W, 3]`` or ``[F, H, W, 3]``: over RGB channels, valid windows and frames.

    1.0 for identical frames. Channels are scored separately (not on luminance), so colour errors count.
    ``mask`` (boolean ``[F, H, W]`` or ``[H, W]``) keeps the windows that are mostly its pixels (at least half of
    the window's Gaussian weight), so a thin masked region is not scored by the pixels around it; NaN if none is.
    """
    values = ssim_map(a, b)
    mask = _pixel_mask(mask, np.asarray(a))
    if mask is None:
        return float(values.mean())
    h, w = mask.shape[-2:]
    g = torch.from_numpy(_gaussian_window())
    share = torch.from_numpy(mask.reshape(-1, 1, h, w).astype(np.float64))
    share = torch.nn.functional.conv2d(torch.nn.functional.conv2d(share, g.view(1, 1, -1, 1)), g.view(1, 1, 1, -1))
    windows = share[:, 0].numpy() >= 0.5  # [N, h', w'], one per valid window
    if not windows.any():
        return math.nan
    return float(values.transpose(0, 2, 3, 1)[windows].mean())



def mean_defined(values: Sequence[float]) -> float:
    """Mean over the defined (non-NaN) values; inf stays inf; NaN when none is defined."""
    defined = [v for v in values if not math.isnan(v)]
    return float(np.mean(defined)) if defined else math.nan


def mean_finite(values: Sequence[float]) -> float:
    """Mean over the finite values (inf and NaN left out); NaN when none is finite."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def psnr_finite(a: np.ndarray, b: np.ndarray) -> float:
    """:func:`psnr` capped at :data:`PSNR_LOG_CEILING`, for training logs and means (identical frames are not inf)."""
    return min(psnr(a, b), PSNR_LOG_CEILING)


def gradient_energy(frames: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean squared spatial gradient of uint8 frames ``[..., H, W, 3]`` (grey levels squared): what blur removes.
    ``mask`` (boolean, the frames' shape without channels, or ``[H, W]``): only differences between two
    neighbours both in it; NaN if there are none."""
    x = np.asarray(frames).astype(np.float64)
    if mask is None:
        return float(np.mean(np.diff(x, axis=-3) ** 2) + np.mean(np.diff(x, axis=-2) ** 2))
    mask = _pixel_mask(mask, x)
    pairs_y, pairs_x = mask[..., 1:, :] & mask[..., :-1, :], mask[..., :, 1:] & mask[..., :, :-1]
    if not (pairs_y.any() and pairs_x.any()):
        return math.nan
    return float(np.mean(np.diff(x, axis=-3)[pairs_y] ** 2) + np.mean(np.diff(x, axis=-2)[pairs_x] ** 2))


def sharpness_ratio(frames: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """The frames' gradient energy over the truth's: 1 as sharp as the truth, toward 0 as frames turn to blobs.
    PSNR rewards blur; this falls with it, and needs no downloaded weights. ``mask``: as :func:`gradient_energy`."""
    frames, truth = _check_frames(frames, truth, "sharpness_ratio")
    reference = gradient_energy(truth, mask)
    return gradient_energy(frames, mask) / reference if reference > 0 else math.nan


MIN_DEPTH = 1e-3  # metres; depth below this (or non-finite) is not a valid target


def depth_metrics(prediction: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """AbsRel and ``delta < 1.25``, median-scaled and unscaled (metric depth: what a point cache takes), of depth
    maps ``[N, H, W]``.

    Median scaling is per image: the prediction is multiplied by ``median(target) / median(prediction)`` over
    the image's valid pixels. Metrics are averaged over pixels of each image, then over images.
    """
    prediction = np.asarray(prediction, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if prediction.shape != target.shape or prediction.ndim != 3:
        raise ValueError(
            f"expected prediction and target of one shape [N, H, W], got {prediction.shape} and {target.shape}"
        )
    rows = []
    for p, t in zip(prediction, target):
        mask = np.isfinite(t) & (t > MIN_DEPTH) & np.isfinite(p) & (p > 0)
        if not mask.any():
            continue
        p, t = p[mask], t[mask]
        scaled = p * (np.median(t) / np.median(p))
        ratio = np.maximum(scaled / t, t / scaled)
        unscaled = np.maximum(p / t, t / p)
        rows.append((np.mean(np.abs(scaled - t) / t), np.mean(np.abs(p - t) / t), np.mean(ratio < 1.25),
                     np.mean(unscaled < 1.25)))
    if not rows:
        raise ValueError("no valid pixels to evaluate: every target depth is non-finite or <= 1 mm")
    abs_rel, abs_rel_unscaled, delta1, delta1_unscaled = np.mean(rows, axis=0)
    return {"abs_rel": float(abs_rel), "abs_rel_unscaled": float(abs_rel_unscaled), "delta1": float(delta1),
            "delta1_unscaled": float(delta1_unscaled)}
