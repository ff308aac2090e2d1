"""Exporting a :class:`LongVieTransformer` in the release's form: :func:`export_longvie_weights` writes
``control.safetensors`` and ``dit.safetensors`` with the published key names, so a fine-tuned model can be handed on
as the release is (and loaded back by :func:`model.published.load_longvie_weights`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import torch
from safetensors.torch import save_file

from model.published.names import CONTROL_FILE, DIT_FILE, to_published_name
from model.transformer import LongVieTransformer


def _published_state(named: Iterator[tuple[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    state = {}
    for name, tensor in named:
        if tensor.is_meta:
            raise ValueError(f"cannot export {name}: it is on the meta device (never loaded)")
        state[to_published_name(name)] = tensor.detach().to("cpu").contiguous()
    return state


def export_longvie_weights(model: LongVieTransformer, directory: str | Path) -> tuple[Path, Path]:
    """Write ``control.safetensors`` (all of ``model.control``) and ``dit.safetensors`` (every base block's
    self-attention) in the published naming, without prefix: the key set of the release, so a fine-tuned model
    can be handed on in the same form. Returns ``(control_path, dit_path)``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    control = _published_state((f"control.{n}", p) for n, p in model.control.named_parameters())
    dit = _published_state(
        (f"base.blocks.{i}.attn1.{n}", p) for i, block in enumerate(model.base.blocks) for n, p in block.attn1.named_parameters()
    )
    control_path, dit_path = directory / CONTROL_FILE, directory / DIT_FILE
    save_file(control, str(control_path), metadata={"format": "pt"})
    save_file(dit, str(dit_path), metadata={"format": "pt"})
    return control_path, dit_path
