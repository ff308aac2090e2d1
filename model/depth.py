"""Monocular depth estimators: RGB frames -> per-pixel depth, for worlds whose geometry is not known.

The dense control signal of LongVie 2 is a depth video. The procedural worlds render exact depth, but a world
given only as images (a photo, a video, a game without a depth buffer) needs its depth estimated. Every
estimator here has one contract (:class:`DepthEstimator`): uint8 frames ``[N, H, W, 3]`` -> float32 depth
``[N, H, W]``, positive, larger = farther. The scale differs by estimator -- callers normalise depth with
global percentiles (p5/p95 of a sequence, see ``lv2_env.signals.control``), so only the ordering and the ratios matter:

* :class:`TinyDepthEstimator` wraps :class:`TinyDepthNet`, a few-hundred-K-parameter U-Net trained on the
  procedural worlds (``lv2 train depth``); its depth is **metric** (metres), as the training targets are.
* :class:`DepthAnythingEstimator` runs Depth Anything (V1 or V2) through ``transformers`` from a local
  directory; its depth is **relative** (a per-call normalised inverse of the predicted disparity), unless the
  checkpoint is one of the metric fine-tunes (``depth_estimation_type == "metric"``), whose metres are kept.

:func:`load_depth_estimator` picks the class from a directory's ``config.json``. ``transformers`` is an optional
dependency (``pip install "lv2[full]"``, see :mod:`model.hf`), imported only by the Depth Anything loader. Every
loader reads local paths only (``local_files_only=True``): nothing here downloads weights.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from model.checkpoint_files import build_from_config, check_weights_file, read_json_object, state_shapes
from model.hf import FULL_EXTRA_ADVICE, import_transformers, load_local_model

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
TINY_KIND = "lv2-tiny-depth"
# Log-depth predictions are clamped to [1 mm, 10 km] before exp(): positive, finite, and far beyond any scene.
LOG_DEPTH_RANGE = (math.log(1e-3), math.log(1e4))
# What a TinyDepthNet's config.json must hold, and the types of the TinyDepthConfig fields it may hold.
TINY_CONFIG_REQUIRED: dict[str, type] = {"kind": str}
TINY_CONFIG_OPTIONAL: dict[str, type] = {"channels": list, "groups": int, "init_log_depth": float}


@runtime_checkable
class DepthEstimator(Protocol):
    """What the environments need from a depth estimator."""

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """uint8 ``[N, H, W, 3]`` -> float32 ``[N, H, W]`` positive depth, larger = farther (scale: see the class)."""
        ...


def check_frames(frames: np.ndarray) -> np.ndarray:
    """Frames as a uint8 ``[N, H, W, 3]`` array; a single ``[H, W, 3]`` frame is refused (ambiguous batching)."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames [N, H, W, 3], got dtype {frames.dtype}")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames [N, H, W, 3], got shape {tuple(frames.shape)}")
    return frames


