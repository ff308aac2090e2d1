"""Checkpoint directories: one sub-directory per component, each with its config beside its weights.

    checkpoint/
      lv2.json                 preset name, clip geometry, sampling defaults, history length, training notes
      transformer/             LongVieTransformer: config.json + diffusion_pytorch_model.safetensors
      vae/                     AutoencoderKLWan:   config.json + diffusion_pytorch_model.safetensors
      text_encoder/            the text encoder:   config.json + weights (+ vocab.json for the tiny one)

Every weight file is safetensors. :func:`load_checkpoint` refuses a directory of another preset than the one
asked for, with the reason, and checks every file before building anything from it
(:mod:`model.checkpoint_files`): a ``lv2.json`` or ``config.json`` that is not valid JSON, lacks a key or holds
a value of the wrong type raises ValueError naming the file; a weights file with a missing, extra or wrongly
shaped tensor raises :class:`~model.checkpoint_files.CheckpointWeightsError` naming the file and the keys.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from model.checkpoint_files import check_diffusers_model, check_json_keys, read_json_object
from model.generator import BatchGenerator, LongVideoGenerator
from model.pipeline import SamplingOptions
from model.presets import WAN21_I2V_14B_480P, Preset, get_preset
from model.transformer import LongVieTransformer
from model.vae import VideoVAE

CHECKPOINT_FILE = "lv2.json"
FORMAT = "lv2-checkpoint"
# What lv2.json must hold, and the types of what it may hold (save_checkpoint writes them all; older checkpoints
# lack some, and the preset's recorded config stands in for them).
CHECKPOINT_INFO_REQUIRED: dict[str, type | tuple[type, ...]] = {"preset": str}
CHECKPOINT_INFO_OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "version": int, "height": int, "width": int, "frames": int, "fps": int, "history_latent_frames": int,
    "history_frames": (int, type(None)), "control_condition": str, "sampling": dict,
    "preset_config": (dict, type(None)), "notes": dict,
}


@dataclass
class Checkpoint:
    """The components of a generator and what they were built for."""

    preset: Preset
    transformer: LongVieTransformer
    vae: VideoVAE
    text_encoder: Any
    image_encoder: Any = None
    notes: dict[str, Any] = field(default_factory=dict)
    # What loading the published files did (prefixes stripped, keys renamed): model.published.LoadReport, or None.
    load_report: Any = None
    # The distilled encoder of the conditioning videos (model.control_encoder), or None: the VAE encoder does it.
    control_encoder: Any = None

    @property
    def control_encoder_name(self) -> str:
        """What encodes the conditioning videos: ``"distilled"`` or ``"full"`` (the VAE encoder)."""
        return "full" if self.control_encoder is None else "distilled"

    def generator(
        self,
        options: SamplingOptions | None = None,
        seed: int = 0,
        autocast: torch.dtype | None = None,
        history_latent_frames: int | None = None,
    ) -> LongVideoGenerator:
        """A :class:`LongVideoGenerator` with the preset's clip length, history and sampling defaults."""
        return LongVideoGenerator(**self._generator_arguments(options, autocast, history_latent_frames), seed=seed)

    def batch_generator(
        self,
        slots: int,
        options: SamplingOptions | None = None,
        autocast: torch.dtype | None = None,
        history_latent_frames: int | None = None,
    ) -> BatchGenerator:
        """A :class:`BatchGenerator` of ``slots`` videos, with the same defaults as :meth:`generator`."""
        return BatchGenerator(**self._generator_arguments(options, autocast, history_latent_frames), slots=slots)

    def _generator_arguments(self, options, autocast, history_latent_frames) -> dict:
        history = self.preset.history_latent_frames if history_latent_frames is None else history_latent_frames
        return dict(transformer=self.transformer, vae=self.vae, text_encoder=self.text_encoder,
                    frames=self.preset.frames, history_latent_frames=history,
                    options=options or SamplingOptions.from_preset(self.preset.sampling), autocast=autocast,
                    image_encoder=self.image_encoder, condition=self.preset.condition,
                    control_condition=self.preset.control_condition, history_frames=self.preset.history_frames,
                    control_encoder=self.control_encoder)


