"""The ``lv2`` command line.

    lv2 rollout --env groundtruth --policy orbit --seconds 30 --out out.mp4
    lv2 generate --checkpoint DIR --first-frame IMG --depth DEPTH.mp4 --tracks TRACKS.mp4 --prompt TEXT --out OUT.mp4
"""

from __future__ import annotations

import argparse
import sys

ENVS = {"groundtruth": "LV2/GroundTruth-v0"}


def _add_rollout(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rollout",
        help="run a scripted camera path and write an MP4 plus a JSON side file",
        description="Run a scripted camera path in a world and write the video (H.264 MP4, 16 fps) and a side "
        "file (same name, .json) with per-frame poses, captions and rewards.",
    )
    p.add_argument("--env", choices=sorted(ENVS), default="groundtruth", help="which world (default: groundtruth)")
    p.add_argument("--policy", choices=["orbit", "dolly", "random", "file"], default="orbit")
    p.add_argument("--seconds", type=float, default=30.0, help="seconds of video to generate (default 30)")
    p.add_argument("--out", default="rollout.mp4", help="output MP4 path (default rollout.mp4)")
    p.add_argument("--side-file", default=None, help="side file path (default: the MP4 path with .json)")
    p.add_argument("--pose-file", default=None, help="poses to replay with --policy file (.json side file, .csv, .npy)")
    p.add_argument("--seed", type=int, default=0, help="reset seed: picks the scene and start heading (default 0)")
    p.add_argument("--scene-seed", type=int, default=None, help="scene to use (default: drawn from --seed)")
    p.add_argument("--style", default=None, help="sunny, dusk, night, snow, fog or desert (default: drawn)")
    p.add_argument("--action-mode", choices=["discrete", "continuous", "trajectory"], default="continuous")
    p.add_argument("--height", type=int, default=128)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--clip-frames", type=int, default=17, help="frames per clip, 4k+1 (default 17)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_rollout)


def _rollout(args: argparse.Namespace) -> int:
    import gymnasium as gym

    import lv2_env  # noqa: F401  (registers the environments)
    from agents.rollout import run_rollout, steps_for_seconds
    from agents.scripted import make_policy

    steps = steps_for_seconds(args.seconds, args.clip_frames, 16)
    env = gym.make(
        ENVS[args.env],
        action_mode=args.action_mode,
        height=args.height,
        width=args.width,
        clip_frames=args.clip_frames,
        style=args.style,
        goal_radius=None,  # a recording runs for its full length
        max_episode_steps=steps,
    )
    try:
        policy = make_policy(args.policy, env, seed=args.seed, pose_file=args.pose_file)
        options = {"scene_seed": args.scene_seed} if args.scene_seed is not None else None
        summary = run_rollout(
            env,
            policy,
            steps,
            args.out,
            side_path=args.side_file,
            seed=args.seed,
            options=options,
            metadata={"env": ENVS[args.env], "policy": args.policy, "action_mode": args.action_mode},
            progress=not args.quiet,
        )
    finally:
        env.close()
    print(
        f"wrote {summary.video} ({summary.frames} frames, {summary.seconds_of_video:.1f} s of video) and "
        f"{summary.side_file} in {summary.wall_seconds:.1f} s; {summary.collisions} collision(s), "
        f"total reward {summary.total_reward:+.2f}"
    )
    return 0


