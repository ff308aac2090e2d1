"""Generated clips against ground truth, beside baselines that need no model.

The procedural worlds give every evaluation clip its exact frames, depth and camera path, so a generator can be
scored against the truth. Raw PSNR alone says little (a video that never moves scores well on a slow clip), so
every number comes beside baselines that see exactly what the model sees at frame 0 and nothing learned:

* **repeat** -- frame 0 repeated: what a model that ignores the controls would get.
* **warp** -- frame 0 forward-warped into every later frame with its exact depth and the known camera path. It
  is close wherever frame 0 saw the surface (up to resampling and view-dependent shading such as fog) and has
  nothing (black) where the motion *reveals* new surfaces, so it splits each frame into *covered* pixels
  (geometry alone explains them) and *revealed* pixels (the model must invent them). The model's PSNR on
  revealed pixels is the number that shows it generates rather than copies.
* **memory+inpaint** -- frame 0's world memory rendered along the path, its holes filled by OpenCV's inpainting
  (:func:`lv2_env.evaluation.baselines.memory_inpaint`; only where OpenCV is installed): the best guess without
  a model, which a model must beat to earn its cost.

Beside PSNR and SSIM, **sharpness** (the frames' gradient energy over the truth's) says whether a good PSNR came
from blur.

Conventions: the metrics are :mod:`model.metrics` (a clip's PSNR pools the squared error over all its scored
frames; the per-frame curves are reported separately). Frame 0 of a clip is given to every method, so clip
scores use frames 1..F-1.

``lv2 eval --checkpoint DIR --data EVAL_DIR --out OUT_DIR`` (:mod:`lv2_env.cli.eval`) runs a checkpoint on
evaluation clips and writes ``report.json``, ``grid.png`` and ``psnr_per_frame.png``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from lv2_env.conditioning.warp import SKY_DEPTH, warp_first_frame
from lv2_env.data.memory_renders import clip_atmosphere
from lv2_env.evaluation.baselines import inpainting_available, memory_inpaint
from model.metrics import mean_defined, psnr, sharpness_ratio, ssim

METHODS = ("model", "repeat", "warp", "memory+inpaint")  # memory+inpaint where OpenCV is installed
CLIP_FIELDS = ("rgb", "depth", "dense", "sparse", "poses", "intrinsics")
JSON_NOTE = (
    "PSNR in dB over frames 1..F-1 (frame 0 is given); clip PSNR pools the MSE of all scored frames. "
    "'revealed' = pixels the forward-warped frame 0 does not cover (the motion newly reveals them; the warp "
    "baseline is black there), 'covered' = the rest. SSIM: 11x11 Gaussian window, sigma 1.5, mean over RGB "
    "channels. Sharpness: gradient energy over the truth's (1 = as sharp; blur scores near 0); on revealed pixels, SSIM "
    "windows centred on them and gradients between two of them. memory+inpaint: "
    "frame 0 remembered, rendered along the path and its holes inpainted (OpenCV; left out where it is not "
    "installed). Means are over clips where a value is defined. In report.json, null stands for a value that is "
    "infinite (identical frames) or undefined (no pixels in the mask)."
)



def repeat_first_frame(rgb: np.ndarray) -> np.ndarray:
    """Frame 0 of ``rgb [F, H, W, 3]`` repeated ``F`` times: the score of a model that does not move at all."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 4 or rgb.shape[-1] != 3:
        raise ValueError(f"expected a clip [F, H, W, 3], got shape {rgb.shape}")
    return np.repeat(rgb[:1], len(rgb), axis=0)


def _check_clip(clip: Mapping[str, Any], i: int) -> None:
    missing = [f for f in ("rgb", "depth", "poses", "intrinsics") if f not in clip]
    if missing:
        raise ValueError(f"clip {i}: missing fields {missing}; it has {sorted(clip)}")
    rgb = np.asarray(clip["rgb"])
    if rgb.dtype != np.uint8 or rgb.ndim != 4 or rgb.shape[-1] != 3 or len(rgb) < 2:
        raise ValueError(f"clip {i}: rgb must be uint8 [F >= 2, H, W, 3], got {rgb.dtype} {rgb.shape}")
    if np.shape(clip["depth"]) != rgb.shape[:3] or np.shape(clip["poses"]) != (len(rgb), 4, 4):
        raise ValueError(
            f"clip {i}: depth must be {rgb.shape[:3]} and poses {(len(rgb), 4, 4)}, "
            f"got {np.shape(clip['depth'])} and {np.shape(clip['poses'])}"
        )


