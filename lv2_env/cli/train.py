"""``lv2 train``: one stage of the world model, every stage in order (``all``), or the latent cache. Its flags are
the fields of :class:`model.training.config.StageArgs` and :class:`~model.training.config.LoopConfig`, its stages
the registry :data:`model.training.config.STAGES`."""

from __future__ import annotations

import argparse

from lv2_env.cli.options import add_dataclass_arguments, dataclass_from_args, readable_dir, writable_dir
from model.precision import add_precision_argument
from model.training.config import STAGES, LoopConfig, StageArgs, stages_of_kind


def description() -> str:
    """``lv2 train``'s description, its stages and their defaults read from the registry."""
    stages = "; ".join(f"{spec.name}: {spec.description} [{spec.steps} steps, lr {spec.lr:g}, batch {spec.batch_size}]"
                       for spec in STAGES.values())
    return (
        "Train one stage of the world model on a data directory written by `lv2 data`. Checkpoints are written "
        "atomically every --checkpoint-every steps; --resume continues from the last one. Stages, in order, with "
        f"the steps, learning rate and batch size they take when --steps, --lr and --batch-size are not given: "
        f"{stages}. The DiT stages ({', '.join(stages_of_kind('dit'))}) each start from the previous stage's "
        "result (--init). `all` runs every stage in order into OUT/<stage>, each with its defaults (finished "
        "stages skipped, interrupted ones resumed). `cache-latents` encodes a data directory once with a trained "
        "VAE (the DiT stages need it)."
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a stage of the world model", description=description())
    p.add_argument("stage", choices=[*STAGES, "all", "cache-latents"])
    p.add_argument("--preset", default="tiny", help="model preset (model/presets.py; default tiny)")
    # StageArgs' and LoopConfig's fields; the two share --steps and --seed. None: the stage's own (parse_args).
    add_dataclass_arguments(p, StageArgs, skip=("preset", "render"), defaults={"steps": None})
    add_dataclass_arguments(p, LoopConfig, skip=("steps", "seed", "precision", "progress"),
                            defaults={"out": None, "lr": None, "warmup_steps": 200})
    add_precision_argument(p)
    p.add_argument("--export-latest", metavar="DIR", default=None,
                   help="do not train: export the last checkpoint in --out to DIR, as the stage's final/ would be")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def fill_stage_defaults(args: argparse.Namespace) -> None:
    """``lv2 train STAGE``: the stage's steps, learning rate and batch size (:data:`STAGES`) where the flags were
    not given. (``all`` gives every stage its own; ``cache-latents`` trains nothing.)"""
    spec = STAGES.get(args.stage)
    if spec is None:
        return
    for name in ("steps", "lr", "batch_size"):
        if getattr(args, name) is None:
            setattr(args, name, getattr(spec, name))


def check_inputs(args: argparse.Namespace) -> None:
    """``lv2 train``'s flags and directories, before any training: what the stage needs given, the inputs
    readable, the outputs creatable."""
    if args.stage == "cache-latents" and not args.vae:
        raise ValueError("cache-latents needs --vae DIR (a trained VAE)")
    if args.stage != "cache-latents" and not args.out:
        raise ValueError("training needs --out DIR")
    readable_dir(args.data, "--data")
    if args.stage == "cache-latents":
        writable_dir(args.data, "--data", create=False)  # the latent cache is written inside the data directory
    if args.stage != "depth" and (args.generated_data or args.generated_eval_data):
        raise ValueError(f"--generated-data and --generated-eval-data are the depth stage's; stage {args.stage!r} "
                         "trains on --data alone")
    for flag, path in (("--eval-data", args.eval_data), ("--vae", args.vae), ("--init", args.init),
                       ("--generated-data", args.generated_data), ("--generated-eval-data", args.generated_eval_data)):
        readable_dir(path, flag)
    if args.export_latest:
        readable_dir(args.out, "--out")  # the run whose last checkpoint is exported
        writable_dir(args.export_latest, "--export-latest", create=False)  # written only once the stage is built
    elif args.stage != "cache-latents":
        writable_dir(args.out, "--out")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from model.presets import get_preset
    from model.training.loop import Checkpointer, train
    from model.training.stages import build_stage, train_all

    from lv2_env.conditioning.warp import render_clip

    preset = get_preset(args.preset)
    render = render_clip if preset.condition == "rendered" else None
    check_inputs(args)
    if args.conditioning == "memory":
        if preset.condition != "rendered":
            raise ValueError(f"--conditioning memory needs a condition='rendered' preset; {preset.name!r} is "
                             f"{preset.condition!r}")
        from lv2_env.data.memory_renders import memory_of_first_frame, memory_render_loader

        # The cache encodes each training clip's render of its sequence's memory; held-out clips (the stage's
        # evaluation) are conditioned on the memory of their first frame, as `lv2 eval` conditions them.
        render = memory_render_loader(args.data) if args.stage == "cache-latents" else memory_of_first_frame
    if args.stage == "cache-latents":
        from model.training.latents import cache_latents

        out = cache_latents(args.data, args.vae, precision=args.precision, progress=not args.quiet, render=render,
                            condition="memory" if args.conditioning == "memory" else "rendered")
        print(f"latents in {out}")
        return 0
    if args.stage == "all":
        final = train_all(preset, args.data, args.eval_data, args.out, precision=args.precision, seed=args.seed,
                          progress=not args.quiet, render=render_clip)
        print(f"all stages trained; the model is {final} (load it with checkpoint={str(final)!r})")
        return 0
    stage = build_stage(args.stage, dataclass_from_args(StageArgs, args, preset=preset, render=render))
    if args.export_latest:
        state = Checkpointer(args.out).load(stage.module())
        stage.export(Path(args.export_latest))
        print(f"exported step {state['step']} of {args.out} to {args.export_latest}")
        return 0
    result = train(stage, dataclass_from_args(LoopConfig, args, progress=not args.quiet))
    print(f"stage {args.stage}: {result['step']} steps; result in {args.out}/final")
    return 0
