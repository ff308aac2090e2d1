"""Model presets: the shapes of every component, recorded with each checkpoint.

* ``tiny`` (:data:`TINY_TRAINING`): the tiny model as ``lv2 train`` builds and trains it on the procedural worlds;
  a few million parameters, sized for a 2-core CPU (from what small prototype VAEs and DiTs cost on these machines,
  and BENCHMARKS.md). 128x128, 17-frame clips, 8 DiT blocks of width 128, two control branches of width 64 over the
  first 4 blocks, a small word-level text encoder, no image encoder; the sampling and history settings training
  starts from (10 steps, 2 history latent frames).
* :data:`TINY_SHIPPED`: the settings of the shipped tiny model (model/shipped/lv2.json): the same shapes and the same
  preset name, with what training settled on: 1 sampling step, history off, trained on the world memory's renders.
  A checkpoint's ``lv2.json`` records its preset in full and that record wins on loading, so this is a reference
  (tests check it against the shipped files), not an entry of :data:`PRESETS`.
* ``wan2.1-i2v-14b-480p``: the published LongVie 2 shape on Wan2.1-I2V-14B-480P (hidden 5120, 40 blocks,
  40 heads, ffn 13824, 36 input channels; control: 12 blocks per branch at 2560 / 20 heads / ffn 6912; CLIP
  ViT-H image cross-attention; umT5-XXL text), 352x640, 81-frame clips.

A preset is plain data: the keyword arguments of each component's constructor. Components record their own
config (diffusers ``ConfigMixin``) and save it beside their weights, so a checkpoint directory is
self-describing; the preset only says how to build one from scratch.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from model.clips import CONTROL_MODALITIES

CONDITIONS = ("first_frame", "rendered")  # what Preset.condition may be
# What each control branch's 20 I2V channels carry (Preset.control_condition): "image", the base's own
# conditioning (the RGB first frame's), shared by every branch (lv2's tiny model was trained so); or
# "own_first_frame", per branch the latent of its control video's own first frame followed by zeros (LongVie 2's
# published code: `dense_image = dense_video[0]`, likewise for the sparse video).
CONTROL_CONDITIONS = ("image", "own_first_frame")
# The VAE decoder a world loads: "full", the checkpoint's own VAE; "fast", vae-fast/, the same encoder with a
# distilled, narrower decoder (model/training/distill_decoder.py).
DECODERS = ("full", "fast")
# Which network encodes the conditioning videos: "full", the VAE encoder (the default); "distilled", the model's
# distilled control encoder (control-encoder/), ~7x less arithmetic, at the quality cost in docs/performance.md.
CONTROL_ENCODERS = ("full", "distilled")
# What a condition="rendered" model is shown along the path in a world (lv2_env/envs/world.py): the last frame alone,
# warped with its depth, or the world memory's render (every surface seen before, first look kept) over that warp.
RENDERED_CONDITIONINGS = ("last_frame", "memory")


def history_frames_for(latent_frames: int) -> int:
    """Pixel frames whose causal-VAE encoding gives ``latent_frames`` latent frames: ``1 + 4 (n - 1)``, 0 for none."""
    return 0 if latent_frames <= 0 else 4 * (latent_frames - 1) + 1


@dataclass(frozen=True)
class Preset:
    """Shapes of every component and the defaults of sampling for one model size."""

    name: str
    height: int
    width: int
    frames: int
    fps: int
    vae: dict[str, Any]
    transformer: dict[str, Any]
    text_encoder: dict[str, Any]
    image_encoder: str | None
    sampling: dict[str, Any] = field(default_factory=dict)
    history_latent_frames: int = 2
    # What the I2V condition channels carry after frame 0: "first_frame" (Wan / LongVie 2: zeros) or "rendered"
    # (GEN3C-style: the previous frame rendered along the clip's camera path with its depth; see model/pipeline.py).
    condition: str = "first_frame"
    # See CONTROL_CONDITIONS: what the control branches are conditioned on (a model's own: it is trained with it).
    control_condition: str = "image"
    # Pixel frames of the previous clip kept as history, its last ones; the causal VAE encodes the first
    # 1 + 4 (history_latent_frames - 1) of them (see history_pixel_frames). None: exactly those, so the history
    # ends with the clip's shared first frame (lv2's tiny model). LongVie 2's published code keeps the last 8
    # frames and gets 2 latent frames from them: frames -8 (alone) and -7..-4; the last 3 are not encoded.
    history_frames: int | None = None
    # For a condition="rendered" model, the one of RENDERED_CONDITIONINGS it was trained on, if only one: None (the
    # first frame warped along the path, which reads either) or "memory" (the world memory's renders of earlier
    # frames, lv2_env/data/memory_renders.py), which a world then refuses to feed the last frame alone.
    trained_conditioning: str | None = None

    def __post_init__(self) -> None:
        if self.condition not in CONDITIONS:
            raise ValueError(f"preset {self.name!r}: condition must be one of {list(CONDITIONS)}, got {self.condition!r}")
        if self.control_condition not in CONTROL_CONDITIONS:
            raise ValueError(f"preset {self.name!r}: control_condition must be one of {list(CONTROL_CONDITIONS)} "
                             f"(what the control branches were trained with), got {self.control_condition!r}")
        if self.trained_conditioning is not None and (self.condition != "rendered"
                                                      or self.trained_conditioning not in RENDERED_CONDITIONINGS):
            raise ValueError(f"preset {self.name!r}: trained_conditioning must be None or, for condition='rendered', "
                             f"one of {list(RENDERED_CONDITIONINGS)}; got {self.trained_conditioning!r} with "
                             f"condition={self.condition!r}")
        if not isinstance(self.history_latent_frames, int) or self.history_latent_frames < 0:
            raise ValueError(f"preset {self.name!r}: history_latent_frames must be an integer >= 0, got "
                             f"{self.history_latent_frames!r}")
        encoded = history_frames_for(self.history_latent_frames)
        if self.history_frames is not None and (not isinstance(self.history_frames, int) or self.history_frames < encoded):
            raise ValueError(f"preset {self.name!r}: history_frames must be None or an integer >= {encoded} (the frames "
                             f"{self.history_latent_frames} history latent frames encode), got {self.history_frames!r}")
        if (self.frames - 1) % 4 != 0:
            raise ValueError(f"preset {self.name!r}: frames must be 4k+1, got {self.frames}")
        if self.height % 16 or self.width % 16:
            raise ValueError(f"preset {self.name!r}: height and width must be multiples of 16, got {self.height}x{self.width}")

    @property
    def latent_shape(self) -> tuple[int, int, int, int]:
        """``(channels, frames, height, width)`` of one clip's latent (8x spatial, 4x temporal + 1)."""
        return (16, 1 + (self.frames - 1) // 4, self.height // 8, self.width // 8)

    @property
    def history_pixel_frames(self) -> int:
        """Frames of the previous clip the generator keeps as history (0 with history off)."""
        if self.history_latent_frames == 0:
            return 0
        return self.history_frames if self.history_frames is not None else history_frames_for(self.history_latent_frames)


# The name "tiny" is what checkpoints record and what a world's ``preset="tiny"`` is checked against (the shipped
# model's lv2.json says "tiny" too): it names the tiny shapes and components, which both tiny presets share.
TINY_TRAINING = Preset(
    name="tiny",
    height=128,
    width=128,
    frames=17,
    fps=16,
    vae=dict(base_dim=16, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=1, attn_scales=[],
             temperal_downsample=[False, True, True], latents_mean=[0.0] * 16, latents_std=[1.0] * 16),
    transformer=dict(
        patch_size=(1, 2, 2),
        num_attention_heads=4,
        attention_head_dim=32,
        in_channels=36,
        out_channels=16,
        text_dim=64,
        freq_dim=64,
        ffn_dim=512,
        num_layers=8,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        eps=1e-6,
        image_dim=None,
        added_kv_proj_dim=None,
        rope_max_seq_len=1024,
        control_modalities=CONTROL_MODALITIES,
        control_layers=4,
        control_num_attention_heads=2,
        control_ffn_dim=256,
    ),
    text_encoder=dict(kind="words", dim=64, num_layers=2, num_heads=4, max_tokens=32),
    image_encoder=None,
    sampling=dict(steps=10, shift=3.0, guidance_scale=1.0),
    history_latent_frames=2,
    condition="rendered",
)

TINY_SHIPPED = dataclasses.replace(
    copy.deepcopy(TINY_TRAINING),  # no section dict shared between the two
    sampling=dict(steps=1, shift=3.0, guidance_scale=1.0),  # held-out PSNR is flat from 10 steps down to 1
    history_latent_frames=0,  # the history stage lowered held-out PSNR (docs/results.md)
    trained_conditioning="memory",  # fine-tuned on the world memory's renders
)

WAN21_I2V_14B_480P = Preset(
    name="wan2.1-i2v-14b-480p",
    height=352,
    width=640,
    frames=81,
    fps=16,
    vae=dict(base_dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
             temperal_downsample=[False, True, True]),  # diffusers' defaults carry Wan2.1's latent mean/std
    transformer=dict(
        patch_size=(1, 2, 2),
        num_attention_heads=40,
        attention_head_dim=128,
        in_channels=36,
        out_channels=16,
        text_dim=4096,
        freq_dim=256,
        ffn_dim=13824,
        num_layers=40,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        eps=1e-6,
        image_dim=1280,
        added_kv_proj_dim=5120,
        rope_max_seq_len=1024,
        control_modalities=CONTROL_MODALITIES,
        control_layers=12,
        control_num_attention_heads=20,
        control_ffn_dim=6912,
    ),
    text_encoder=dict(kind="umt5", max_tokens=512),
    image_encoder="clip-vit-h-14",
    sampling=dict(steps=50, shift=5.0, guidance_scale=5.0),
    # As the authors' inference: the previous clip's last 8 frames, encoded into 2 latent frames (-8, -7..-4),
    # and each control branch conditioned on its control video's own first frame.
    history_latent_frames=2,
    history_frames=8,
    control_condition="own_first_frame",
)

PRESETS: dict[str, Preset] = {p.name: p for p in (TINY_TRAINING, WAN21_I2V_14B_480P)}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")
    return PRESETS[name]