def _method_scores(frames: np.ndarray, truth: np.ndarray, covered: np.ndarray) -> dict[str, Any]:
    """The numbers one method gets on one clip, over frames 1..F-1."""
    scored, gt, cov = frames[1:], truth[1:], covered[1:]
    return {
        "psnr": psnr(scored, gt),
        "ssim": ssim(scored, gt),
        "psnr_revealed": psnr(scored, gt, ~cov),
        "ssim_revealed": ssim(scored, gt, ~cov),
        "sharpness_revealed": sharpness_ratio(scored, gt, ~cov),
        "psnr_covered": psnr(scored, gt, cov),
        "sharpness": sharpness_ratio(scored, gt),
        "psnr_per_frame": [psnr(scored[k], gt[k]) for k in range(len(scored))],
    }


def evaluate_clips(
    generate: Callable[[Mapping[str, Any]], np.ndarray],
    clips: Sequence[Mapping[str, Any]],
    names: Sequence[str] | None = None,
    sky_depth: float | None = SKY_DEPTH,
    inpaint: bool = True,
) -> dict[str, Any]:
    """Score ``generate`` (any callable: clip dict -> uint8 ``[F, H, W, 3]``) on ``clips`` beside the baselines
    (repeat, warp and, with ``inpaint`` where OpenCV is installed, memory+inpaint).

    Each clip dict has the fields of a clip file (``rgb``, ``depth``, ``poses``, ``intrinsics``; the model may
    use ``dense``, ``sparse``, ``caption``). Frame 0 is given to everyone, so scores cover frames 1..F-1. The
    revealed/covered split is the warp baseline's coverage. Returns a JSON-able dict (plain floats, which may be
    inf or NaN -- :func:`write_report` writes them as null)::

        {"clips": [{"name", "frames", "revealed_fraction", "generate_seconds",
                    "model" | "repeat" | "warp" | "memory+inpaint": {"psnr", "ssim", "psnr_revealed",
                        "psnr_covered", "sharpness", "psnr_per_frame": [frames 1..F-1]}}, ...],
         "mean": {each method: {... the same, averaged over clips ...}, "revealed_fraction"},
         "summary": {"clips", "beats_repeat_on_every_clip", "beats_warp_on_revealed"},
         "notes": "..."}
    """
    if not clips:
        raise ValueError("evaluate_clips needs at least one clip, got none")
    names = [f"clip {i}" for i in range(len(clips))] if names is None else [str(n) for n in names]
    if len(names) != len(clips):
        raise ValueError(f"got {len(names)} names for {len(clips)} clips")
    per_clip = []
    for i, (clip, name) in enumerate(zip(clips, names)):
        _check_clip(clip, i)
        truth = np.asarray(clip["rgb"])
        tick = time.perf_counter()
        generated = np.asarray(generate(clip))
        seconds = time.perf_counter() - tick
        if generated.dtype != np.uint8 or generated.shape != truth.shape:
            raise ValueError(f"{name}: generate must return uint8 {truth.shape}, got {generated.dtype} {generated.shape}")
        warped, covered = warp_first_frame(truth[0], clip["depth"][0], clip["poses"], clip["intrinsics"], sky_depth)
        outputs = {"model": generated, "repeat": repeat_first_frame(truth), "warp": warped}
        if inpaint and inpainting_available():
            outputs["memory+inpaint"] = memory_inpaint(truth[0], clip["depth"][0], clip["poses"], clip["intrinsics"],
                                                       clip["depth"], clip_atmosphere(clip))
        entry: dict[str, Any] = {
            "name": name,
            "frames": int(len(truth)),
            "revealed_fraction": float((~covered[1:]).mean()),
            "generate_seconds": float(seconds),
        }
        entry.update({m: _method_scores(frames, truth, covered) for m, frames in outputs.items()})
        per_clip.append(entry)

    mean: dict[str, Any] = {"revealed_fraction": mean_defined([c["revealed_fraction"] for c in per_clip])}
    longest = max(c["frames"] for c in per_clip) - 1
    for m in (m for m in METHODS if m in per_clip[0]):
        scores = {k: mean_defined([c[m][k] for c in per_clip])
                  for k in ("psnr", "ssim", "psnr_revealed", "ssim_revealed", "sharpness_revealed", "psnr_covered",
                            "sharpness")}
        scores["psnr_per_frame"] = [
            mean_defined([c[m]["psnr_per_frame"][k] for c in per_clip if k < c["frames"] - 1]) for k in range(longest)
        ]
        mean[m] = scores
    summary = {
        "clips": len(per_clip),
        "beats_repeat_on_every_clip": bool(all(c["model"]["psnr"] > c["repeat"]["psnr"] for c in per_clip)),
        "beats_warp_on_revealed": bool(mean["model"]["psnr_revealed"] > mean["warp"]["psnr_revealed"]),
    }
    return {"clips": per_clip, "mean": mean, "summary": summary, "notes": JSON_NOTE}