def build_from_preset(preset: str | Preset, vocabulary: list[str] | None = None, seed: int = 0) -> Checkpoint:
    """A freshly initialised checkpoint of a small preset (training starts here). The tiny text encoder needs the
    word ``vocabulary`` it will know."""
    from model.text import WordTextEncoder

    preset = get_preset(preset) if isinstance(preset, str) else preset
    if preset.text_encoder.get("kind") != "words":
        raise ValueError(
            f"preset {preset.name!r} uses pretrained encoders; load it with model.published.build_longvie_from_published"
        )
    torch.manual_seed(seed)
    text_config = {k: v for k, v in preset.text_encoder.items() if k != "kind"}
    return Checkpoint(
        preset=preset,
        transformer=LongVieTransformer(**preset.transformer),
        vae=VideoVAE.from_config(**preset.vae),
        text_encoder=WordTextEncoder(vocabulary=list(vocabulary or []), **text_config),
    )


def save_checkpoint(checkpoint: Checkpoint, directory: str | Path) -> Path:
    """Write every component and ``lv2.json``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    checkpoint.transformer.save_pretrained(str(directory / "transformer"), safe_serialization=True)
    checkpoint.vae.save_pretrained(directory / "vae")
    checkpoint.text_encoder.save_pretrained(directory / "text_encoder")
    p = checkpoint.preset
    meta = {
        "format": FORMAT,
        "version": 1,
        "preset": p.name,
        "height": p.height,
        "width": p.width,
        "frames": p.frames,
        "fps": p.fps,
        "history_latent_frames": p.history_latent_frames,
        "history_frames": p.history_frames,
        "control_condition": p.control_condition,
        "sampling": p.sampling,
        "preset_config": {k: v for k, v in dataclasses.asdict(p).items()},
        "notes": checkpoint.notes,
    }
    (directory / CHECKPOINT_FILE).write_text(json.dumps(meta, indent=2))
    return directory


def read_checkpoint_info(directory: str | Path) -> dict[str, Any]:
    """The contents of ``lv2.json``; a ValueError names the file and says what is missing or wrong (no such
    directory or file, not valid JSON, another format, a required key absent, a value of the wrong type)."""
    directory = Path(directory)
    path = directory / CHECKPOINT_FILE
    if not directory.is_dir():
        raise ValueError(f"checkpoint directory {str(directory)!r} does not exist")
    if not path.is_file():
        raise ValueError(f"{str(directory)!r} is not an lv2 checkpoint: expected {CHECKPOINT_FILE} in it")
    what = "an lv2 checkpoint's description"
    meta = read_json_object(path, what)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: expected format {FORMAT!r}, got {meta.get('format')!r}")
    check_json_keys(meta, path, what, CHECKPOINT_INFO_REQUIRED, CHECKPOINT_INFO_OPTIONAL)
    return meta


def _recorded_preset(meta: dict[str, Any], path: Path) -> Preset:
    """The preset ``lv2.json`` (at ``path``) records: its ``preset_config`` (else the named preset's defaults)
    with the top-level values over it; a ValueError naming the file when they make no preset."""
    # The checkpoint's own record wins over the named preset's defaults (a preset may change between releases).
    overrides = {k: meta[k] for k in ("height", "width", "frames", "fps", "history_latent_frames", "history_frames",
                                      "control_condition", "sampling") if k in meta}
    try:
        recorded = meta.get("preset_config") or get_preset(meta["preset"]).__dict__
        return Preset(**{**recorded, **overrides, "name": meta["preset"]})
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: does not describe a preset: {error}") from error


def read_checkpoint_preset(directory: str | Path) -> Preset:
    """The preset a checkpoint directory's ``lv2.json`` records, read without loading any weights."""
    return _recorded_preset(read_checkpoint_info(directory), Path(directory) / CHECKPOINT_FILE)


def load_checkpoint(
    directory: str | Path, expect_preset: str | None = None, torch_dtype: torch.dtype | None = None
) -> Checkpoint:
    """Load a checkpoint directory written by :func:`save_checkpoint`.

    ``expect_preset``: refuse (ValueError with the reason) a checkpoint of another preset. Each component's files
    are checked before it is built (see the module's docstring), so a broken one fails with one error naming it.
    """
    from model.text import load_text_encoder

    directory = Path(directory)
    meta = read_checkpoint_info(directory)
    if expect_preset is not None and meta["preset"] != expect_preset:
        raise ValueError(
            f"checkpoint {str(directory)!r} is of preset {meta['preset']!r}, but preset {expect_preset!r} was "
            f"asked for: its shapes ({meta.get('height')}x{meta.get('width')}, {meta.get('frames')} frames) and "
            "components differ"
        )
    preset = _recorded_preset(meta, directory / CHECKPOINT_FILE)
    # diffusers would fill a missing tensor at random and fail later inside torch: check the files first.
    transformer_directory = check_diffusers_model(directory / "transformer", LongVieTransformer, "the transformer")
    transformer = LongVieTransformer.from_pretrained(str(transformer_directory), local_files_only=True, torch_dtype=torch_dtype)
    vae = VideoVAE.from_pretrained(directory / "vae", torch_dtype=torch_dtype)
    text_encoder = load_text_encoder(directory / "text_encoder")
    return Checkpoint(preset, transformer.eval(), vae.eval(), text_encoder, notes=meta.get("notes", {}))


def load_published(
    wan_directory: str | Path,
    control_path: str | Path,
    dit_path: str | Path,
    torch_dtype: torch.dtype | None | str = "auto",
    preset: Preset = WAN21_I2V_14B_480P,
) -> Checkpoint:
    """The full-size generator from the published files (local paths only; see docs/full-size-weights.md).

    ``wan_directory``: Wan2.1-I2V-14B-480P in diffusers layout (transformer/, vae/, text_encoder/, tokenizer/,
    image_encoder/); ``control_path`` / ``dit_path``: LongVie 2's ``control.safetensors`` and ``dit.safetensors``.
    ``torch_dtype``: ``"auto"`` loads in bfloat16 where this device computes it faster (a CUDA GPU with bf16, a CPU
    with native bf16: :func:`model.precision.resolve_precision`), else float32; or a dtype, or None (float32).
    The VAE stays in float32, as Wan's own pipelines keep it. The returned checkpoint's ``load_report``
    (:class:`model.published.LoadReport`) says every renaming the load applied (``describe()`` prints it).

    The published branches were trained conditioned on their control videos' own first frames, so a ``preset``
    whose ``control_condition`` is another is refused.
    """
    from model.image_encoder import ClipImageEncoder
    from model.text import UMT5TextEncoder
    from model.published import LoadReport, build_longvie_from_published

    if preset.control_condition != "own_first_frame":
        raise ValueError(
            f"preset {preset.name!r} conditions the control branches on {preset.control_condition!r}, but LongVie 2's "
            "published branches were trained on their own control video's first frame: use control_condition="
            "'own_first_frame' (as the wan2.1-i2v-14b-480p preset does)"
        )
    if isinstance(torch_dtype, str):
        from model.precision import resolve_precision

        torch_dtype = resolve_precision(torch_dtype, "cuda" if torch.cuda.is_available() else "cpu")
    wan_directory = Path(wan_directory)
    for sub in ("vae", "text_encoder", "image_encoder"):
        if not (wan_directory / sub).is_dir():
            raise ValueError(f"{wan_directory} lacks {sub}/: expected Wan2.1-I2V in diffusers layout")
    report = LoadReport()
    transformer = build_longvie_from_published(
        wan_directory, control_path, dit_path, control_layers=preset.transformer["control_layers"], torch_dtype=torch_dtype,
        report=report,
    )
    return Checkpoint(
        preset=preset,
        transformer=transformer.eval(),
        vae=VideoVAE.from_pretrained(wan_directory / "vae").eval(),
        text_encoder=UMT5TextEncoder.from_pretrained(wan_directory / "text_encoder", torch_dtype=torch_dtype),
        image_encoder=ClipImageEncoder.from_pretrained(wan_directory / "image_encoder", torch_dtype=torch_dtype),
        notes={"source": "published", "wan": str(wan_directory), "control": str(control_path), "dit": str(dit_path)},
        load_report=report,
    )
