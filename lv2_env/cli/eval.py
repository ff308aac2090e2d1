"""``lv2 eval``: score a checkpoint on evaluation clips and/or long world rollouts (:mod:`lv2_env.evaluation`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Mapping

from model.precision import add_precision_argument

EVAL_DESCRIPTION = (
    "Generate evaluation clips from their first frame and ground-truth controls, and score them against the "
    "truth beside the repeat-frame-0 and warp-frame-0 baselines."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``lv2 eval``."""
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
    import numpy as np

    from lv2_env.envs.world import WorldEnv
    from lv2_env.evaluation.report import picture_grid, write_report
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
    import numpy as np

    from lv2_env.evaluation.clips import (
        CLIP_FIELDS, dense_as_video, evaluate_clips, markdown_table, plot_per_frame_psnr, spread_indices,
    )
    from lv2_env.evaluation.report import picture_grid, write_report
    from lv2_env.signals.warp import render_clip, warp_first_frame
    from model.checkpoint import load_checkpoint
    from model.clips import ClipDataset
    from model.pipeline import SamplingOptions
    from model.precision import precision_name, resolve_precision

    checkpoint = load_checkpoint(args.checkpoint)
    preset = checkpoint.preset
    dataset = ClipDataset(
        args.data, fields=CLIP_FIELDS, expect={"height": preset.height, "width": preset.width, "frames": preset.frames}
    )
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