def frames_to_images(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` -> float ``[N, 3, H, W]`` in ``[-1, 1]`` (the TinyDepthNet's input)."""
    x = torch.as_tensor(frames)
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames [N, H, W, 3], got {x.dtype} {tuple(x.shape)}")
    return x.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


# ---------------------------------------------------------------------------------------------------- tiny net


@dataclass
class TinyDepthConfig:
    """Shape of a :class:`TinyDepthNet`; saved as its ``config.json``."""

    channels: list[int] = field(default_factory=lambda: [16, 32, 64, 128])  # per resolution, full to 1/8
    groups: int = 8  # GroupNorm groups (each width must be a multiple)
    init_log_depth: float = math.log(10.0)  # the head's initial bias: start from a plausible 10 m everywhere

    def __post_init__(self) -> None:
        self.channels = [int(c) for c in self.channels]
        if len(self.channels) < 2:
            raise ValueError(f"TinyDepthNet needs at least two resolutions, got channels {self.channels}")
        bad = [c for c in self.channels if c < 1 or c % self.groups]
        if bad:
            raise ValueError(f"every channel width must be a positive multiple of groups={self.groups}, got {bad}")


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, channels)


class _ConvBlock(nn.Module):
    """conv3x3 -> GN -> SiLU -> conv3x3 -> GN -> SiLU, the first conv optionally strided (downsampling)."""

    def __init__(self, c_in: int, c_out: int, groups: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), _norm(c_out, groups), nn.SiLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1), _norm(c_out, groups), nn.SiLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class TinyDepthNet(nn.Module):
    """A small U-Net predicting log-depth (log metres) per pixel from one RGB frame.

    Strided 3x3 convolutions halve the resolution ``len(channels) - 1`` times; bilinear upsampling plus the
    skip connection of the same resolution brings it back. GroupNorm (not BatchNorm) so that training batches
    of a few crops and single-frame inference behave the same, and so that ``train()``/``eval()`` change
    nothing. Log-depth is the output because scene depth spans two orders of magnitude (0.5 m .. the 150 m
    sky): errors in log space are relative errors, which is what the percentile normalisation downstream keeps.
    Any input size works: frames are padded (replicate) to a multiple of ``2 ** (levels - 1)`` and the output
    cropped back.
    """

    def __init__(self, config: TinyDepthConfig | None = None) -> None:
        super().__init__()
        self.config = config or TinyDepthConfig()
        c, g = self.config.channels, self.config.groups
        self.stem = _ConvBlock(3, c[0], g)
        self.down = nn.ModuleList(_ConvBlock(c[i], c[i + 1], g, stride=2) for i in range(len(c) - 1))
        self.up = nn.ModuleList(_ConvBlock(c[i + 1] + c[i], c[i], g) for i in reversed(range(len(c) - 1)))
        self.head = nn.Conv2d(c[0], 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.constant_(self.head.bias, self.config.init_log_depth)

    @property
    def multiple(self) -> int:
        """Input sizes are padded to a multiple of this."""
        return 2 ** (len(self.config.channels) - 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` in ``[-1, 1]`` -> log-depth ``[B, H, W]``."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images [B, 3, H, W], got {tuple(images.shape)}")
        h, w = images.shape[-2:]
        m = self.multiple
        pad_h, pad_w = (-h) % m, (-w) % m
        x = F.pad(images, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else images
        skips = [self.stem(x)]  # [B, c0, H, W]
        for block in self.down:
            skips.append(block(skips[-1]))  # [B, c_{i+1}, H / 2^(i+1), W / 2^(i+1)]
        x = skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)[:, 0, :h, :w]  # [B, H, W]

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (float32) into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {"kind": TINY_KIND, **asdict(self.config)}
        (directory / CONFIG_NAME).write_text(json.dumps(config, indent=1))
        state = {k: v.detach().float().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_NAME))
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "TinyDepthNet":
        """Read a directory written by :meth:`save_pretrained` (in eval mode, float32).

        Both files are checked before the weights are read: a config that is not valid JSON, lacks ``kind`` or
        holds values that build no network raises ValueError naming it, and weights with a missing, extra or
        wrongly shaped tensor raise :class:`~model.checkpoint_files.CheckpointWeightsError` naming the file and
        the keys.
        """
        directory = Path(directory)
        config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
        if not config_path.is_file() or not weights_path.is_file():
            raise ValueError(
                f"{str(directory)!r} is not a TinyDepthNet directory: expected {CONFIG_NAME} and {WEIGHTS_NAME} "
                f"(written by `lv2 train depth` under final/depth)"
            )
        config = read_json_object(config_path, "a TinyDepthNet's config", TINY_CONFIG_REQUIRED, TINY_CONFIG_OPTIONAL)
        kind = config.pop("kind")
        if kind != TINY_KIND:
            raise ValueError(f"{config_path}: expected kind {TINY_KIND!r}, got {kind!r}")
        net = build_from_config(lambda: cls(TinyDepthConfig(**config)), config_path, "a TinyDepthNet")
        files = check_weights_file(directory, WEIGHTS_NAME, state_shapes(net), f"the TinyDepthNet that {config_path} builds")
        net.load_state_dict({key: tensor for path in files for key, tensor in load_file(str(path)).items()})
        return net.eval()


