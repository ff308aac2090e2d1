"""The world model as the environments use it: a checkpoint, its generator and its depth network.

``WorldModel.load(None)`` is the tiny model this project trained on its procedural worlds and ships in
``model/shipped/`` (see model/shipped/README.md for how it was trained and how close it comes to the ground
truth). Any directory written by ``lv2 train`` (a stage's ``final/``) loads the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from model.checkpoint import Checkpoint, load_checkpoint
from model.generator import BatchGenerator, LongVideoGenerator
from model.pipeline import SamplingOptions
from model.checkpoint_files import check_diffusers_model
from model.control_encoder import CONTROL_ENCODER_FOLDER, ControlEncoder
from model.precision import check_device, precision_name, resolve_precision
from model.presets import CONTROL_ENCODERS, DECODERS, Preset
from model.vae import VideoVAE

SHIPPED_DIR = Path(__file__).parent / "shipped"


def shipped_checkpoint() -> Path:
    """The directory of the shipped tiny model; a ValueError if this install lacks it."""
    if not (SHIPPED_DIR / "lv2.json").is_file():
        raise ValueError(f"the shipped tiny model is missing from {SHIPPED_DIR} (a broken install?); "
                         "pass checkpoint=DIR with a model written by `lv2 train`")
    return SHIPPED_DIR


@dataclass
class WorldModel:
    """A loaded checkpoint plus what generating a world needs besides the generator."""

    checkpoint: Checkpoint
    directory: Path
    autocast: torch.dtype | None = None  # torch.bfloat16, or None for float32 (model.precision)
    sampling_steps: int | None = None
    depth_estimator: object | None = None

    @classmethod
    def load(
        cls,
        directory: str | Path | None = None,
        preset: str | None = "tiny",
        device: str = "cpu",
        precision: str = "auto",
        sampling_steps: int | None = None,
        need_depth: bool = False,
        decoder: str = "full",
        control_encoder: str = "full",
    ) -> "WorldModel":
        """Load ``directory`` (the shipped model if None); ``preset``: refuse a checkpoint of another preset;
        ``precision``: ``"auto"`` (bf16 only where this device computes it faster), ``"bf16"`` or ``"fp32"``;
        ``decoder``: ``"full"`` or ``"fast"`` (the distilled decoder in ``vae-fast/``); ``control_encoder``:
        ``"full"`` (the VAE encoder) or ``"distilled"`` (the model's distilled encoder of the conditioning videos in
        ``control-encoder/``; a model without one raises ValueError saying so).
        ``device``: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; one this machine lacks raises ValueError naming what it has.

        Every component's files are checked before it is built (:mod:`model.checkpoint_files`): a broken one
        (``vae-fast/``, ``control-encoder/`` and ``depth/`` included) raises one ValueError naming the file and what
        is wrong."""
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {list(DECODERS)}, got {decoder!r}")
        device = str(check_device(device))
        autocast = resolve_precision(precision, device)
        if sampling_steps is not None and (not isinstance(sampling_steps, int) or sampling_steps < 1):
            raise ValueError(f"sampling_steps must be a positive integer or None, got {sampling_steps!r}")
        directory = Path(directory) if directory is not None else shipped_checkpoint()
        conditioning_encoder = load_control_encoder(directory, control_encoder)  # refused before the rest loads
        checkpoint = load_checkpoint(directory, expect_preset=preset)
        if decoder == "fast":
            if not (directory / "vae-fast").is_dir():
                raise ValueError(f"{str(directory)!r} has no distilled decoder (vae-fast/): use decoder='full', or "
                                 "distil one with `python -m model.training.distill_decoder`")
            checkpoint.vae = VideoVAE.from_pretrained(directory / "vae-fast")  # the same encoder, so the same latents
        checkpoint.control_encoder = conditioning_encoder
        if checkpoint.control_encoder is not None:
            checkpoint.control_encoder.to(device)
        checkpoint.transformer.to(device)
        checkpoint.vae.to(device)
        checkpoint.text_encoder.to(device)
        depth = None
        if need_depth:
            from model.depth import TinyDepthEstimator

            if not (directory / "depth").is_dir():
                raise ValueError(f"{str(directory)!r} has no depth network (depth/): the point-cache control source "
                                 "needs one (`lv2 train depth`, exported into the model directory)")
            depth = TinyDepthEstimator.from_pretrained(directory / "depth")
            depth.net.to(device)
        return cls(checkpoint, directory, autocast, sampling_steps, depth)

    @property
    def control_encoder_name(self) -> str:
        """What encodes the conditioning videos: ``"distilled"`` or ``"full"`` (the VAE encoder)."""
        return self.checkpoint.control_encoder_name

    @property
    def preset(self) -> Preset:
        """Size, clip length, frame rate and conditioning (``"rendered"``: every clip also needs the last frame
        rendered along its camera path)."""
        return self.checkpoint.preset

    @property
    def precision(self) -> str:
        """What the generator computes in: ``"bf16"`` or ``"fp32"``."""
        return precision_name(self.autocast)

    def generator(self, seed: int = 0) -> LongVideoGenerator:
        """One world's generator (a batch of one)."""
        return self.checkpoint.generator(options=self.sampling_options(), seed=seed, autocast=self.autocast)

    def batch_generator(self, slots: int) -> BatchGenerator:
        """``slots`` worlds generated together (the vector env's one generator)."""
        return self.checkpoint.batch_generator(slots, options=self.sampling_options(), autocast=self.autocast)

    def sampling_options(self) -> SamplingOptions:
        """The checkpoint's sampling settings, with ``sampling_steps`` if it was given."""
        return SamplingOptions.from_preset(self.checkpoint.preset.sampling, steps=self.sampling_steps)

    def estimate_depth(self, frames: np.ndarray) -> np.ndarray:
        """Metric depth ``[N, H, W]`` of uint8 frames ``[N, H, W, 3]`` from the model's depth network."""
        if self.depth_estimator is None:
            raise ValueError(f"{str(self.directory)!r} was loaded without its depth network (need_depth=False)")
        return self.depth_estimator(frames)

    def check_prompt(self, prompt: str) -> None:
        """Warn (naming them) about words the text encoder does not know; the words still encode, as unknown."""
        tokenize = getattr(self.checkpoint.text_encoder, "tokenize", None)
        if tokenize is not None:
            tokenize([prompt])


def load_control_encoder(directory: Path, choice: str) -> ControlEncoder | None:
    """The distilled control encoder of ``directory`` for ``choice`` ``"distilled"``, or None for ``"full"`` (the
    VAE encoder does the work); ValueError for another choice or a model without one."""
    if choice not in CONTROL_ENCODERS:
        raise ValueError(f"control_encoder must be one of {list(CONTROL_ENCODERS)}, got {choice!r}")
    if choice == "full":
        return None
    folder = directory / CONTROL_ENCODER_FOLDER
    if not folder.is_dir():
        raise ValueError(f"{str(directory)!r} has no distilled control encoder ({CONTROL_ENCODER_FOLDER}/): use "
                         "control_encoder='full' (the VAE encoder), or distil one with "
                         "`python -m model.training.distill_control_encoder`")
    check_diffusers_model(folder, ControlEncoder, "the control encoder")
    return ControlEncoder.from_pretrained(str(folder), local_files_only=True).eval()
