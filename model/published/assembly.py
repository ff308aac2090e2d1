"""Assembling the published LongVie 2 model: :func:`build_longvie_from_published` puts a Wan2.1-I2V base
(:func:`~model.published.wan_base.load_wan_base`) and LongVie 2's ``control.safetensors`` / ``dit.safetensors``
(:func:`~model.published.loading.load_longvie_weights`) together into one :class:`LongVieTransformer`, the control
part built on the ``meta`` device so no random full-size initialisation happens. docs/full-size-weights.md is the
guide.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import torch
from diffusers import WanTransformer3DModel
from torch import nn

from model.clips import CONTROL_MODALITIES
from model.published.loading import load_longvie_weights, require_weights_file
from model.published.report import LoadReport
from model.published.wan_base import load_wan_base, transformer_dir
from model.transformer import LongVieTransformer


def _longvie_config(base: WanTransformer3DModel, control_layers: int) -> dict:
    """LongVieTransformer kwargs for ``base``: its own shape, branches at half the heads and half the FFN."""
    accepted = set(inspect.signature(LongVieTransformer.__init__).parameters) - {"self"}
    config = {k: v for k, v in base.config.items() if k in accepted}
    heads, ffn = base.config.num_attention_heads, base.config.ffn_dim
    if heads % 2 or ffn % 2:
        raise ValueError(f"the control branches are half the base: heads ({heads}) and ffn_dim ({ffn}) must be even")
    config.update(
        patch_size=tuple(base.config.patch_size),
        control_modalities=CONTROL_MODALITIES,
        control_layers=control_layers,
        control_num_attention_heads=heads // 2,
        control_ffn_dim=ffn // 2,
    )
    return config


def build_longvie_from_published(
    wan_transformer_dir: str | Path,
    control_path: str | Path,
    dit_path: str | Path | None,
    control_layers: int = 12,
    strict: bool = True,
    torch_dtype: torch.dtype | None = None,
    report: LoadReport | None = None,
) -> LongVieTransformer:
    """The published LongVie 2 model: Wan2.1-I2V base from ``wan_transformer_dir`` + ``control.safetensors``
    + ``dit.safetensors``.

    The control part is built on the meta device and its weights are assigned straight from the file, so no
    random 2.6B-parameter initialisation happens. With ``strict=False``, parameters the files did not provide
    are set to zero: every zero-filled piece is inert (zero fusion layers add nothing, zeroed blocks are the
    identity), so a partial file degrades to the base model instead of injecting noise. ``report``, if given, is
    filled with what the load did (:func:`load_longvie_weights`). The model is returned
    in eval mode, in ``torch_dtype`` (default float32) except the modules diffusers keeps in float32 for Wan
    (``scale_shift_table``, norms, rotary, time embedder), in the base and in the branches alike.
    """
    for path, what in ((control_path, "LongVie 2 control weights"), (dit_path, "LongVie 2 dit weights")):
        if path is not None:
            require_weights_file(path, what)  # fail before the (slow) base load
    config = WanTransformer3DModel.load_config(transformer_dir(wan_transformer_dir))
    if config.get("in_channels") != 36 or config.get("image_dim") is None:
        raise ValueError(
            f"{wan_transformer_dir} holds a Wan transformer with in_channels={config.get('in_channels')}, "
            f"image_dim={config.get('image_dim')}; LongVie 2 needs the I2V one (in_channels=36, image cross-attention)"
        )
    base = load_wan_base(wan_transformer_dir, torch_dtype=torch_dtype)
    with torch.device("meta"):
        model = LongVieTransformer(**_longvie_config(base, control_layers))
    model.base = base
    # The branches are Wan blocks: they follow the base's dtype rule (modulation tables and norms kept in fp32).
    dtype = torch.float32 if torch_dtype is None else torch_dtype
    keep_fp32 = set(WanTransformer3DModel._keep_in_fp32_modules or ())
    for name, param in model.control.named_parameters():
        owner_name, _, leaf = name.rpartition(".")
        wanted = torch.float32 if keep_fp32.intersection(name.split(".")) else dtype
        model.control.get_submodule(owner_name)._parameters[leaf] = nn.Parameter(
            param.to(wanted), requires_grad=param.requires_grad
        )

    report = load_longvie_weights(model, control_path, dit_path, strict=strict, assign=True, report=report)
    for name in report.missing:
        owner_name, _, leaf = name.rpartition(".")
        owner = model.get_submodule(owner_name)
        param = owner._parameters[leaf]
        if param.is_meta:
            owner._parameters[leaf] = nn.Parameter(torch.zeros(param.shape, dtype=param.dtype), requires_grad=param.requires_grad)
    leftover = [n for n, p in model.named_parameters() if p.is_meta]
    if leftover:  # cannot happen unless LongVieTransformer grows parameters outside control/base
        raise RuntimeError(f"parameters left on the meta device after loading: {leftover[:10]}")
    return model.eval()

