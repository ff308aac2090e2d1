"""Generated clips against ground truth, beside two baselines that need no model.

The procedural worlds give every evaluation clip its exact frames, depth and camera path, so a generator can be
scored against the truth. Raw PSNR alone says little (a video that never moves scores well on a slow clip), so
every number comes beside two baselines that see exactly what the model sees at frame 0 and nothing learned:

* **repeat** -- frame 0 repeated: what a model that ignores the controls would get.
* **warp** -- frame 0 forward-warped into every later frame with its exact depth and the known camera path. It
  is close wherever frame 0 saw the surface (up to resampling and view-dependent shading such as fog) and has
  nothing (black) where the motion *reveals* new surfaces, so it splits each frame into *covered* pixels
  (geometry alone explains them) and *revealed* pixels (the model must invent them). The model's PSNR on
  revealed pixels is the number that shows it generates rather than copies.

Conventions:

* Metrics take uint8 frames (``[..., H, W, 3]``) with a data range of 255. A clip's PSNR pools the squared
  error over all its scored frames and pixels (one MSE, one PSNR), not a mean of per-frame PSNRs; the per-frame
  curves are reported separately.
* SSIM is the standard one (Wang et al. 2004): Gaussian window 11x11, sigma 1.5, K1 = 0.01, K2 = 0.03, weighted
  (population) moments, computed on each RGB channel separately and averaged over channels, window positions
  that fit entirely inside the image ("valid"), and frames.
* Frame 0 of a clip is given to every method, so clip scores use frames 1..F-1.

``python -m lv2_env.evaluation.clips --checkpoint DIR --data EVAL_DIR --out OUT_DIR`` runs a checkpoint on evaluation
clips and writes ``report.json``, ``grid.png`` and ``psnr_per_frame.png`` (see :func:`main`).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from lv2_env.signals.warp import SKY_DEPTH, warp_first_frame  # noqa: F401  (warp_first_frame: the warp baseline)
from model.precision import add_precision_argument, precision_name, resolve_precision

METHODS = ("model", "repeat", "warp")
SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03
CLIP_FIELDS = ("rgb", "depth", "dense", "sparse", "poses", "intrinsics")
JSON_NOTE = (
    "PSNR in dB over frames 1..F-1 (frame 0 is given); clip PSNR pools the MSE of all scored frames. "
    "'revealed' = pixels the forward-warped frame 0 does not cover (the motion newly reveals them; the warp "
    "baseline is black there), 'covered' = the rest. SSIM: 11x11 Gaussian window, sigma 1.5, mean over RGB "
    "channels. Means are over clips where a value is defined. In report.json, null stands for a value that is "
    "infinite (identical frames) or undefined (no pixels in the mask)."
)


# ---------------------------------------------------------------------------------------------------- metrics


def _check_frames(a: np.ndarray, b: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as uint8 of one shape: a float image in [0, 1] would silently score as black, so refuse it."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != np.uint8 or b.dtype != np.uint8:
        raise ValueError(f"{what} takes uint8 frames (range 0..255), got {a.dtype} and {b.dtype}")
    if a.shape != b.shape:
        raise ValueError(f"{what} needs frames of one shape, got {a.shape} and {b.shape}")
    return a, b


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
        mask = np.asarray(mask)
        if mask.dtype != np.bool_:
            raise ValueError(f"mask must be boolean, got {mask.dtype}")
        if mask.shape not in (a.shape[:-1], a.shape[-3:-1]):
            raise ValueError(f"mask must be shaped {a.shape[:-1]} or {a.shape[-3:-1]} for frames {a.shape}, got {mask.shape}")
        mask = np.broadcast_to(mask, a.shape[:-1])
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


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of uint8 frames ``[H, W, 3]`` or ``[F, H, W, 3]``: over RGB channels, valid windows and frames.

    1.0 for identical frames. Channels are scored separately (not on luminance), so colour errors count.
    """
    return float(ssim_map(a, b).mean())


# ---------------------------------------------------------------------------------------------------- baselines


