"""``lv2 data``: training data on disk (procedural clips, clips from your videos, world-memory renders, the world
model's own frames) and ``lv2 generate``'s inputs for a procedural scene (controls)."""

from __future__ import annotations

import argparse
import sys

from lv2_env.cli.options import readable_dir, whole_clips, writable_dir
from lv2_env.signals.camera import FOV_DEG
from model.precision import add_precision_argument


def _add_clip_shape_arguments(p: argparse.ArgumentParser) -> None:
    """The shape of the clips a data builder writes (both builders write the one clip format, model/clips.py)."""
    p.add_argument("--height", type=int, default=128)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--clip-frames", type=int, default=17, help="frames per clip, 4k+1 (default 17)")
    p.add_argument("--history-frames", type=int, default=16, help="frames of run-up kept before each clip (default 16)")
    p.add_argument("--quiet", action="store_true")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="build training data (or lv2 generate's inputs) on disk",
                       description="Build training data on disk (procedural, videos), or the inputs of `lv2 generate` "
                       "for a camera path through a procedural scene (controls).")
    kinds = p.add_subparsers(dest="kind", required=True)
    proc = kinds.add_parser(
        "procedural",
        help="clips from the procedural worlds",
        description="Render camera paths through procedural scenes and write clips (frames, depth, poses, both "
        "control signals, history frames, captions) in lv2's clip format (model/clips.py). Re-running "
        "keeps the clips already written.",
    )
    proc.add_argument("--out", required=True, help="output directory")
    proc.add_argument("--split", choices=["train", "validation", "test"], default="train",
                      help="disjoint scene seed ranges: train, validation, test (frozen, 12 scenes)")
    proc.add_argument("--sequences", type=int, default=500, help="camera paths (scenes) to render")
    proc.add_argument("--clips-per-sequence", type=int, default=4)
    _add_clip_shape_arguments(proc)
    proc.set_defaults(func=_data_procedural)
    vids = kinds.add_parser(
        "videos",
        help="clips from a folder of your own videos",
        description="Cut detection (PySceneDetect), 16 fps resampling (PyAV), depth from a local depth model, "
        "Lucas-Kanade point tracks, captions from sidecar NAME.txt files; corrupt or too-short videos are "
        "reported one by one and skipped. Needs `pip install \"lv2[videos]\"`.",
    )
    vids.add_argument("--videos", required=True, help="folder searched for .mp4 .mov .mkv .avi .webm")
    vids.add_argument("--out", required=True)
    vids.add_argument("--depth-model", required=True,
                      help="a local depth model directory: Depth Anything (transformers) or `lv2 train depth`'s")
    _add_clip_shape_arguments(vids)
    vids.set_defaults(func=_data_videos)
    ctl = kinds.add_parser(
        "controls",
        help="lv2 generate's inputs for a camera path through a procedural scene",
        description="Render a random walk through one procedural scene and write what `lv2 generate` takes: "
        "first.png, dense.mp4 (--depth), sparse.mp4 (--tracks), poses.npy (--poses), depth.npy (--metric-depth), "
        "intrinsics.npy (--intrinsics), prompts.txt (--prompts), and truth.mp4, the exact render to compare with. "
        "The dense video is normalised with one depth range for the whole path; the tracks are recomputed per clip.",
    )
    ctl.add_argument("--out", required=True, help="output directory")
    ctl.add_argument("--seconds", type=float, default=5.0,
                     help="seconds of video (default 5), rounded to whole clips of --clip-frames - 1 frames at 16 fps")
    ctl.add_argument("--scene-seed", type=int, default=None,
                     help="the scene (default: the first held-out one, a scene of the validation split)")
    ctl.add_argument("--style", default=None, help="sunny, dusk, night, snow, fog or desert (default: the scene's)")
    ctl.add_argument("--seed", type=int, default=0, help="seed of the camera's random walk (default 0)")
    ctl.add_argument("--height", type=int, default=128, help="frame height (default 128, the shipped model's)")
    ctl.add_argument("--width", type=int, default=128)
    ctl.add_argument("--clip-frames", type=int, default=17, help="frames per clip, 4k+1 (default 17)")
    ctl.add_argument("--fov", type=float, default=FOV_DEG,
                     help=f"horizontal field of view in degrees (default {FOV_DEG:g})")
    ctl.set_defaults(func=_data_controls)
    mem = kinds.add_parser(
        "memory-renders",
        help="each training clip's world-memory conditioning, as World-v0 builds it",
        description="Replay every sequence of a procedural data directory as World-v0 would: each clip's "
        "conditioning is the world memory of the sequence so far rendered along its path; what the world then "
        "showed is the model's own generation of the clip (--self-rollout of them) or the truth degraded (VAE "
        "round trips and noise). Writes DATA/memory_renders/; then `lv2 train cache-latents --conditioning memory`.",
    )
    mem.add_argument("--data", required=True, help="a procedural data directory (lv2 data procedural)")
    mem.add_argument("--checkpoint", default="model/shipped",
                     help="the model that generates the self-rollout clips, and whose VAE degrades the others")
    mem.add_argument("--self-rollout", type=float, default=0.5,
                     help="fraction of clips the world shows as the model generated them (default 0.5)")
    mem.add_argument("--seed", type=int, default=0)
    mem.add_argument("--quiet", action="store_true", help="no progress bar")
    mem.set_defaults(func=_data_memory_renders)
    gen = kinds.add_parser(
        "generated-frames",
        help="the world model's own frames beside the scene's exact depth (the depth network's training data)",
        description="Walk LV2/World-v0 through procedural scenes of a split (random one-second steps, mostly "
        "forward) and write every generated clip with the scene's exact depth along its path, in lv2's clip format "
        "(fields rgb and depth). `lv2 train depth --generated-data DIR` mixes them into its batches, so that the "
        "depth network of a world from a picture has seen the frames it reads. Re-running keeps the sequences "
        "already written.",
    )
    gen.add_argument("--out", required=True, help="output directory")
    gen.add_argument("--checkpoint", default="model/shipped", help="the world model that generates the frames")
    gen.add_argument("--split", choices=["train", "validation"], default="train",
                     help="scenes to walk: train, or validation (held-out frames for --generated-eval-data)")
    gen.add_argument("--sequences", type=int, default=60, help="scenes to walk (default 60)")
    gen.add_argument("--steps", type=int, default=8, help="one-second steps per scene (default 8)")
    gen.add_argument("--control-source", choices=["cache", "scene"], default="cache",
                     help="the world's control depth: its own point cache (default: the frames a world from a picture "
                     "makes), or the scene's")
    gen.add_argument("--seed", type=int, default=0, help="seed of the walks' actions and of generation")
    add_precision_argument(gen)
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    gen.set_defaults(func=_data_generated_frames)


