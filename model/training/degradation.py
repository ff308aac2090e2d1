"""LongVie 2's degradations (docs/longvie2.md), as pure functions with their statistics tested.

Stage 1 (control):
* feature level: with probability 0.15 a sample's dense features are scaled by ``lambda ~ U[0.05, 1]``
  (:func:`dense_scales`, passed to the DiT as ``control_scales={"dense": lambdas}``);
* data level, probability ~0.1 after a warm-up: Random Scale Fusion (down/up-sample the depth video at scales
  1, 1/2, ..., 1/32, drop one scale at random, blend the rest with random weights summing to 1) or Adaptive Blur
  (average-pool blur with an odd kernel in [3, 15]) (:func:`degrade_dense`).

Stage 2 (degradation): the first frame of a clip is replaced with probability ~0.2 by ``T(I)``: with
probability 0.2 the encoding degradation ``(D o E)^K(I)`` (K up to 10), otherwise (0.8) the generation
degradation: noise the latent to a small timestep ``t < 15`` (of 1000) and denoise it back. Milder levels are
drawn more often (:func:`sample_first_frame_degradation`, :func:`degrade_first_frame`).

Stage 3 (history): boundary loss weights on the first latent frames and the three extra losses
(:func:`history_losses`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

FEATURE_DEGRADATION_P = 0.15
FEATURE_LAMBDA_RANGE = (0.05, 1.0)
DATA_DEGRADATION_P = 0.1
FUSION_SCALES = (1, 2, 4, 8, 16, 32)  # the image is resampled to 1/s of its size
BLUR_KERNELS = (3, 5, 7, 9, 11, 13, 15)
FIRST_FRAME_DEGRADATION_P = 0.2
ENCODING_DEGRADATION_P = 0.2  # of degraded first frames; the other 0.8 get the generation degradation
MAX_ENCODE_DECODE_ROUNDS = 10
MAX_GENERATION_TIMESTEP = 15  # of 1000
BOUNDARY_WEIGHTS = (0.05, 0.325, 0.757)  # first latent frames of a clip; later frames weigh 1
HISTORY_LOSS_WEIGHTS = {"deg": 0.2, "gt": 0.15, "cons": 0.5}


# ---------------------------------------------------------------------------------------------- stage 1


def dense_scales(batch: int, rng: np.random.Generator, p: float = FEATURE_DEGRADATION_P) -> torch.Tensor:
    """Per-sample dense scale ``[B]``: ``U[0.05, 1]`` with probability ``p``, else 1."""
    low, high = FEATURE_LAMBDA_RANGE
    degraded = rng.random(batch) < p
    return torch.from_numpy(np.where(degraded, rng.uniform(low, high, batch), 1.0)).float()


def random_scale_fusion(video: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """``[B, C, F, H, W]``: resample each frame at every scale of :data:`FUSION_SCALES` but one (dropped at
    random), and blend them with random weights that sum to 1."""
    b, c, f, h, w = video.shape
    frames = video.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w).float()
    kept = [s for s in FUSION_SCALES if min(h, w) // s >= 1]
    if len(kept) > 1:
        kept.pop(int(rng.integers(len(kept))))
    weights = rng.dirichlet(np.ones(len(kept)))
    out = torch.zeros_like(frames)
    for weight, scale in zip(weights, kept):
        small = F.interpolate(frames, size=(max(1, h // scale), max(1, w // scale)), mode="area") if scale > 1 else frames
        out += float(weight) * (F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False) if scale > 1 else small)
    return out.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4).to(video.dtype)


def adaptive_blur(video: torch.Tensor, kernel: int) -> torch.Tensor:
    """Average-pool blur of every frame with an odd ``kernel`` (stride 1, edges replicated)."""
    if kernel % 2 == 0 or kernel < 1:
        raise ValueError(f"blur kernel must be odd and positive, got {kernel}")
    b, c, f, h, w = video.shape
    frames = video.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w).float()
    pad = kernel // 2
    blurred = F.avg_pool2d(F.pad(frames, (pad, pad, pad, pad), mode="replicate"), kernel, stride=1)
    return blurred.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4).to(video.dtype)


def degrade_dense(video: torch.Tensor, rng: np.random.Generator, p: float = DATA_DEGRADATION_P) -> tuple[torch.Tensor, str]:
    """Data-level degradation of a dense control video ``[B, C, F, H, W]`` (each sample on its own):
    with probability ``p`` Random Scale Fusion or Adaptive Blur (even odds). Returns the video and what was done."""
    out, done = [], []
    for sample in video.split(1):
        if rng.random() >= p:
            out.append(sample), done.append("none")
        elif rng.random() < 0.5:
            out.append(random_scale_fusion(sample, rng)), done.append("fusion")
        else:
            kernel = int(rng.choice(BLUR_KERNELS))
            out.append(adaptive_blur(sample, kernel)), done.append(f"blur{kernel}")
    return torch.cat(out), ",".join(done)


# ---------------------------------------------------------------------------------------------- stage 2


@dataclass(frozen=True)
class FirstFrameDegradation:
    """What :func:`degrade_first_frame` does to one first frame: ``kind`` is "none", "encoding" (``level`` =
    rounds of decode(encode)) or "generation" (``level`` = timestep of 1000 noised to and denoised from)."""

    kind: str
    level: int = 0


def _mild_first(rng: np.random.Generator, high: int) -> int:
    """An integer in [1, high] with P(k) proportional to 1/k: milder levels more often."""
    levels = np.arange(1, high + 1)
    probabilities = (1.0 / levels) / np.sum(1.0 / levels)
    return int(rng.choice(levels, p=probabilities))


def sample_first_frame_degradation(rng: np.random.Generator, p: float = FIRST_FRAME_DEGRADATION_P) -> FirstFrameDegradation:
    if rng.random() >= p:
        return FirstFrameDegradation("none")
    if rng.random() < ENCODING_DEGRADATION_P:
        return FirstFrameDegradation("encoding", _mild_first(rng, MAX_ENCODE_DECODE_ROUNDS))
    return FirstFrameDegradation("generation", _mild_first(rng, MAX_GENERATION_TIMESTEP - 1))


def degrade_first_frame(
    latent: torch.Tensor,
    degradation: FirstFrameDegradation,
    encode: Callable[[torch.Tensor], torch.Tensor],
    decode: Callable[[torch.Tensor], torch.Tensor],
    denoise: Callable[[torch.Tensor, float], torch.Tensor],
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Apply ``T`` to a first-frame latent ``[B, 16, 1, h, w]`` and return the degraded latent.

    ``encode``/``decode`` map latents to frames and back (the VAE); ``denoise(noisy_latent, sigma)`` runs the
    model from noise level ``sigma`` back to a clean latent.
    """
    if degradation.kind == "none":
        return latent
    if degradation.kind == "encoding":
        for _ in range(degradation.level):
            latent = encode(decode(latent))
        return latent
    if degradation.kind == "generation":
        sigma = degradation.level / 1000.0
        noise = torch.randn(latent.shape, generator=generator, dtype=latent.dtype)
        return denoise((1.0 - sigma) * latent + sigma * noise, sigma)
    raise ValueError(f"unknown first-frame degradation {degradation.kind!r}")


