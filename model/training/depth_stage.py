"""Stage ``depth``: train the :class:`~model.depth.TinyDepthNet` monocular depth estimator on procedural clips.

The procedural worlds render exact metric depth beside every frame, so a small network can learn depth from
RGB for worlds given only as images (no pretrained Depth Anything on disk, or no ``transformers``). Training
samples are single frames (depth is estimated frame by frame) drawn at random from random clips, with random
square crops and horizontal flips (a flipped frame is as plausible a view; its depth flips with it).

Loss, on log depth ``d = log(pred) - log(gt)`` over every pixel -- the sky included: it is at the scene's far
distance (150 m), a real target that teaches "far" rather than a hole:

* the scale-invariant log loss of Eigen et al. (2014), ``mean(d^2) - lambda * mean(d)^2`` per image with
  ``lambda = 0.5``: half of it ignores a global scale error, so structure is learnt even while the overall
  scale is still wrong;
* plus an L1 on ``d``, which anchors the absolute (metric) scale and is robust to the sharp depth edges.

With ``generated_data`` (``lv2 data generated-frames``: the world model's own frames beside the scene's exact
depth), a share of every batch (``generated_share``) comes from it, for a world from a picture that takes depth from
the model's frames (``PointCache(key_frames=True)``). Measured in docs/results.md: it made the network worse on
rendered and generated frames alike, so the shipped network is trained on rendered frames alone.

Evaluation on held-out frames of an eval directory reports AbsRel and ``delta < 1.25`` after per-image median
scaling (the standard protocol for monocular depth, measuring structure; callers normalise depth by percentiles
anyway), and AbsRel unscaled (does the metric scale hold?); with ``generated_eval_data``, the same on held-out
generated frames (``eval/generated_*``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from model.metrics import MIN_DEPTH, depth_metrics
from model.depth import (
    LOG_DEPTH_RANGE,
    DepthEstimator,
    TinyDepthConfig,
    TinyDepthEstimator,
    TinyDepthNet,
    frames_to_images,
)
from model.clips import ClipDataset



@dataclass
class DepthStageConfig:
    batch_size: int = 16
    crop: int = 64  # square training crops; 0 trains on whole frames
    flip: bool = True  # random horizontal flips
    si_lambda: float = 0.5  # Eigen et al.'s lambda: 0 = plain log MSE, 1 = fully scale-invariant
    l1_weight: float = 1.0  # weight of the L1 on log depth beside the scale-invariant loss
    eval_frames: int = 64  # held-out frames evaluated, spread evenly over the eval clips
    cached_clips: int = 256  # decoded clips kept in memory (a 128x128x17 clip is ~1.4 MB)
    generated_share: float = 0.5  # with generated data: the share of each batch drawn from it
    net: TinyDepthConfig = field(default_factory=TinyDepthConfig)

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.eval_frames < 1:
            raise ValueError(f"batch_size and eval_frames must be >= 1, got {self.batch_size} and {self.eval_frames}")
        if self.crop < 0 or 0 < self.crop < 8:
            raise ValueError(f"crop must be 0 (whole frames) or >= 8 pixels, got {self.crop}")
        if not 0.0 <= self.si_lambda <= 1.0:
            raise ValueError(f"si_lambda must be in [0, 1], got {self.si_lambda}")
        if not 0.0 <= self.generated_share <= 1.0:
            raise ValueError(f"generated_share must be in [0, 1], got {self.generated_share}")


def valid_depth(depth: torch.Tensor) -> torch.Tensor:
    """Pixels whose ground truth is a usable target (finite and above :data:`MIN_DEPTH`)."""
    return torch.isfinite(depth) & (depth > MIN_DEPTH)


class DepthObjective(nn.Module):
    """``forward(images, depth)`` -> ``(loss, metrics)``: scale-invariant log loss + L1 on log depth.

    ``images`` ``[B, 3, H, W]`` in ``[-1, 1]``; ``depth`` ``[B, H, W]`` metres. The loss is computed in float32
    whatever the autocast dtype of the network.
    """

    def __init__(self, net: TinyDepthNet, si_lambda: float = 0.5, l1_weight: float = 1.0) -> None:
        super().__init__()
        self.net = net
        self.si_lambda = si_lambda
        self.l1_weight = l1_weight

    def forward(self, images: torch.Tensor, depth: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        prediction = self.net(images).float()  # [B, H, W] log metres
        valid = valid_depth(depth.float())  # [B, H, W]
        depth = torch.where(valid, depth.float(), torch.ones_like(depth, dtype=torch.float32))  # invalid: masked out
        mask = valid.float()
        target = depth.log()
        d = (prediction - target) * mask
        count = mask.flatten(1).sum(1).clamp_min(1.0)  # [B]
        mean_d = d.flatten(1).sum(1) / count  # [B]
        mean_d2 = d.square().flatten(1).sum(1) / count  # [B]
        scale_invariant = (mean_d2 - self.si_lambda * mean_d.square()).mean()
        l1 = (d.abs().flatten(1).sum(1) / count).mean()
        loss = scale_invariant + self.l1_weight * l1
        with torch.no_grad():
            relative = ((prediction.clamp(*LOG_DEPTH_RANGE).exp() - depth).abs() / depth) * mask
            abs_rel = (relative.flatten(1).sum(1) / count).mean()
        return loss, {"si": scale_invariant.detach(), "l1": l1.detach(), "abs_rel": abs_rel}


def held_out_frames(dataset: ClipDataset, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` frames spread evenly over all frames of all clips: uint8 rgb ``[n, H, W, 3]``, depth ``[n, H, W]``."""
    frames_per_clip = int(dataset.index["frames"])
    total = len(dataset) * frames_per_clip
    picks = np.unique(np.linspace(0, total - 1, min(count, total)).round().astype(int))
    rgb, depth = [], []
    for clip_index in np.unique(picks // frames_per_clip):
        clip = dataset[int(clip_index)]
        frames = picks[picks // frames_per_clip == clip_index] % frames_per_clip
        rgb.append(clip["rgb"][frames])
        depth.append(clip["depth"][frames].astype(np.float32))
    return np.concatenate(rgb), np.concatenate(depth)


def evaluate_estimator(estimator: DepthEstimator, rgb: np.ndarray, depth: np.ndarray) -> dict[str, float]:
    """:func:`depth_metrics` of ``estimator`` on frames ``rgb`` ``[N, H, W, 3]`` against ``depth`` ``[N, H, W]``."""
    prediction = estimator(rgb)
    if prediction.shape != depth.shape:
        raise ValueError(
            f"the estimator returned depth {prediction.shape} for frames {rgb.shape}; expected {depth.shape}"
        )
    return depth_metrics(prediction, depth)


class DepthStage:
    """Train a :class:`TinyDepthNet` (from scratch, or from ``init``: a directory written by ``export``)."""

    name = "depth"

    def __init__(
        self,
        data: str | Path,
        eval_data: str | Path | None,
        config: DepthStageConfig | None = None,
        init: str | Path | None = None,
        generated_data: str | Path | None = None,
        generated_eval_data: str | Path | None = None,
    ) -> None:
        self.config = config or DepthStageConfig()
        self.train_set = ClipDataset(data, ("rgb", "depth"))
        self.eval_set = ClipDataset(eval_data, ("rgb", "depth")) if eval_data else None
        height, width = int(self.train_set.index["height"]), int(self.train_set.index["width"])
        shape = {"height": height, "width": width}
        self.generated_set = ClipDataset(generated_data, ("rgb", "depth"), expect=shape) if generated_data else None
        self.generated_eval_set = (ClipDataset(generated_eval_data, ("rgb", "depth"), expect=shape)
                                   if generated_eval_data else None)
        if self.config.crop > min(height, width):
            raise ValueError(f"crop must be at most the frame size {height}x{width}, got {self.config.crop}")
        self.net = _initial_net(init, self.config.net, self.train_set)
        self.objective = DepthObjective(self.net, self.config.si_lambda, self.config.l1_weight)
        self._cache: OrderedDict[tuple[bool, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._held_out: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def module(self) -> nn.Module:
        return self.objective

    def _clip(self, index: int, generated: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """rgb ``[F, H, W, 3]`` uint8 and depth ``[F, H, W]`` float16 of a training clip, rendered or generated
        (LRU-cached)."""
        key = (generated, index)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        item = (self.generated_set if generated else self.train_set)[index]
        clip = (item["rgb"], item["depth"])
        self._cache[key] = clip
        while len(self._cache) > self.config.cached_clips:
            self._cache.popitem(last=False)
        return clip

    def batch(self, rng: np.random.Generator, step: int) -> dict[str, Any]:
        rgbs, depths = [], []
        for _ in range(self.config.batch_size):
            generated = self.generated_set is not None and rng.random() < self.config.generated_share
            dataset = self.generated_set if generated else self.train_set
            rgb, depth = self._clip(int(rng.integers(len(dataset))), generated)
            t = int(rng.integers(rgb.shape[0]))
            h, w = rgb.shape[1:3]
            ch, cw = (self.config.crop, self.config.crop) if self.config.crop else (h, w)
            y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            frame, target = rgb[t, y0 : y0 + ch, x0 : x0 + cw], depth[t, y0 : y0 + ch, x0 : x0 + cw]
            if self.config.flip and rng.random() < 0.5:
                frame, target = frame[:, ::-1], target[:, ::-1]
            rgbs.append(frame)
            depths.append(target)
        images = frames_to_images(np.ascontiguousarray(np.stack(rgbs)))  # [B, 3, c, c]
        depth = torch.from_numpy(np.stack(depths).astype(np.float32))  # [B, c, c]
        return {"images": images, "depth": depth}

    def estimator(self) -> TinyDepthEstimator:
        return TinyDepthEstimator(self.net, batch_size=self.config.batch_size)

    @torch.no_grad()
    def evaluate(self, step: int) -> dict[str, float]:
        """Depth metrics on held-out rendered frames, and (``generated_*``) on held-out generated ones."""
        metrics = {}
        for prefix, dataset in (("", self.eval_set), ("generated_", self.generated_eval_set)):
            if dataset is None:
                continue
            if prefix not in self._held_out:
                self._held_out[prefix] = held_out_frames(dataset, self.config.eval_frames)
            scores = evaluate_estimator(self.estimator(), *self._held_out[prefix])
            metrics.update({prefix + name: value for name, value in scores.items()})
        return metrics

    def export(self, directory: Path) -> None:
        """Write the network under ``directory / "depth"`` (load it with ``TinyDepthEstimator.from_pretrained``)."""
        self.net.save_pretrained(Path(directory) / "depth")


def mean_log_depth(dataset: ClipDataset, clips: int = 16) -> float:
    """Mean log depth (log metres) over the valid pixels of up to ``clips`` clips spread over the dataset."""
    total, count = 0.0, 0
    for i in np.unique(np.linspace(0, len(dataset) - 1, min(clips, len(dataset))).round().astype(int)):
        depth = dataset[int(i)]["depth"].astype(np.float64)
        depth = depth[np.isfinite(depth) & (depth > MIN_DEPTH)]
        total, count = total + float(np.log(depth).sum()), count + depth.size
    if not count:
        raise ValueError(f"{dataset.directory}: no valid depth (finite, > {MIN_DEPTH} m) in its clips")
    return total / count


def _initial_net(init: str | Path | None, config: TinyDepthConfig, data: ClipDataset) -> TinyDepthNet:
    """The network to train: the one saved in ``init`` (a depth directory or a run's ``final``), else a fresh one.

    A fresh network starts predicting the training data's mean log depth everywhere. Its scale sits in one
    bias, which Adam moves by about one learning rate per step (1e-4 by default): started from a guess like
    10 m when half the pixels are 150 m sky, the first thousands of steps would be spent on the scale alone.
    """
    if init is None:
        return TinyDepthNet(replace(config, init_log_depth=mean_log_depth(data)))
    init = Path(init)
    directory = init / "depth" if (init / "depth").is_dir() else init
    return TinyDepthNet.from_pretrained(directory).train()
