"""``lv2 generate``: a long video from given control videos, LongVie 2's offline setting
(:func:`lv2_env.offline.generate_video`), with an lv2 checkpoint or the published full-size weights."""

from __future__ import annotations

import argparse
import sys

from lv2_env.cli.options import add_generation_options, readable_dir, readable_file, writable_output
from lv2_env.signals.camera import FOV_DEG


GENERATE_DESCRIPTION = (
    "Cut the depth and track videos into clips that share one frame, generate them one after another from the "
    "first frame (each with its prompt and the previous clip's history), and write one MP4. What a model needs "
    "depends on its I2V conditioning (`--verbose` says which a model has): a first-frame model (Wan2.1 / LongVie "
    "2, the published full size) takes --first-frame, --depth, --tracks and a prompt; a rendered-conditioning "
    "model (the shipped tiny model) is conditioned on a render along the clip's camera path with metric depth "
    "(by default the world memory of the clips generated so far, composited over the new one, as in "
    "LV2/World-v0; --conditioning last_frame --no-composite: the previous clip's last frame alone), so it also needs --poses and --metric-depth of the same frames (and the "
    "camera: --fov, or --intrinsics). `lv2 data controls --out DIR` writes all of these for a procedural scene."
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="generate a long video from given control videos (LongVie 2's offline setting)",
        description=GENERATE_DESCRIPTION,
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
    geometry = p.add_argument_group(
        "camera path", "rendered-conditioning models only (the shipped tiny model; ignored by first-frame models)")
    geometry.add_argument("--poses", metavar="POSES.npy",
                          help="[N, 4, 4] camera-to-world poses of the control videos' frames (OpenCV camera, world z up)")
    geometry.add_argument("--metric-depth", metavar="DEPTH.npy",
                          help="[N, H, W] camera-frame depth in metres of the same frames, at the model's size")
    camera = geometry.add_mutually_exclusive_group()
    camera.add_argument("--fov", type=float, default=FOV_DEG,
                        help="horizontal field of view in degrees (default 70, as the envs and `lv2 data controls`)")
    camera.add_argument("--intrinsics", metavar="K.npy", help="[3, 3] pinhole matrix K in pixels of the model's size")
    p.add_argument("--out", default="generated.mp4")
    add_generation_options(p, steps_flags=("--steps", "--sampling-steps"), conditioning=True)
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale, 1 = off")
    p.add_argument("--dense-scale", type=float, default=1.0, help="LongVie 2's lambda: less depth, more freedom")
    p.add_argument("--seed", type=int, default=0, help="seed of the unified noise")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--verbose", action="store_true",
                   help="say what is computed: the conditioning and history the model takes and, for --wan, every "
                   "prefix stripped and key renamed while loading the published files")
    p.set_defaults(func=run)


def describe_generation(checkpoint) -> list[str]:
    """What ``lv2 generate --verbose`` says about a loaded model before generating."""
    from model.presets import history_frames_for

    p = checkpoint.preset
    branches = ("each control branch: its control video's own first frame (LongVie 2's published form)"
                if p.control_condition == "own_first_frame" else "the control branches: the RGB first frame's, as the base")
    history = "off" if p.history_latent_frames == 0 else (
        f"the previous clip's last {p.history_pixel_frames} frames, the oldest {history_frames_for(p.history_latent_frames)} "
        f"encoded into {p.history_latent_frames} latent frames")
    lines = [f"model: preset {p.name!r}, {p.width}x{p.height}, {p.frames} frames per clip",
             f"I2V conditioning of {branches}", f"history: {history}"]
    if p.condition == "rendered":
        lines.append("after frame 0: the previous clip's last frame rendered along the camera path (--poses, "
                     "--metric-depth)")
    if checkpoint.load_report is not None:
        lines += checkpoint.load_report.describe()
    return lines


