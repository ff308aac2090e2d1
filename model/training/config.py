"""What a training run is configured by: the stage registry, :class:`StageArgs` and :class:`LoopConfig`.

This module imports no torch and no numpy (the ``lv2`` command line builds ``lv2 train``'s flags from it while
printing its help), so the types of the heavy objects a stage is built with (:class:`model.presets.Preset`, a
render function) are annotations only.

* :data:`STAGES`: every stage, in the order ``lv2 train all`` runs them, with its default budget (steps,
  learning rate, batch size) and its kind (``vae``, ``dit`` or ``depth``). ``lv2 train``'s stage choices, its
  help and its per-stage defaults, and :mod:`model.training.stages`, all read it.
* :class:`StageArgs`: what building a stage needs beyond the loop (:func:`model.training.stages.build_stage`).
* :class:`LoopConfig`: the shared loop's configuration (:func:`model.training.loop.train`).

Fields carry ``metadata={"help": ...}`` (and ``"flag"`` / ``"choices"`` where the flag is not simply
``--field-name``), from which ``lv2_env.cli.options.add_dataclass_arguments`` makes the command's flags: a new
setting is one field here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Literal

from model.precision import PRECISIONS, parse_precision

if TYPE_CHECKING:
    import numpy as np

    from model.presets import Preset

StageKind = Literal["vae", "dit", "depth"]
STAGE_KINDS: tuple[StageKind, ...] = ("vae", "dit", "depth")


@dataclass(frozen=True)
class StageSpec:
    """One training stage: its name (``lv2 train NAME``), what it trains and its default budget.

    ``kind``: ``vae`` (the video VAE, pixel clips), ``dit`` (a LongVie 2 DiT stage, cached latents, starting
    from the previous DiT stage's result) or ``depth`` (the small monocular depth network)."""

    name: str
    kind: StageKind
    description: str
    steps: int
    lr: float
    batch_size: int

    def __post_init__(self) -> None:
        if self.kind not in STAGE_KINDS:
            raise ValueError(f"stage {self.name!r}: kind must be one of {list(STAGE_KINDS)}, got {self.kind!r}")
        if self.steps < 1 or self.batch_size < 1 or not self.lr > 0:
            raise ValueError(f"stage {self.name!r}: steps and batch_size must be >= 1 and lr > 0, got "
                             f"{self.steps}, {self.batch_size} and {self.lr}")


# The budgets are the ones the shipped model was trained with (model/shipped/README.md gives the measured step
# times and the time each stage took on the 2-core machine).
STAGES: dict[str, StageSpec] = {spec.name: spec for spec in (
    StageSpec("vae", "vae", "the tiny preset's VAE", steps=5000, lr=3e-4, batch_size=2),
    StageSpec("vae-decoder", "vae", "the VAE's decoder fine-tuned with its encoder frozen (--init the VAE)",
              steps=6000, lr=2e-4, batch_size=2),
    StageSpec("base", "dit", "I2V DiT + text encoder", steps=4000, lr=3e-4, batch_size=8),
    StageSpec("control", "dit", "LongVie 2 stage 1, the control branches", steps=2000, lr=1e-4, batch_size=8),
    StageSpec("degradation", "dit", "LongVie 2 stage 2, degraded first frames", steps=600, lr=5e-5, batch_size=8),
    StageSpec("history", "dit", "LongVie 2 stage 3, history", steps=800, lr=5e-5, batch_size=8),
    StageSpec("depth", "depth", "a small monocular depth network", steps=3000, lr=2e-3, batch_size=16),
)}


def stage_order() -> tuple[str, ...]:
    """Every stage's name, in the order ``lv2 train all`` runs them."""
    return tuple(STAGES)


def stages_of_kind(kind: StageKind) -> tuple[str, ...]:
    """The names of the stages of ``kind`` (``"dit"``: the DiT stages, each starting from the one before), in order."""
    if kind not in STAGE_KINDS:
        raise ValueError(f"stage kind must be one of {list(STAGE_KINDS)}, got {kind!r}")
    return tuple(name for name, spec in STAGES.items() if spec.kind == kind)


def stage_spec(name: str) -> StageSpec:
    """The registry entry of stage ``name``; a ValueError names the stages there are."""
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r}; expected one of {list(STAGES)}")
    return STAGES[name]