class TinyDepthEstimator:
    """A :class:`TinyDepthNet` as a :class:`DepthEstimator`: metric depth in metres, ``exp`` of its log-depth.

    Inference runs without gradients and in the network's own dtype (float32 as trained and loaded) even inside
    an ambient autocast (a training loop's bf16 evaluation), so the same frames always give the same depth. The
    network has no mode-dependent layers, so its train/eval mode is left as the caller set it.
    """

    def __init__(self, net: TinyDepthNet, batch_size: int = 16) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.net = net
        self.batch_size = batch_size

    @classmethod
    def from_pretrained(cls, directory: str | Path, batch_size: int = 16) -> "TinyDepthEstimator":
        return cls(TinyDepthNet.from_pretrained(directory), batch_size=batch_size)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        frames = check_frames(frames)
        n, h, w, _ = frames.shape
        parameter = next(self.net.parameters())
        device, dtype = parameter.device, parameter.dtype
        out = np.empty((n, h, w), dtype=np.float32)
        with torch.no_grad(), torch.autocast(device_type=device.type, enabled=False):
            for start in range(0, n, self.batch_size):
                images = frames_to_images(frames[start : start + self.batch_size]).to(device, dtype)  # [b, 3, H, W]
                log_depth = self.net(images).float().clamp(*LOG_DEPTH_RANGE)  # [b, H, W]
                out[start : start + len(images)] = log_depth.exp().cpu().numpy()
        return out


# ---------------------------------------------------------------------------------------------------- Depth Anything


class DepthAnythingEstimator:
    """Depth Anything (V1/V2) as a :class:`DepthEstimator`, read from a local ``transformers`` directory.

    Depth Anything's relative models predict *affine-invariant inverse depth* (disparity up to an unknown scale
    and shift). To turn that into a positive depth, the disparity of all frames of one call is min-max
    normalised **jointly** to ``[eps, 1]`` (removing the unknown shift and scale, with one normalisation per
    call so that the frames of a clip stay comparable), then inverted: ``depth = 1 / max(disparity, eps)``.
    Depth is therefore relative, in ``[1, 1 / eps]``: the nearest pixel of the call is at 1, and anything at
    (predicted) infinity -- the sky -- at ``1 / eps``, a bounded far plane rather than a division by zero.
    ``eps = 0.01`` makes that far plane 100x the nearest point, the procedural worlds' ratio of sky distance
    (150 m) to a near object (~1.5 m). Metric fine-tunes (``depth_estimation_type == "metric"``) already
    predict metres; their output is only clamped to ``>= eps``.

    Pre-processing is the directory's image processor (``preprocessor_config.json``: resize to a multiple of
    14, ImageNet normalisation); the prediction is resized back to the input size bilinearly.
    """

    def __init__(self, model: Any, processor: Any, batch_size: int = 8, eps: float = 0.01) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0.0 < eps < 1.0:
            raise ValueError(f"eps must be in (0, 1), got {eps}")
        self.model = model.eval()
        self.processor = processor
        self.batch_size = batch_size
        self.eps = eps
        self.metric = getattr(model.config, "depth_estimation_type", "relative") == "metric"

    @classmethod
    def from_pretrained(
        cls,
        directory: str | Path,
        batch_size: int = 8,
        eps: float = 0.01,
        device: str | torch.device | None = None,
        torch_dtype: torch.dtype | None = None,
    ) -> "DepthAnythingEstimator":
        """Load ``AutoModelForDepthEstimation`` + ``AutoImageProcessor`` from ``directory`` (local files only).

        ``torch_dtype``: None is float32 (:func:`model.hf.dtype_kwargs`).
        """
        transformers = import_transformers("Depth Anything")
        directory = Path(directory)
        if not (directory / CONFIG_NAME).is_file():
            raise ValueError(f"{str(directory)!r} is not a Depth Anything directory: expected {CONFIG_NAME} in it")
        if not (directory / "preprocessor_config.json").is_file():
            raise ValueError(
                f"{str(directory)!r} has no preprocessor_config.json: Depth Anything needs its image processor "
                f"(resize to a multiple of 14, ImageNet normalisation) saved beside the model"
            )
        if not hasattr(transformers, "DepthAnythingForDepthEstimation"):
            raise ImportError(
                f"transformers {transformers.__version__} has no Depth Anything (added in 4.38): {FULL_EXTRA_ADVICE}"
            )
        model = load_local_model(transformers.AutoModelForDepthEstimation, directory, torch_dtype, device)
        processor = transformers.AutoImageProcessor.from_pretrained(str(directory), local_files_only=True)
        return cls(model, processor, batch_size=batch_size, eps=eps)

    @torch.no_grad()
    def predict(self, frames: np.ndarray) -> np.ndarray:
        """The network's raw output at the input size, float32 ``[N, H, W]``: disparity (metres if metric)."""
        frames = check_frames(frames)
        n, h, w, _ = frames.shape
        parameter = next(self.model.parameters())
        out = np.empty((n, h, w), dtype=np.float32)
        for start in range(0, n, self.batch_size):
            chunk = frames[start : start + self.batch_size]
            inputs = self.processor(images=list(chunk), return_tensors="pt")
            pixels = inputs["pixel_values"].to(device=parameter.device, dtype=parameter.dtype)  # [b, 3, h', w']
            predicted = self.model(pixel_values=pixels).predicted_depth.float()  # [b, h', w']
            resized = F.interpolate(predicted[:, None], size=(h, w), mode="bilinear", align_corners=False)[:, 0]
            out[start : start + len(chunk)] = resized.cpu().numpy()
        return out

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        raw = self.predict(frames)  # [N, H, W]
        if self.metric:
            return np.maximum(raw, self.eps).astype(np.float32)
        return disparity_to_depth(raw, self.eps)


