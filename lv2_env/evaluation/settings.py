"""What ``lv2 eval`` scores and how: :class:`EvalSettings`, whose fields are the command's flags.

Torch-free (the command line builds its flags from it while printing ``--help``): the evaluation itself is in
:mod:`lv2_env.evaluation.clips` (single clips) and :mod:`lv2_env.evaluation.rollouts` (long rollouts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lv2_env.data.splits import WORLD_TEST_SCENES
from model.precision import parse_precision
from model.presets import RENDERED_CONDITIONINGS


@dataclass(frozen=True, kw_only=True)
class EvalSettings:
    """One evaluation: ``--data`` scores single clips, ``--rollouts`` long world rollouts, or both.

    Its paths are checked against the file system by ``lv2_env.cli.eval.check_paths`` when the command runs, not
    here: a settings object describes an evaluation, wherever it may run.

    ``sampling_steps``, ``precision`` and ``control_encoder`` are the options every generating verb shares; their
    flags (``--steps``, ``--precision``, ``--control-encoder``) are ``lv2_env.cli.options.add_generation_options``'s."""

    checkpoint: Path = field(metadata={"help": "checkpoint directory (model.checkpoint format, with lv2.json)"})
    split: str = field(default="test", metadata={
        "help": "which held-out scenes: test (default; the frozen 12 scenes no choice looked at) or validation (the "
                "scenes choices are made on); --data must hold clips of that split (`lv2 data procedural --split "
                "test` or `--split validation`)",
        "choices": ("test", "validation")})
    data: Path | None = field(default=None, metadata={
        "help": "evaluation data directory (`lv2 data procedural --split test|validation`, or your own videos): "
                "score single clips"})
    clips: int = field(default=8, metadata={"help": "clips to evaluate, spread over the directory (default 8)"})
    out: Path = field(metadata={
        "help": "output directory (created): report.json, grid.png, psnr_per_frame.png for --data; "
                "world_rollouts.jsonl (a line per scene as it finishes), world_report.json, world_psnr.png, "
                "world_strip.png (rewritten after each scene) for --rollouts"})
    sampling_steps: int | None = field(default=None, metadata={
        "help": "denoising steps (default: the checkpoint's)"})
    precision: str = field(default="auto", metadata={"help": "auto, bf16 or fp32 (model.precision)"})
    control_encoder: str = field(default="full", metadata={
        "help": "what encodes the conditioning videos: full (the VAE encoder) or distilled"})
    conditioning: str | None = field(default=None, metadata={
        "help": "what the model is shown along the path (clips: the memory of their first frame): memory (default "
                "for a model conditioned on a render of the path, as the shipped one) or last_frame (the last frame "
                "alone, warped)",
        "choices": RENDERED_CONDITIONINGS})
    composite: bool | None = field(default=None, metadata={
        "help": "show the world memory's pixels over the generated ones where it holds a surface (default: on "
                "with the memory; --no-composite: off)"})
    seed: int = field(default=0, metadata={"help": "seed of the noise (the same for every clip)"})
    grid_clips: int = field(default=4, metadata={"help": "clips shown in grid.png (default 4)"})
    rollouts: int = field(default=0, metadata={
        "help": "also run long LV2/World-v0 rollouts in this many held-out scenes of --split (at most 12 for test; "
                "every style in any 6), each a walk, a 360-degree turn and a there-and-back path (world_report.json)"})
    rollout_seconds: int = field(default=60, metadata={
        "help": "seconds of video per rollout (default 60), in whole clips: 1 s each for the shipped model, so any "
                "whole number of seconds; for a model with longer clips, rounded to the nearer number of clips "
                "with a note"})

    control_source: str = field(default="scene", metadata={
        "help": "rollouts: where the control signals come from: scene (the exact geometry) or cache (the point cache "
                "of the frames the world generated, as in a world from a picture; adds where it breaks: the cache's "
                "depth error, its holes, the first step below repeat)",
        "choices": ("scene", "cache")})
    there_and_back_seconds: int = field(default=10, metadata={
        "help": "rollouts: seconds forward, then as many back, of the there-and-back path (default 10; 0: none)"})
    resume: bool = field(default=False, metadata={
        "help": "rollouts: keep the scenes already finished in OUT (world_rollouts.jsonl) by a run of the same "
                "settings and run only the rest: a long evaluation cut short goes on where it stopped"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "checkpoint", Path(self.checkpoint))
        object.__setattr__(self, "out", Path(self.out))
        if self.data is not None:
            object.__setattr__(self, "data", Path(self.data))
        parse_precision(self.precision)
        if not self.data and self.rollouts < 1:
            raise ValueError("nothing to evaluate: give --data EVAL_DIR (single clips) and/or --rollouts N "
                             "(long rollouts)")
        if self.composite and self.conditioning == "last_frame":
            raise ValueError("--composite shows the world memory's pixels, so it needs --conditioning memory; got "
                             "--conditioning last_frame")
        if self.rollouts > 0 and self.rollout_seconds < 1:
            raise ValueError(f"--rollout-seconds must be at least 1, got {self.rollout_seconds}")
        if self.resume and self.rollouts < 1:
            raise ValueError("--resume continues long rollouts: give --rollouts N")
        if self.split not in ("test", "validation"):
            raise ValueError(f"--split must be test or validation, got {self.split!r}")
        if self.split == "test" and self.rollouts > WORLD_TEST_SCENES:
            raise ValueError(f"--rollouts {self.rollouts}: the test split holds {WORLD_TEST_SCENES} scenes; give at "
                             f"most {WORLD_TEST_SCENES}, or --split validation for more")
        if self.there_and_back_seconds < 0:
            raise ValueError(f"--there-and-back-seconds must be 0 or more, got {self.there_and_back_seconds}")
        if self.sampling_steps is not None and self.sampling_steps < 1:
            raise ValueError(f"--steps must be at least 1, got {self.sampling_steps}")