def _add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="generate a long video from given control videos (LongVie 2's offline setting)",
        description="Cut the depth and track videos into clips that share one frame, generate them one after "
        "another from the first frame (each with its prompt and the previous clip's history), and write one MP4.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="lv2 checkpoint directory (with lv2.json)")
    source.add_argument("--wan", help="the full size: Wan2.1-I2V-14B-480P in diffusers layout (with --longvie)")
    p.add_argument("--longvie", help="directory with LongVie 2's control.safetensors and dit.safetensors")
    p.add_argument("--first-frame", required=True, help="start image (resized to the model's size if needed)")
    p.add_argument("--depth", required=True, help="dense control video: globally normalised depth, near bright")
    p.add_argument("--tracks", required=True, help="sparse control video: point tracks")
    prompt = p.add_mutually_exclusive_group(required=True)
    prompt.add_argument("--prompt", help="one prompt for every clip")
    prompt.add_argument("--prompts", help="text file, one prompt per clip (the last repeats)")
    p.add_argument("--out", default="generated.mp4")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the checkpoint's)")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale, 1 = off")
    p.add_argument("--dense-scale", type=float, default=1.0, help="LongVie 2's lambda: less depth, more freedom")
    p.add_argument("--seed", type=int, default=0, help="seed of the unified noise")
    p.add_argument("--precision", choices=["bf16", "fp32"], default="bf16", help="autocast dtype (default bf16)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_generate)


def _generate(args: argparse.Namespace) -> int:
    import time

    import torch

    from lv2_env.offline import clip_starts, generate_video, load_control_video, load_first_frame, read_prompts
    from model.checkpoint import load_checkpoint
    from model.pipeline import SamplingOptions

    if args.checkpoint:
        checkpoint = load_checkpoint(args.checkpoint)
    else:
        from pathlib import Path

        from model.checkpoint import load_published

        if not args.longvie:
            raise ValueError("--wan needs --longvie DIR (with control.safetensors and dit.safetensors)")
        longvie = Path(args.longvie)
        checkpoint = load_published(args.wan, longvie / "control.safetensors", longvie / "dit.safetensors")
    preset = checkpoint.preset
    sampling = dict(preset.sampling)
    if args.steps is not None:
        sampling["steps"] = args.steps
    if args.guidance is not None:
        sampling["guidance_scale"] = args.guidance
    options = SamplingOptions(**sampling, control_scales={"dense": args.dense_scale})
    autocast = torch.bfloat16 if args.precision == "bf16" else None
    generator = checkpoint.generator(options=options, seed=args.seed, autocast=autocast)

    first = load_first_frame(args.first_frame, preset.height, preset.width)
    controls = {
        "dense": load_control_video(args.depth, "depth", preset.height, preset.width),
        "sparse": load_control_video(args.tracks, "tracks", preset.height, preset.width),
    }
    clips = len(clip_starts(min(len(v) for v in controls.values()), preset.frames))
    prompts = read_prompts(args.prompt, args.prompts, clips)
    start = time.perf_counter()
    frames = generate_video(generator, first, controls, prompts, args.out, fps=preset.fps, progress=not args.quiet)
    print(f"wrote {args.out}: {frames} frames ({clips} clips) in {time.perf_counter() - start:.1f} s")
    return 0


def _add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="build training data on disk", description="Build training data on disk.")
    kinds = p.add_subparsers(dest="kind", required=True)
    proc = kinds.add_parser(
        "procedural",
        help="clips from the procedural worlds",
        description="Render camera paths through procedural scenes and write clips (frames, depth, poses, both "
        "control signals, history frames, captions) in lv2's clip format (see lv2_env/datasets.py). Re-running "
        "keeps the clips already written.",
    )
    proc.add_argument("--out", required=True, help="output directory")
    proc.add_argument("--split", choices=["train", "eval"], default="train", help="disjoint scene seed ranges")
    proc.add_argument("--sequences", type=int, default=500, help="camera paths (scenes) to render")
    proc.add_argument("--clips-per-sequence", type=int, default=4)
    proc.add_argument("--height", type=int, default=128)
    proc.add_argument("--width", type=int, default=128)
    proc.add_argument("--clip-frames", type=int, default=17)
    proc.add_argument("--history-frames", type=int, default=16)
    proc.add_argument("--quiet", action="store_true")
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
    vids.add_argument("--height", type=int, default=128)
    vids.add_argument("--width", type=int, default=128)
    vids.add_argument("--clip-frames", type=int, default=17)
    vids.add_argument("--history-frames", type=int, default=16)
    vids.add_argument("--quiet", action="store_true")
    vids.set_defaults(func=_data_videos)


def _data_procedural(args: argparse.Namespace) -> int:
    from lv2_env.datasets import SequenceSpec, build_procedural

    spec = SequenceSpec(height=args.height, width=args.width, frames=args.clip_frames,
                        clips_per_sequence=args.clips_per_sequence, history_frames=args.history_frames)
    out = build_procedural(args.out, args.split, args.sequences, spec, progress=not args.quiet)
    print(f"wrote {args.sequences * args.clips_per_sequence} {args.split} clips to {out}")
    return 0


