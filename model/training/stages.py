"""Building any stage by name, and ``train all``: every stage of the tiny model, one after another.

``lv2 train all`` runs, each into ``OUT/<stage>`` and each resumable:

1. ``vae`` on pixel clips, then the training clips' latents are cached with its result;
2. ``base`` (I2V DiT + text encoder), ``control`` (LongVie 2 stage 1), ``degradation`` (stage 2),
   ``history`` (stage 3), each starting from the previous stage's ``final/``;
3. ``depth``: the small monocular depth network, for worlds with no known geometry.

A stage whose ``final/`` exists is skipped, so an interrupted ``train all`` picks up where it stopped. The
budgets below are sized from measured step times on the 2-core machine (BENCHMARKS.md) to keep each stage
under about 2.5 hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from model.presets import Preset
from model.training.loop import LoopConfig, train

STAGE_ORDER = ("vae", "base", "control", "degradation", "history", "depth")
DIT_STAGES = ("base", "control", "degradation", "history")
DEFAULT_STEPS = {"vae": 12000, "base": 12000, "control": 6000, "degradation": 3000, "history": 4000, "depth": 4000}
DEFAULT_LR = {"vae": 3e-4, "base": 3e-4, "control": 1e-4, "degradation": 5e-5, "history": 5e-5, "depth": 2e-3}
DEFAULT_BATCH = {"vae": 2, "base": 8, "control": 8, "degradation": 8, "history": 8, "depth": 16}


@dataclass
class StageArgs:
    """What building a stage needs beyond the loop's own configuration."""

    preset: Preset
    data: Path
    eval_data: Path | None = None
    vae: Path | None = None
    init: Path | None = None
    batch_size: int | None = None
    crop: int = 64
    frames: int = 17
    freeze_encoder: bool = False
    steps: int = 1000
    seed: int = 0


def build_stage(name: str, args: StageArgs):
    """The stage object for ``name`` (see :data:`STAGE_ORDER`)."""
    if name == "vae":
        from model.training.vae_stage import VaeStage, VaeStageConfig

        config = VaeStageConfig(batch_size=args.batch_size or DEFAULT_BATCH["vae"], crop=args.crop, frames=args.frames,
                                freeze_encoder=args.freeze_encoder)
        return VaeStage(args.preset, args.data, args.eval_data, config, init=args.init)
    if name == "depth":
        from model.training.depth_stage import DepthStage, DepthStageConfig

        return DepthStage(args.data, args.eval_data, DepthStageConfig(batch_size=args.batch_size or DEFAULT_BATCH["depth"]),
                          init=args.init)
    from model.training.dit_stage import RECIPES, DitStage, DitStageConfig

    if name not in RECIPES:
        raise ValueError(f"unknown stage {name!r}; expected one of {list(STAGE_ORDER)}")
    if args.vae is None:
        raise ValueError(f"stage {name} needs the trained VAE directory (--vae DIR)")
    config = DitStageConfig(batch_size=args.batch_size or DEFAULT_BATCH[name], data_degradation_after=args.steps // 5)
    return DitStage(RECIPES[name], args.preset, args.data, args.vae, args.eval_data, config, init=args.init, seed=args.seed)


def train_all(
    preset: Preset,
    data: Path,
    eval_data: Path | None,
    out: Path,
    steps: dict[str, int] | None = None,
    precision: str = "bf16",
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Train every stage in order (skipping finished ones, resuming interrupted ones); returns the final checkpoint."""
    from model.training.latents import cache_latents

    out = Path(out)
    steps = {**DEFAULT_STEPS, **(steps or {})}
    init = None
    vae_dir = out / "vae" / "final" / "vae"
    for name in STAGE_ORDER:
        run = out / name
        if not (run / "final").is_dir():
            stage_init = init if name in DIT_STAGES else None
            stage = build_stage(name, StageArgs(preset, Path(data), eval_data, vae_dir if name != "vae" else None,
                                                stage_init, steps=steps[name], seed=seed))
            resume = (run / "checkpoints" / "latest").is_file()
            train(stage, LoopConfig(out=run, steps=steps[name], lr=DEFAULT_LR[name], seed=seed, precision=precision,
                                    resume=resume, progress=progress))
        if name == "vae":
            cache_latents(data, vae_dir, progress=progress)
        elif name in DIT_STAGES:
            init = run / "final"
    return out / DIT_STAGES[-1] / "final"