# ---------------------------------------------------------------------------------------------- stage 3


def boundary_weights(latent_frames: int) -> torch.Tensor:
    """Per-latent-frame loss weights ``[T]``: small on the first frames after the history, then 1."""
    weights = torch.ones(latent_frames)
    n = min(latent_frames, len(BOUNDARY_WEIGHTS))
    weights[:n] = torch.tensor(BOUNDARY_WEIGHTS[:n])
    return weights


def lowpass(latent: torch.Tensor, factor: int = 4) -> torch.Tensor:
    """Low frequencies of ``[B, C, T, h, w]`` latents: area-downsample by ``factor``, then upsample back."""
    b, c, t, h, w = latent.shape
    frames = latent.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
    small = F.interpolate(frames, size=(max(1, h // factor), max(1, w // factor)), mode="area")
    smooth = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return smooth.reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4)


def highpass(latent: torch.Tensor, factor: int = 4) -> torch.Tensor:
    return latent - lowpass(latent, factor)


def history_losses(
    predicted: torch.Tensor, ground_truth: torch.Tensor, degraded_first: torch.Tensor, history: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    """LongVie 2's Stage-3 terms on the first latent frame of the predicted clean latent ``z_hat``:

    * ``deg``: low frequencies follow the degraded first frame, ``|| lowpass(z~_I[0]) - lowpass(z_hat[0]) ||^2``;
    * ``gt``: high frequencies follow the clean ground truth, ``|| highpass(z_gt[0]) - highpass(z_hat[0]) ||^2``;
    * ``cons``: the first generated latent continues the history, ``|| z_H[-1] - z_hat[0] ||^2``, where ``z_H[-1]``
      is the shared first frame encoded alone: a history ``[B, C, 1, h, w]`` (one pixel frame, N_H = 1). 0 without
      history and for a longer one, whose last latent the causal VAE encodes from a 4-frame chunk: another
      encoding of other frames, which L_cons pulled ``z_hat[0]`` towards (1-3 against 0.05-0.25 at N_H = 1 in the
      history stage's log, model/shipped/training_log.jsonl), off the first frame that ``deg`` and ``gt`` hold it to.
    """
    first = predicted[:, :, :1].float()
    out = {
        "deg": (lowpass(degraded_first.float()) - lowpass(first)).square().mean(),
        "gt": (highpass(ground_truth[:, :, :1].float()) - highpass(first)).square().mean(),
    }
    single = history is not None and history.shape[2] == 1
    out["cons"] = (history.float() - first).square().mean() if single else first.new_zeros(())
    return out


def weighted_history_loss(diffusion: torch.Tensor, terms: dict[str, torch.Tensor]) -> torch.Tensor:
    """``L = L_diffusion + 0.2 L_deg + 0.15 L_gt + 0.5 L_cons``."""
    return diffusion + sum(HISTORY_LOSS_WEIGHTS[k] * terms[k] for k in HISTORY_LOSS_WEIGHTS)