TRAIN_STAGES = ("vae", "base", "control", "degradation", "history", "depth")


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a stage of the world model",
        description="Train one stage of the world model on a data directory written by `lv2 data`. Checkpoints "
        "are written atomically every --checkpoint-every steps; --resume continues from the last one. Stages: "
        "vae (the tiny preset's VAE), base (I2V DiT + text encoder), control (LongVie 2 stage 1), degradation "
        "(stage 2), history (stage 3), each starting from the previous stage's result (--init); depth (a small "
        "monocular depth network). "
        "`all` runs every stage in order into OUT/<stage> (finished stages skipped, interrupted ones resumed). "
        "`cache-latents` encodes a data directory once with a trained VAE (the DiT stages need it).",
    )
    p.add_argument("stage", choices=[*TRAIN_STAGES, "all", "cache-latents"])
    p.add_argument("--preset", default="tiny")
    p.add_argument("--data", required=True, help="training data directory")
    p.add_argument("--eval-data", default=None, help="held-out data directory (eval split)")
    p.add_argument("--out", help="run directory: checkpoints/, metrics.jsonl, loss.png, final/")
    p.add_argument("--vae", default=None, help="DiT stages and cache-latents: the trained VAE directory")
    p.add_argument("--init", default=None, help="control/degradation/history: the previous stage's final checkpoint; vae/depth: saved weights to start from")
    p.add_argument("--steps", type=int, default=10000)
    p.add_argument("--batch-size", type=int, default=None, help="default: 2 for vae, 8 for the DiT stages, 16 for depth")
    p.add_argument("--lr", type=float, default=None, help="default: per stage (model/training/stages.py)")
    p.add_argument("--warmup-steps", type=int, default=200)
    p.add_argument("--crop", type=int, default=64, help="vae: square crop size of the training windows")
    p.add_argument("--frames", type=int, default=17, help="vae: frames per training window (4k+1; as long as a clip)")
    p.add_argument("--freeze-encoder", action="store_true",
                   help="vae: fine-tune only the decoder of the VAE given by --init (keeps its latent space)")
    p.add_argument("--checkpoint-every", type=int, default=250)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    p.add_argument("--export-latest", metavar="DIR", default=None,
                   help="do not train: export the last checkpoint in --out to DIR, as the stage's final/ would be")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from model.presets import get_preset
    from model.training.loop import LoopConfig, train
    from model.training.stages import DEFAULT_LR, StageArgs, build_stage, train_all

    preset = get_preset(args.preset)
    if args.stage == "cache-latents":
        from model.training.latents import cache_latents

        if not args.vae:
            raise ValueError("cache-latents needs --vae DIR (a trained VAE)")
        print(f"latents in {cache_latents(args.data, args.vae, progress=not args.quiet)}")
        return 0
    if not args.out:
        raise ValueError("training needs --out DIR")
    if args.stage == "all":
        final = train_all(preset, Path(args.data), args.eval_data and Path(args.eval_data), Path(args.out),
                          precision=args.precision, seed=args.seed, progress=not args.quiet)
        print(f"all stages trained; the model is {final}")
        return 0
    stage = build_stage(args.stage, StageArgs(
        preset=preset, data=Path(args.data), eval_data=args.eval_data and Path(args.eval_data),
        vae=args.vae and Path(args.vae), init=args.init and Path(args.init), batch_size=args.batch_size,
        crop=args.crop, frames=args.frames, freeze_encoder=args.freeze_encoder, steps=args.steps, seed=args.seed,
    ))
    if args.export_latest:
        from model.training.loop import Checkpointer

        state = Checkpointer(Path(args.out)).load(stage.module())
        stage.export(Path(args.export_latest))
        print(f"exported step {state['step']} of {args.out} to {args.export_latest}")
        return 0
    config = LoopConfig(out=args.out, steps=args.steps, lr=args.lr or DEFAULT_LR[args.stage],
                        warmup_steps=args.warmup_steps, checkpoint_every=args.checkpoint_every,
                        eval_every=args.eval_every, seed=args.seed, precision=args.precision, resume=args.resume,
                        progress=not args.quiet)
    result = train(stage, config)
    print(f"stage {args.stage}: {result['step']} steps; result in {args.out}/final")
    return 0


def _data_videos(args: argparse.Namespace) -> int:
    try:
        from lv2_env.user_videos import build_from_videos
    except ImportError as err:
        raise ValueError(f"`lv2 data videos` needs OpenCV and PySceneDetect: pip install \"lv2[videos]\" ({err})") from err
    from model.depth import load_depth_estimator

    report = build_from_videos(args.videos, args.out, load_depth_estimator(args.depth_model), height=args.height,
                               width=args.width, frames=args.clip_frames, history_frames=args.history_frames,
                               progress=not args.quiet)
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}")
    print(f"wrote {report.clips} clips from {report.videos_used} of {report.videos} videos to {args.out}")
    return 0


def _add_eval(sub: argparse._SubParsersAction) -> None:
    from lv2_env.evaluation import EVAL_DESCRIPTION, add_arguments

    p = sub.add_parser("eval", help="score a checkpoint against ground truth and the no-model baselines",
                       description=EVAL_DESCRIPTION)
    add_arguments(p)
    p.set_defaults(func=_eval)


def _eval(args: argparse.Namespace) -> int:
    from lv2_env.evaluation import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lv2", description="lv2: an interactive world simulator on LongVie 2")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_rollout(sub)
    _add_generate(sub)
    _add_data(sub)
    _add_train(sub)
    _add_eval(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as err:  # bad input: say what was wrong, without a traceback
        print(f"lv2 {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