def repeat_first_frame(rgb: np.ndarray) -> np.ndarray:
    """Frame 0 of ``rgb [F, H, W, 3]`` repeated ``F`` times: the score of a model that does not move at all."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 4 or rgb.shape[-1] != 3:
        raise ValueError(f"expected a clip [F, H, W, 3], got shape {rgb.shape}")
    return np.repeat(rgb[:1], len(rgb), axis=0)


def _finite_mean(values: Sequence[float]) -> float:
    """Mean over the defined (non-NaN) values; inf stays inf; NaN when none is defined."""
    defined = [v for v in values if not math.isnan(v)]
    return float(np.mean(defined)) if defined else math.nan


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
        "psnr_covered": psnr(scored, gt, cov),
        "psnr_per_frame": [psnr(scored[k], gt[k]) for k in range(len(scored))],
    }


def evaluate_clips(
    generate: Callable[[Mapping[str, Any]], np.ndarray],
    clips: Sequence[Mapping[str, Any]],
    names: Sequence[str] | None = None,
    sky_depth: float | None = SKY_DEPTH,
) -> dict[str, Any]:
    """Score ``generate`` (any callable: clip dict -> uint8 ``[F, H, W, 3]``) on ``clips`` beside both baselines.

    Each clip dict has the fields of a clip file (``rgb``, ``depth``, ``poses``, ``intrinsics``; the model may
    use ``dense``, ``sparse``, ``caption``). Frame 0 is given to everyone, so scores cover frames 1..F-1. The
    revealed/covered split is the warp baseline's coverage. Returns a JSON-able dict (plain floats, which may be
    inf or NaN -- :func:`write_report` writes them as null)::

        {"clips": [{"name", "frames", "revealed_fraction", "generate_seconds",
                    "model" | "repeat" | "warp": {"psnr", "ssim", "psnr_revealed", "psnr_covered",
                                                  "psnr_per_frame": [frames 1..F-1]}}, ...],
         "mean": {"model" | "repeat" | "warp": {... the same, averaged over clips ...}, "revealed_fraction"},
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
        entry: dict[str, Any] = {
            "name": name,
            "frames": int(len(truth)),
            "revealed_fraction": float((~covered[1:]).mean()),
            "generate_seconds": float(seconds),
        }
        entry.update({m: _method_scores(outputs[m], truth, covered) for m in METHODS})
        per_clip.append(entry)

    mean: dict[str, Any] = {"revealed_fraction": _finite_mean([c["revealed_fraction"] for c in per_clip])}
    longest = max(c["frames"] for c in per_clip) - 1
    for m in METHODS:
        scores = {k: _finite_mean([c[m][k] for c in per_clip]) for k in ("psnr", "ssim", "psnr_revealed", "psnr_covered")}
        scores["psnr_per_frame"] = [
            _finite_mean([c[m]["psnr_per_frame"][k] for c in per_clip if k < c["frames"] - 1]) for k in range(longest)
        ]
        mean[m] = scores
    summary = {
        "clips": len(per_clip),
        "beats_repeat_on_every_clip": bool(all(c["model"]["psnr"] > c["repeat"]["psnr"] for c in per_clip)),
        "beats_warp_on_revealed": bool(mean["model"]["psnr_revealed"] > mean["warp"]["psnr_revealed"]),
    }
    return {"clips": per_clip, "mean": mean, "summary": summary, "notes": JSON_NOTE}


def _strict_json(value: Any) -> Any:
    """The report with inf/NaN as None: strict JSON (jq, browsers) has no Infinity or NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(v) for v in value]
    return value


def write_report(report: Mapping[str, Any], path: str | Path) -> Path:
    """Write the report as strict JSON (non-finite numbers as null, as the report's notes say)."""
    path = Path(path)
    path.write_text(json.dumps(_strict_json(dict(report)), indent=1, allow_nan=False) + "\n")
    return path


def markdown_table(report: Mapping[str, Any]) -> str:
    """Model and baselines side by side (means over clips), for a terminal or a README."""

    def cell(v: float, digits: int) -> str:
        return "n/a" if math.isnan(v) else ("inf" if math.isinf(v) else f"{v:.{digits}f}")

    lines = [
        "| method | PSNR (dB) | SSIM | PSNR revealed (dB) | PSNR covered (dB) |",
        "|---|---|---|---|---|",
    ]
    for m in METHODS:
        s = report["mean"][m]
        lines.append(
            f"| {m} | {cell(s['psnr'], 2)} | {cell(s['ssim'], 4)} | {cell(s['psnr_revealed'], 2)} | {cell(s['psnr_covered'], 2)} |"
        )
    summary = report["summary"]
    lines.append("")
    lines.append(
        f"{summary['clips']} clips, {100 * report['mean']['revealed_fraction']:.1f}% of pixels revealed; "
        f"beats repeat on every clip: {summary['beats_repeat_on_every_clip']}; "
        f"beats warp on revealed pixels: {summary['beats_warp_on_revealed']}"
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- pictures


def picture_grid(
    rows: Sequence[tuple[str, np.ndarray]],
    frame_indices: Sequence[int] | None = None,
    *,
    path: str | Path,
    title: str | None = None,
) -> Path:
    """A PNG of frames: one row per ``(label, frames [F, H, W, 3])``, one column per frame index.

    Pass rows in the order to compare, e.g. truth, model, warp for each clip. ``frame_indices`` defaults to the
    first, middle and last frame of the shortest row; negative indices count from the end.
    """
    from matplotlib.figure import Figure

    if not rows:
        raise ValueError("picture_grid needs at least one (label, frames) row, got none")
    videos = []
    for label, frames in rows:
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"row {label!r}: expected uint8 frames [F, H, W, 3], got {frames.dtype} {frames.shape}")
        videos.append((str(label), frames))
    shortest = min(len(f) for _, f in videos)
    indices = [0, shortest // 2, shortest - 1] if frame_indices is None else [int(i) for i in frame_indices]
    bad = [i for i in indices if not -shortest <= i < shortest]
    if bad:
        raise ValueError(f"frame indices {bad} are outside the shortest row's {shortest} frames")
    indices = [i % shortest for i in indices]

    cell, header, heading = 1.5, 0.3, (0.3 if title else 0.0)  # inches: image cell, column titles, figure title
    width, height = 1.3 + cell * len(indices), header + heading + cell * len(videos) + 0.05
    fig = Figure(figsize=(width, height), dpi=110)
    grid = fig.subplots(len(videos), len(indices), squeeze=False)
    for r, (label, frames) in enumerate(videos):
        for c, index in enumerate(indices):
            ax = grid[r][c]
            ax.imshow(frames[index], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"frame {index}", fontsize=7)
            if c == 0:
                ax.set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=8, y=1.0 - 0.08 / height, va="top")
    fig.subplots_adjust(left=1.2 / width, right=1.0 - 0.05 / width, bottom=0.05 / height, wspace=0.04, hspace=0.06,
                        top=1.0 - (header + heading) / height)
    path = Path(path)
    fig.savefig(path)
    return path


def plot_per_frame_psnr(report: Mapping[str, Any], path: str | Path) -> Path:
    """PSNR against frame index (mean over clips) for the model and both baselines: where the model drifts."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0, 3.2), dpi=110)
    ax = fig.subplots()
    styles = {"model": ("C0", "o"), "repeat": ("C1", "s"), "warp": ("C2", "^")}
    for m in METHODS:
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


# ---------------------------------------------------------------------------------------------------- command line


def spread_indices(available: int, wanted: int) -> list[int]:
    """``wanted`` clip indices spread evenly over ``available`` (more scenes than the first few sequences)."""
    if available < 1 or wanted < 1:
        raise ValueError(f"need at least one clip available and wanted, got available={available}, wanted={wanted}")
    return sorted({int(round(i)) for i in np.linspace(0, available - 1, min(wanted, available))})


def dense_as_video(dense: np.ndarray) -> np.ndarray:
    """The dense control as the model takes it: a clip file stores one grey channel, the model reads three."""
    dense = np.asarray(dense)
    if dense.ndim == 4 and dense.shape[-1] == 3:
        return dense
    if dense.ndim != 3:
        raise ValueError(f"dense control must be [F, H, W] (one grey channel) or [F, H, W, 3], got {dense.shape}")
    return np.repeat(dense[..., None], 3, axis=-1)


EVAL_DESCRIPTION = (
    "Generate evaluation clips from their first frame and ground-truth controls, and score them against the "
    "truth beside the repeat-frame-0 and warp-frame-0 baselines."
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lv2_env.evaluation.clips", description=EVAL_DESCRIPTION)
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The evaluation's command-line arguments (shared by ``lv2 eval`` and ``python -m lv2_env.evaluation.clips``)."""
    p.add_argument("--checkpoint", required=True, help="checkpoint directory (model.checkpoint format)")
    p.add_argument("--data", default=None, help="evaluation data directory (`lv2 data ...`, split eval): score single clips")
    p.add_argument("--clips", type=int, default=8, help="clips to evaluate, spread over the directory (default 8)")
    p.add_argument("--out", required=True, help="output directory for report.json, grid.png, psnr_per_frame.png")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the checkpoint's)")
    add_precision_argument(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the noise (the same for every clip)")
    p.add_argument("--grid-clips", type=int, default=4, help="clips shown in grid.png (default 4)")
    p.add_argument("--rollouts", type=int, default=0,
                   help="also run this many long LV2/World-v0 rollouts in held-out scenes (world_report.json)")
    p.add_argument("--rollout-seconds", type=int, default=60, help="seconds of video per rollout (default 60)")


def main(argv: Sequence[str] | None = None) -> int:
    return run(_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Score single clips (``--data``) and/or long rollouts (``--rollouts``) and write the reports."""
    if not args.data and args.rollouts < 1:
        raise ValueError("nothing to evaluate: give --data EVAL_DIR (single clips) and/or --rollouts N (long rollouts)")
    if args.data:
        run_clips(args)
    if args.rollouts > 0:
        run_world(args)
    return 0


def run_world(args: argparse.Namespace) -> None:
    """Long rollouts of LV2/World-v0 against the render of the same path (see :mod:`lv2_env.evaluation.rollouts`)."""
    from lv2_env.envs.world import WorldEnv
    from lv2_env.evaluation.rollouts import evaluate_world, plot_world, world_table

    if args.rollout_seconds < 1:
        raise ValueError(f"--rollout-seconds must be at least 1, got {args.rollout_seconds}")
    env = WorldEnv(checkpoint=args.checkpoint, preset=None, goal_radius=None, sampling_steps=args.steps,
                   precision=args.precision)
    steps = int(np.ceil(args.rollout_seconds * env.clip.fps / env.clip.new_frames))
    depth = None
    if (Path(args.checkpoint) / "depth").is_dir():
        from model.depth import TinyDepthEstimator

        depth = TinyDepthEstimator.from_pretrained(Path(args.checkpoint) / "depth")
    print(f"{args.rollouts} rollouts of {steps} clips in held-out scenes with {args.checkpoint}")
    report, videos = evaluate_world(env, args.rollouts, steps, estimate_depth=depth, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = [write_report(report, out / "world_report.json"), plot_world(report, out / "world_psnr.png")]
    rows: list[tuple[str, np.ndarray]] = []
    for r, video in enumerate(videos[: max(1, args.grid_clips)]):
        rows += [(f"rollout {r}\ntruth", video["truth"]), (f"rollout {r}\nmodel", video["generated"])]
    written.append(picture_grid(rows, path=out / "world_grid.png", title="held-out rollouts: truth above generated"))
    print(world_table(report))
    print("wrote " + ", ".join(str(p) for p in written))


def run_clips(args: argparse.Namespace) -> None:
    """Run a checkpoint on evaluation clips (history off: each clip is independent) and write the report."""
    from model.checkpoint import load_checkpoint
    from model.pipeline import SamplingOptions
    from model.clips import ClipDataset

    checkpoint = load_checkpoint(args.checkpoint)
    preset = checkpoint.preset
    dataset = ClipDataset(
        args.data, fields=CLIP_FIELDS, expect={"height": preset.height, "width": preset.width, "frames": preset.frames}
    )
    from lv2_env.signals.warp import render_clip
    indices = spread_indices(len(dataset), args.clips)
    sampling = dict(preset.sampling)
    if args.steps is not None:
        sampling["steps"] = args.steps
    autocast = resolve_precision(args.precision)
    generator = checkpoint.generator(
        options=SamplingOptions(**sampling), seed=args.seed, autocast=autocast, history_latent_frames=0,
    )
    clips = [dataset[i] for i in indices]
    names = [Path(dataset.clips[i]["file"]).stem for i in indices]
    generated: list[np.ndarray] = []

    def generate(clip: Mapping[str, Any]) -> np.ndarray:
        generator.reset(clip["rgb"][0])
        controls = {"dense": dense_as_video(clip["dense"]), "sparse": np.asarray(clip["sparse"])}
        rendered = render_clip(clip) if generator.condition == "rendered" else None
        frames = generator.generate_clip(controls, str(clip["caption"]), rendered=rendered)
        generated.append(frames)
        print(f"  {names[len(generated) - 1]}: generated in {sum(generator.last_timings.values()):.1f} s", flush=True)
        return frames

    precision = precision_name(autocast)
    print(f"evaluating {len(clips)} clips of {args.data} with {args.checkpoint} ({sampling['steps']} steps, {precision})")
    report = evaluate_clips(generate, clips, names=names)
    report["settings"] = {"checkpoint": str(args.checkpoint), "data": str(args.data), "clip_indices": indices,
                          "steps": sampling["steps"], "precision": precision, "seed": args.seed,
                          "history_latent_frames": 0}

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = [write_report(report, out / "report.json")]
    rows: list[tuple[str, np.ndarray]] = []
    for clip, name, frames in list(zip(clips, names, generated))[: max(0, args.grid_clips)]:
        warped, _ = warp_first_frame(clip["rgb"][0], clip["depth"][0], clip["poses"], clip["intrinsics"])
        rows += [(f"{name}\ntruth", clip["rgb"]), (f"{name}\nmodel", frames), (f"{name}\nwarp", warped)]
    if rows:
        title = f"{Path(args.checkpoint).name}: truth / model / warp baseline"
        written.append(picture_grid(rows, path=out / "grid.png", title=title))
    written.append(plot_per_frame_psnr(report, out / "psnr_per_frame.png"))
    print(markdown_table(report))
    print("wrote " + ", ".join(str(p) for p in written))


if __name__ == "__main__":
    raise SystemExit(main())
