"""A tiny stand-in for the full-size release, end to end: Wan layout + LongVie 2 files -> a generated clip."""

import dataclasses

import numpy as np
import pytest
import torch

from model.checkpoint import load_published
from model.pipeline import SamplingOptions
from model.presets import WAN21_I2V_14B_480P
from model.published import export_longvie_weights
from model.transformer import LongVieTransformer
from model.vae import VideoVAE

transformers = pytest.importorskip("transformers")
from test_text_encoders import _write_tiny_clip, _write_tiny_umt5  # noqa: E402

BASE = dict(num_attention_heads=2, attention_head_dim=16, in_channels=36, out_channels=16, text_dim=32, freq_dim=32,
            ffn_dim=64, num_layers=2, image_dim=32, added_kv_proj_dim=32)


def write_tiny_release(tmp_path, std: float = 0.02):
    """A tiny Wan2.1-I2V in diffusers layout (``tmp_path/Wan2.1-I2V-Diffusers``) and LongVie 2 files in the
    release's naming (``tmp_path/LongVie2``) from a seeded model whose control weights are ``N(0, std)``:
    ``(source model, wan directory, control path, dit path)``."""
    wan = tmp_path / "Wan2.1-I2V-Diffusers"
    torch.manual_seed(0)
    source = LongVieTransformer(**BASE, control_layers=1, control_num_attention_heads=1, control_ffn_dim=32)
    with torch.no_grad():
        for p in source.control.parameters():
            p.normal_(std=std)
    source.base.save_pretrained(wan / "transformer")
    control, dit = export_longvie_weights(source, tmp_path / "LongVie2")
    VideoVAE.from_config(base_dim=8, num_res_blocks=1).save_pretrained(wan / "vae")
    _write_tiny_umt5(wan / "text_encoder")
    _write_tiny_clip(wan / "image_encoder")
    return source, wan, control, dit


def test_published_layout_generates_a_clip(tmp_path):
    source, wan, control, dit = write_tiny_release(tmp_path)

    preset = dataclasses.replace(WAN21_I2V_14B_480P, height=32, width=32, frames=5,
                                 transformer={**WAN21_I2V_14B_480P.transformer, "control_layers": 1},
                                 sampling={"steps": 2, "shift": 5.0, "guidance_scale": 2.0})
    checkpoint = load_published(wan, control, dit, torch_dtype=None, preset=preset)
    assert checkpoint.image_encoder is not None and checkpoint.text_encoder.max_tokens == 512
    for a, b in zip(source.state_dict().values(), checkpoint.transformer.state_dict().values()):
        assert torch.equal(a, b)
    generator = checkpoint.generator(options=SamplingOptions(steps=2, guidance_scale=2.0))
    rng = np.random.default_rng(0)
    generator.reset(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    controls = {m: rng.integers(0, 255, (5, 32, 32, 3), dtype=np.uint8) for m in ("dense", "sparse")}
    clip = generator.generate_clip(controls, "a red door")
    assert clip.shape == (5, 32, 32, 3)
    with pytest.raises(ValueError, match="lacks vae/"):
        load_published(tmp_path / "LongVie2", control, dit)
