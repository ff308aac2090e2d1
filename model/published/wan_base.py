"""The Wan2.1-I2V base transformer, from a local diffusers-layout directory: :func:`load_wan_base`.

LongVie 2's ``dit.safetensors`` replaces only the base's self-attention; everything else of the base comes from the
Wan2.1-I2V checkpoint itself, loaded here through diffusers (with ``accelerate``, a required dependency) and refused
when its tensors do not match the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import WanTransformer3DModel
from diffusers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFETENSORS_WEIGHTS_NAME

from model.published.report import WeightsMismatchError


def transformer_dir(directory: str | Path) -> Path:
    """The diffusers-layout transformer directory: ``directory`` itself or its ``transformer/`` sub-directory
    (so the root of a Wan2.1-I2V-14B-480P-Diffusers download works too)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"Wan transformer directory not found: {directory}")
    for candidate in (directory, directory / "transformer"):
        if (candidate / "config.json").is_file():
            return candidate
    raise FileNotFoundError(
        f"{directory} is not a diffusers-layout Wan transformer: expected config.json plus "
        f"{SAFETENSORS_WEIGHTS_NAME} (or {SAFE_WEIGHTS_INDEX_NAME} and its shards) in it or in its transformer/ sub-directory"
    )


def _weight_files(directory: Path) -> list[Path]:
    """The safetensors files of a diffusers-layout model: the shards its index names, or the single file."""
    index = directory / SAFE_WEIGHTS_INDEX_NAME
    if index.is_file():
        names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        absent = [n for n in names if not (directory / n).is_file()]
        if absent:
            raise FileNotFoundError(f"{index} names shards that are not there: {absent}")
        return [directory / n for n in names]
    single = directory / SAFETENSORS_WEIGHTS_NAME
    if single.is_file():
        return [single]
    raise FileNotFoundError(
        f"{directory}: no {SAFETENSORS_WEIGHTS_NAME} and no {SAFE_WEIGHTS_INDEX_NAME} (only safetensors weights are read)"
    )


def load_wan_base(directory: str | Path, torch_dtype: torch.dtype | None = None) -> WanTransformer3DModel:
    """A Wan2.1-I2V transformer from a LOCAL diffusers-layout directory (config.json + one safetensors file, or
    shards with their index). Never downloads; ``directory`` may also be the root of a Wan download that has a
    ``transformer/`` sub-directory.

    This is ``WanTransformer3DModel.from_pretrained(directory, local_files_only=True, low_cpu_mem_usage=True)``
    (diffusers needs ``accelerate`` for it: Wan's fp32-kept modules require low_cpu_mem_usage), refusing a
    directory whose tensors are missing, unexpected or wrongly shaped. The peak memory is about the model in
    ``torch_dtype``; pass ``torch.bfloat16`` at full size.
    """
    path = transformer_dir(directory)
    _weight_files(path)  # a clear "which file is missing" error
    model, info = WanTransformer3DModel.from_pretrained(
        str(path), local_files_only=True, use_safetensors=True, torch_dtype=torch_dtype, low_cpu_mem_usage=True,
        output_loading_info=True,
    )
    # diffusers only warns about missing weights (and initialises them randomly): refuse.
    if info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"]:
        mismatched = [(k, k, tuple(a), tuple(b)) for k, a, b in info["mismatched_keys"]]
        raise WeightsMismatchError(
            f"Wan transformer weights in {path}", sorted(info["missing_keys"]), sorted(info["unexpected_keys"]), mismatched
        )
    # A tensor read from a safetensors file may share the file's buffer, which is not 64-byte aligned: CPU matmuls
    # then take other kernels (results differ in the last bits) and the file's memory stays alive. One tensor
    # copied at a time.
    with torch.no_grad():
        for param in model.parameters():
            if param.device.type == "cpu" and param.data_ptr() % 64:
                param.data = param.data.clone()
    return model
