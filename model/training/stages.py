"""Building any stage by name, and ``train all``: every stage of the tiny model, one after another.

``lv2 train all`` runs, each into ``OUT/<stage>`` and each resumable:

1. ``vae`` on pixel clips, then the training clips' latents are cached with its result;
2. ``vae-decoder``: the VAE's decoder fine-tuned with its encoder frozen (the latent space, the cached latents
   and everything trained on them stay valid, while reconstructions sharpen);
3. ``base`` (I2V DiT + text encoder), ``control`` (LongVie 2 stage 1), ``degradation`` (stage 2),
   ``history`` (stage 3), each starting from the previous stage's ``final/``;
4. ``depth``: the small monocular depth network, for worlds with no known geometry;
5. the model: ``history``'s result with the fine-tuned VAE and the depth network, in ``OUT/model``
   (:func:`assemble_model`), the directory ``lv2`` loads with ``checkpoint=`` (the shipped one is a copy).

A stage whose ``final/`` exists is skipped, so an interrupted ``train all`` picks up where it stopped. The
budgets below are the ones the shipped model was trained with (model/shipped/README.md gives the measured
step times and the time each stage took on the 2-core machine).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from model.presets import Preset
from model.training.loop import LoopConfig, train

STAGE_ORDER = ("vae", "vae-decoder", "base", "control", "degradation", "history", "depth")
DIT_STAGES = ("base", "control", "degradation", "history")
DEFAULT_STEPS = {"vae": 5000, "vae-decoder": 6000, "base": 4000, "control": 2000, "degradation": 600, "history": 800,
                 "depth": 3000}
DEFAULT_LR = {"vae": 3e-4, "vae-decoder": 2e-4, "base": 3e-4, "control": 1e-4, "degradation": 5e-5, "history": 5e-5,
              "depth": 2e-3}
DEFAULT_BATCH = {"vae": 2, "vae-decoder": 2, "base": 8, "control": 8, "degradation": 8, "history": 8, "depth": 16}


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
    render: Callable[[dict], np.ndarray] | None = None  # a "rendered" preset's conditioning (lv2_env.signals.warp.render_clip)
    steps: int = 1000
    seed: int = 0


def build_stage(name: str, args: StageArgs):
    """The stage object for ``name`` (see :data:`STAGE_ORDER`; ``vae-decoder`` is ``vae`` with a frozen encoder)."""
    if name in ("vae", "vae-decoder"):
        from model.training.vae_stage import VaeStage, VaeStageConfig

        config = VaeStageConfig(batch_size=args.batch_size or DEFAULT_BATCH[name], crop=args.crop, frames=args.frames,
                                freeze_encoder=args.freeze_encoder or name == "vae-decoder")
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
    return DitStage(RECIPES[name], args.preset, args.data, args.vae, args.eval_data, config, init=args.init, seed=args.seed,
                    render=args.render)


def assemble_model(dit: Path, vae: Path, depth: Path | None, out: Path, runs: dict[str, Path] | None = None) -> Path:
    """The model directory: the last DiT stage's checkpoint, with ``vae`` (a fine-tuned decoder of the same
    encoder) and the depth network; ``runs`` (stage -> run directory) adds ``training_log.jsonl`` with every
    stage's logged metrics."""
    import json
    import shutil

    from model.checkpoint import read_checkpoint_info
    from model.training.latents import vae_id

    dit, vae, out = Path(dit), Path(vae), Path(out)
    meta = read_checkpoint_info(dit)
    if vae_id(dit / "vae") != vae_id(vae):
        raise ValueError(f"{vae} has another encoder than the one {dit} was trained on: its latents would not match")
    temporary = out.with_name(out.name + ".tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    shutil.copytree(dit, temporary)
    shutil.rmtree(temporary / "vae")
    shutil.copytree(vae, temporary / "vae")
    if depth is not None:
        shutil.copytree(depth, temporary / "depth")
    if runs:
        lines = []
        for stage, run in runs.items():
            metrics = Path(run) / "metrics.jsonl"
            if metrics.is_file():
                lines += [json.dumps({"stage": stage, **json.loads(line)}) for line in metrics.read_text().splitlines() if line]
        (temporary / "training_log.jsonl").write_text("\n".join(lines) + "\n")
    meta["notes"] = {**meta.get("notes", {}), "assembled_from": {"dit": str(dit), "vae": str(vae), "depth": str(depth)}}
    (temporary / "lv2.json").write_text(json.dumps(meta, indent=2))
    shutil.rmtree(out, ignore_errors=True)
    temporary.replace(out)
    return out


def train_all(
    preset: Preset,
    data: Path,
    eval_data: Path | None,
    out: Path,
    steps: dict[str, int] | None = None,
    precision: str = "auto",
    seed: int = 0,
    progress: bool = True,
    render: Callable[[dict], np.ndarray] | None = None,
) -> Path:
    """Train every stage in order (skipping finished ones, resuming interrupted ones); returns the model directory.

    ``render``: a ``condition="rendered"`` preset's conditioning of a clip record (``lv2 train all`` passes
    ``lv2_env.signals.warp.render_clip``)."""
    if preset.condition == "rendered" and render is None:
        raise ValueError(f"preset {preset.name!r} is conditioned on rendered frames: pass render=")
    from model.training.latents import cache_latents

    out = Path(out)
    steps = {**DEFAULT_STEPS, **(steps or {})}
    init = None
    vae_dir = out / "vae" / "final" / "vae"
    for name in STAGE_ORDER:
        run = out / name
        if not (run / "final").is_dir():
            stage_init = init if name in DIT_STAGES else (vae_dir if name == "vae-decoder" else None)
            stage = build_stage(name, StageArgs(preset, Path(data), eval_data, vae_dir if name in DIT_STAGES else None,
                                                stage_init, steps=steps[name], seed=seed, render=render))
            resume = (run / "checkpoints" / "latest").is_file()
            train(stage, LoopConfig(out=run, steps=steps[name], lr=DEFAULT_LR[name], seed=seed, precision=precision,
                                    resume=resume, progress=progress))
        if name == "vae":
            cache_latents(data, vae_dir, precision=precision, progress=progress,
                          render=render if preset.condition == "rendered" else None)
        elif name in DIT_STAGES:
            init = run / "final"
    return assemble_model(out / DIT_STAGES[-1] / "final", out / "vae-decoder" / "final" / "vae",
                          out / "depth" / "final" / "depth", out / "model", runs={n: out / n for n in STAGE_ORDER})