def _data_procedural(args: argparse.Namespace) -> int:
    from lv2_env.data.procedural import SequenceSpec, build_procedural

    writable_dir(args.out, "--out")
    spec = SequenceSpec(height=args.height, width=args.width, frames=args.clip_frames,
                        clips_per_sequence=args.clips_per_sequence, history_frames=args.history_frames)
    out = build_procedural(args.out, args.split, args.sequences, spec, progress=not args.quiet)
    print(f"wrote {args.sequences * args.clips_per_sequence} {args.split} clips to {out}")
    return 0


def _data_memory_renders(args: argparse.Namespace) -> int:
    from lv2_env.data.memory_renders import build_memory_renders

    readable_dir(args.data, "--data")
    writable_dir(args.data, "--data", create=False)
    readable_dir(args.checkpoint, "--checkpoint")
    out = build_memory_renders(args.data, args.checkpoint, self_rollout=args.self_rollout, seed=args.seed,
                               progress=not args.quiet)
    print(f"memory renders in {out}")
    return 0


def _data_generated_frames(args: argparse.Namespace) -> int:
    from lv2_env.data.generated_frames import build_generated_frames
    from lv2_env.envs.world import WorldEnv

    if args.sequences < 1 or args.steps < 1:
        raise ValueError(f"--sequences and --steps must be at least 1, got {args.sequences} and {args.steps}")
    readable_dir(args.checkpoint, "--checkpoint")
    writable_dir(args.out, "--out")
    env = WorldEnv(checkpoint=args.checkpoint, preset=None, goal_radius=None, control_source=args.control_source,
                   precision=args.precision)
    out = build_generated_frames(args.out, env, args.split, args.sequences, args.steps, seed=args.seed,
                                 progress=not args.quiet)
    print(f"wrote {args.sequences * args.steps} generated {args.split} clips to {out}")
    return 0


def _data_controls(args: argparse.Namespace) -> int:
    from lv2_env.data.controls import render_controls, write_controls
    from lv2_env.data.procedural import SequenceSpec
    from lv2_env.data.splits import SPLIT_SEEDS
    from lv2_env.signals.actions import ClipSpec
    from lv2_env.signals.camera import Intrinsics
    from lv2_env.worlds import get_style

    clip = ClipSpec(frames=args.clip_frames)  # 4k+1 frames, checked
    Intrinsics.from_fov(args.fov, args.width, args.height)  # a field of view and a size it can make, checked
    if args.style is not None:
        get_style(args.style)
    clips, note = whole_clips(args.seconds, "--seconds", clip.duration, doing="writing")
    out = writable_dir(args.out, "--out")
    if note:
        print(f"lv2 data controls: note: {note}", file=sys.stderr)
    scene_seed = SPLIT_SEEDS["validation"][0] if args.scene_seed is None else args.scene_seed
    spec = SequenceSpec(height=args.height, width=args.width, frames=clip.frames, fps=clip.fps, fov_deg=args.fov)
    controls = render_controls(scene_seed, clips, spec, style=args.style, path_seed=args.seed)
    written = write_controls(out, controls)
    print(f"wrote {clips} clip(s), {len(controls.poses)} frames of scene {scene_seed} ({controls.style}) to {out}: "
          + ", ".join(path.name for path in written))
    return 0


def _data_videos(args: argparse.Namespace) -> int:
    try:
        from lv2_env.data.user_videos import build_from_videos
    except ImportError as err:
        raise ValueError(f"`lv2 data videos` needs OpenCV and PySceneDetect: pip install \"lv2[videos]\" ({err})") from err
    from model.depth import load_depth_estimator

    readable_dir(args.videos, "--videos")
    readable_dir(args.depth_model, "--depth-model")
    writable_dir(args.out, "--out")
    report = build_from_videos(args.videos, args.out, load_depth_estimator(args.depth_model), height=args.height,
                               width=args.width, frames=args.clip_frames, history_frames=args.history_frames,
                               progress=not args.quiet)
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}")
    print(f"wrote {report.clips} clips from {report.videos_used} of {report.videos} videos to {args.out}")
    return 0