def disparity_to_depth(disparity: np.ndarray, eps: float = 0.01) -> np.ndarray:
    """Affine-invariant disparity (any shape) -> relative depth in ``[1, 1 / eps]``, jointly over the array.

    The disparity is min-max normalised to ``[eps, 1]`` over the whole array, then inverted. A constant
    disparity (no depth cue at all) gives depth 1 everywhere rather than a division by zero.
    """
    d = np.asarray(disparity, dtype=np.float64)
    if d.size == 0:
        return d.astype(np.float32)
    low, high = float(np.min(d)), float(np.max(d))
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"disparity must be finite, got range [{low}, {high}]")
    if high - low <= 1e-12 * max(1.0, abs(high)):
        return np.ones(d.shape, dtype=np.float32)
    normalised = eps + (1.0 - eps) * (d - low) / (high - low)  # [eps, 1]
    return (1.0 / np.maximum(normalised, eps)).astype(np.float32)


# ---------------------------------------------------------------------------------------------------- loading


def load_depth_estimator(directory: str | Path, batch_size: int = 8, **kwargs: Any) -> DepthEstimator:
    """The estimator saved in ``directory``: a TinyDepthNet (``kind`` in its config) or a Depth Anything model.

    ``kwargs`` go to :meth:`DepthAnythingEstimator.from_pretrained` (``eps``, ``device``, ``torch_dtype``).
    """
    directory = Path(directory)
    config_path = directory / CONFIG_NAME
    if not config_path.is_file():
        raise ValueError(f"{str(directory)!r} is not a depth model directory: expected {CONFIG_NAME} in it")
    config = read_json_object(config_path, "a depth model's config")
    if config.get("kind") == TINY_KIND:
        return TinyDepthEstimator.from_pretrained(directory, batch_size=batch_size)
    if config.get("model_type") == "depth_anything":
        return DepthAnythingEstimator.from_pretrained(directory, batch_size=batch_size, **kwargs)
    raise ValueError(
        f"{config_path}: expected a TinyDepthNet (kind {TINY_KIND!r}) or a Depth Anything model "
        f"(model_type 'depth_anything'), got kind {config.get('kind')!r}, model_type {config.get('model_type')!r}"
    )