def per_stage(attribute: str) -> str:
    """``"vae 5000, vae-decoder 6000, ..."``: one default of every stage, for help texts."""
    return ", ".join(f"{name} {getattr(spec, attribute):g}" for name, spec in STAGES.items())


@dataclass
class StageArgs:
    """What building a stage needs beyond the loop's own configuration."""

    preset: Preset = field(metadata={"help": "the model preset (model.presets)"})
    data: Path = field(metadata={"help": "training data directory"})
    eval_data: Path | None = field(default=None, metadata={"help": "held-out data directory (validation split)"})
    vae: Path | None = field(default=None, metadata={"help": "DiT stages and cache-latents: the trained VAE directory"})
    init: Path | None = field(default=None, metadata={
        "help": "control/degradation/history: the previous stage's final checkpoint; vae/depth: saved weights to "
        "start from"})
    batch_size: int | None = field(default=None, metadata={"help": f"default: per stage ({per_stage('batch_size')})"})
    generated_data: Path | None = field(default=None, metadata={
        "help": "depth: the world model's own frames beside the true depth (`lv2 data generated-frames`), mixed into "
        "every batch"})
    generated_eval_data: Path | None = field(default=None, metadata={
        "help": "depth: held-out generated frames (`lv2 data generated-frames --split validation`), evaluated beside "
        "--eval-data"})
    crop: int = field(default=64, metadata={
        "help": "vae and depth: square crop size of the training windows (depth: 0 trains on whole frames)"})
    frames: int = field(default=17, metadata={"help": "vae: frames per training window (4k+1; as long as a clip)"})
    freeze_encoder: bool = field(default=False, metadata={
        "help": "vae: fine-tune only the decoder of the VAE given by --init (keeps its latent space)"})
    # A "rendered" preset's conditioning of a clip record (lv2_env.conditioning.warp.render_clip); not a flag.
    render: Callable[[dict], np.ndarray] | None = None
    conditioning: str = field(default="first_frame", metadata={
        "help": "DiT stages and cache-latents of a condition='rendered' preset: what the model is trained to read "
        "along the path: 'first_frame' (the clip's first frame warped), or 'memory' (the world memory of earlier "
        "frames of the sequence, as World-v0 builds it: run `lv2 data memory-renders` first; the checkpoint then "
        "records trained_conditioning='memory')", "choices": ("first_frame", "memory")})
    steps: int = field(default=1000, metadata={"help": f"training steps (default: the stage's: {per_stage('steps')})"})
    seed: int = field(default=0, metadata={
        "help": "seed of the training run: the batches, the random streams, a new DiT's weights"})


@dataclass
class LoopConfig:
    """The training loop's configuration (:func:`model.training.loop.train`), the same for every stage."""

    out: Path = field(metadata={"help": "run directory: checkpoints/, metrics.jsonl, loss.png, final/"})
    steps: int = field(default=1000, metadata={"help": "steps to train to (a resumed run may extend them)"})
    lr: float = field(default=1e-4, metadata={"help": f"peak learning rate (default: per stage: {per_stage('lr')})"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    warmup_steps: int = field(default=100, metadata={"help": "steps of linear warm-up before the cosine decay to 10%"})
    grad_clip: float = field(default=1.0, metadata={"help": "clip the gradient norm to this (0: no clipping)"})
    checkpoint_every: int = field(default=250, metadata={"help": "steps between atomic checkpoints"})
    eval_every: int = field(default=500, metadata={"help": "steps between held-out evaluations"})
    log_every: int = field(default=10, metadata={"help": "steps between lines of metrics.jsonl"})
    plot_every: int = field(default=0, metadata={"help": "steps between redraws of loss.png (0: at every checkpoint "
                                                         "and at the end)"})
    seed: int = field(default=0, metadata={"help": "seed of the batches and of torch's random streams"})
    # "auto" (bf16 where this device computes it faster), "bf16" or "fp32"
    precision: str = field(default="auto", metadata={"help": "auto, bf16 or fp32 (model.precision)",
                                                     "choices": PRECISIONS})
    resume: bool = field(default=False, metadata={"help": "continue from the last checkpoint in --out"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        parse_precision(self.precision)
        for name in ("steps", "checkpoint_every", "eval_every", "log_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if not isinstance(self.plot_every, int) or self.plot_every < 0:
            raise ValueError(f"plot_every must be an integer >= 0 (0: with every checkpoint), got {self.plot_every!r}")