def check_inputs(args: argparse.Namespace) -> bool:
    """Refuse, before any model is loaded, inputs ``lv2 generate`` cannot use: flags the model needs but were not
    given, and paths that cannot be read or written. Returns whether the model is rendered-conditioned."""
    from model.presets import WAN21_I2V_14B_480P

    if args.wan:
        if not args.longvie:
            raise ValueError("--wan needs --longvie DIR (with control.safetensors and dit.safetensors)")
        readable_dir(args.wan, "--wan")
        longvie = readable_dir(args.longvie, "--longvie")
        for name in ("control.safetensors", "dit.safetensors"):
            readable_file(longvie / name, "--longvie")
        condition = WAN21_I2V_14B_480P.condition
    else:
        readable_dir(args.checkpoint, "--checkpoint")
        from model.checkpoint import read_checkpoint_preset

        condition = read_checkpoint_preset(args.checkpoint).condition
    rendered = condition == "rendered"
    if rendered and (args.poses is None or args.metric_depth is None):
        raise ValueError(
            f"{args.checkpoint} is conditioned on its last frame rendered along the camera path, which needs the "
            "path and its metric depth that control videos do not carry: pass --poses POSES.npy and --metric-depth "
            "DEPTH.npy (and --fov or --intrinsics K.npy; `lv2 data controls --out DIR` writes them for a procedural "
            "scene), or generate with it in the env (`lv2 rollout --env world --checkpoint DIR`)"
        )
    if rendered and args.intrinsics is None:
        from lv2_env.signals.camera import Intrinsics

        try:
            Intrinsics.from_fov(args.fov, 1, 1)  # a field of view the pinhole camera can have
        except ValueError as err:
            raise ValueError(f"--fov {args.fov:g}: {err}") from None
    if not rendered and (args.poses or args.metric_depth or args.intrinsics):
        print("lv2 generate: note: a first-frame model takes no camera path; --poses, --metric-depth and "
              "--intrinsics are ignored", file=sys.stderr)
    for flag, path in (("--first-frame", args.first_frame), ("--depth", args.depth), ("--tracks", args.tracks),
                       ("--prompts", args.prompts)):
        readable_file(path, flag)
    if rendered:
        for flag, path in (("--poses", args.poses), ("--metric-depth", args.metric_depth),
                           ("--intrinsics", args.intrinsics)):
            readable_file(path, flag)
    writable_output(args.out, "--out")
    return rendered


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from lv2_env.media.image import load_image
    from lv2_env.offline import clip_starts, generate_video, load_camera_geometry, load_control_video, read_prompts
    from model.checkpoint import load_checkpoint
    from model.pipeline import SamplingOptions
    from model.precision import resolve_precision

    rendered = check_inputs(args)
    autocast = resolve_precision(args.precision)
    if args.checkpoint:
        from model.world_model import load_control_encoder

        checkpoint = load_checkpoint(args.checkpoint)
        checkpoint.control_encoder = load_control_encoder(Path(args.checkpoint), args.control_encoder)
    elif args.control_encoder == "distilled":
        raise ValueError("--control-encoder distilled needs an lv2 --checkpoint with control-encoder/; LongVie 2's "
                         "published weights encode their controls with Wan's VAE (--control-encoder full)")
    else:
        from model.checkpoint import load_published

        longvie = Path(args.longvie)
        # In the precision it will compute in: bf16 weights where bf16 is fast, float32 ones elsewhere.
        checkpoint = load_published(args.wan, longvie / "control.safetensors", longvie / "dit.safetensors",
                                    torch_dtype=autocast)
    preset = checkpoint.preset
    if args.verbose:
        for line in describe_generation(checkpoint):
            print(line)
    options = SamplingOptions.from_preset(preset.sampling, steps=args.sampling_steps, guidance_scale=args.guidance,
                                          control_scales={"dense": args.dense_scale})
    generator = checkpoint.generator(options=options, seed=args.seed, autocast=autocast)

    first = load_image(args.first_frame, preset.height, preset.width, name="--first-frame", stacklevel=1)
    controls = {
        "dense": load_control_video(args.depth, "--depth", preset.height, preset.width),
        "sparse": load_control_video(args.tracks, "--tracks", preset.height, preset.width),
    }
    geometry = None
    if rendered:
        geometry = load_camera_geometry(args.poses, args.metric_depth, preset.height, preset.width, fov_deg=args.fov,
                                        intrinsics=args.intrinsics)
    clips = len(clip_starts(min(len(v) for v in controls.values()), preset.frames))
    prompts = read_prompts(args.prompt, args.prompts, clips)
    start = time.perf_counter()
    frames = generate_video(generator, first, controls, prompts, args.out, fps=preset.fps, progress=not args.quiet,
                            geometry=geometry, conditioning=args.conditioning, composite=args.composite,
                            trained_conditioning=preset.trained_conditioning)
    print(f"wrote {args.out}: {frames} frames ({clips} clips) in {time.perf_counter() - start:.1f} s")
    return 0