def markdown_table(report: Mapping[str, Any]) -> str:
    """Model and baselines side by side (means over clips), for a terminal or a README."""

    def cell(v: float, digits: int) -> str:
        return "n/a" if math.isnan(v) else ("inf" if math.isinf(v) else f"{v:.{digits}f}")

    lines = [
        "| method | PSNR (dB) | SSIM | sharpness | PSNR covered (dB) | PSNR revealed (dB) | SSIM revealed | "
        "sharpness revealed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in (m for m in METHODS if m in report["mean"]):
        s = report["mean"][m]
        lines.append(
            f"| {m} | {cell(s['psnr'], 2)} | {cell(s['ssim'], 4)} | {cell(s.get('sharpness', math.nan), 2)} | "
            f"{cell(s['psnr_covered'], 2)} | {cell(s['psnr_revealed'], 2)} | "
            f"{cell(s.get('ssim_revealed', math.nan), 4)} | {cell(s.get('sharpness_revealed', math.nan), 2)} |"
        )
    summary = report["summary"]
    lines.append("")
    lines.append(
        f"{summary['clips']} clips, {100 * report['mean']['revealed_fraction']:.1f}% of pixels revealed (frame 0 never "
        f"saw them: the model's own drawing even with compositing on); "
        f"beats repeat on every clip: {summary['beats_repeat_on_every_clip']}; "
        f"beats warp on revealed pixels: {summary['beats_warp_on_revealed']}"
    )
    return "\n".join(lines)


def plot_per_frame_psnr(report: Mapping[str, Any], path: str | Path) -> Path:
    """PSNR against frame index (mean over clips) for the model and both baselines: where the model drifts."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0, 3.2), dpi=110)
    ax = fig.subplots()
    styles = {"model": ("C0", "o"), "repeat": ("C1", "s"), "warp": ("C2", "^"), "memory+inpaint": ("C3", "v")}
    for m in (m for m in METHODS if m in report["mean"]):
        curve = np.array(report["mean"][m]["psnr_per_frame"], dtype=np.float64)
        frames = np.arange(1, len(curve) + 1)
        shown = np.where(np.isfinite(curve), curve, np.nan)  # an identical frame (inf) leaves a gap
        label = m if np.isfinite(curve).any() else f"{m} (identical: inf)"
        ax.plot(frames, shown, color=styles[m][0], marker=styles[m][1], markersize=3, linewidth=1.2, label=label)
    ax.set_xlabel("frame index (frame 0 is given)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(f"per-frame PSNR, mean over {report['summary']['clips']} clips", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    return path



def spread_indices(available: int, wanted: int) -> list[int]:
    """``wanted`` clip indices spread evenly over ``available`` (more scenes than the first few sequences)."""
    if available < 1 or wanted < 1:
        raise ValueError(f"need at least one clip available and wanted, got available={available}, wanted={wanted}")
    return sorted({int(round(i)) for i in np.linspace(0, available - 1, min(wanted, available))})
