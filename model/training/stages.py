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
stages, their order and their budgets are :data:`model.training.config.STAGES`; the names below are views of it.
"""

from __future__ import annotations

import dataclasses

from pathlib import Path
from typing import Callable

import numpy as np

from model.presets import Preset
from model.training.config import STAGES, StageArgs, stage_order, stage_spec, stages_of_kind
from model.training.loop import LoopConfig, train

__all__ = ["STAGE_ORDER", "DIT_STAGES", "DEFAULT_STEPS", "DEFAULT_LR", "DEFAULT_BATCH", "StageArgs", "build_stage",
           "assemble_model", "train_all"]

STAGE_ORDER = stage_order()
DIT_STAGES = stages_of_kind("dit")
DEFAULT_STEPS = {name: spec.steps for name, spec in STAGES.items()}
DEFAULT_LR = {name: spec.lr for name, spec in STAGES.items()}
DEFAULT_BATCH = {name: spec.batch_size for name, spec in STAGES.items()}


def build_stage(name: str, args: StageArgs):
    """The stage object for ``name`` (see :data:`STAGE_ORDER`; ``vae-decoder`` is ``vae`` with a frozen encoder);
    ``args.batch_size`` None means the stage's default. The initial weights follow ``args.seed``: torch is
    seeded first, so they do not depend on what the process drew before (imports, other stages)."""
    import torch

    torch.manual_seed(args.seed)
    spec = stage_spec(name)
    batch_size = args.batch_size or spec.batch_size
    if spec.kind == "vae":
        from model.training.vae_stage import VaeStage, VaeStageConfig

        config = VaeStageConfig(batch_size=batch_size, crop=args.crop, frames=args.frames,
                                freeze_encoder=args.freeze_encoder or name == "vae-decoder")
        return VaeStage(args.preset, args.data, args.eval_data, config, init=args.init)
    if spec.kind == "depth":
        from model.training.depth_stage import DepthStage, DepthStageConfig

        return DepthStage(args.data, args.eval_data, DepthStageConfig(batch_size=batch_size, crop=args.crop),
                          init=args.init, generated_data=args.generated_data,
                          generated_eval_data=args.generated_eval_data)
    from model.training.dit_stage import RECIPES, DitStage, DitStageConfig

    if args.vae is None:
        raise ValueError(f"stage {name} needs the trained VAE directory (--vae DIR)")
    config = DitStageConfig(batch_size=batch_size, data_degradation_after=args.steps // 5)
    preset = args.preset
    if args.conditioning == "memory":
        if preset.condition != "rendered":
            raise ValueError(f"--conditioning memory trains a model to read the world memory's renders, which only a "
                             f"condition='rendered' preset reads; {preset.name!r} is {preset.condition!r}")
        preset = dataclasses.replace(preset, trained_conditioning="memory")
    return DitStage(RECIPES[name], preset, args.data, args.vae, args.eval_data, config, init=args.init, seed=args.seed,
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
    ``lv2_env.conditioning.warp.render_clip``)."""
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
