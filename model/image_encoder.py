"""Wan2.1-I2V's image context: CLIP's vision tower, penultimate hidden state (:class:`ClipImageEncoder`).

The image-to-video DiT cross-attends to the CLIP tokens of the clip's first frame beside the text context.
``transformers`` is an optional dependency (``pip install "lv2[full]"``, see :mod:`model.hf`); the loader reads
local paths only (``local_files_only=True``): nothing here downloads weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from model.hf import WrapsModel, existing_directory, import_transformers, load_local_model

# OpenAI CLIP's normalisation (also CLIPImageProcessor's defaults), used when a directory has no processor config.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ClipImageEncoder(WrapsModel):
    """Wan2.1-I2V's image context: CLIP's vision tower, **penultimate** layer, all tokens.

    Wan2.1 feeds its image cross-attention ``hidden_states[-2]`` of CLIP ViT-H/14 (the output of the last-but-one
    transformer layer, before the final layer and the post-layernorm), class token included: ``[B, 257, 1280]`` at
    224 px. This class does the same for whatever CLIP vision model its directory holds.

    Pre-processing: the directory's ``CLIPImageProcessor`` (``preprocessor_config.json``) when it has one, as Wan's
    pipeline; otherwise, in torch: resize the shorter side to the model's ``image_size`` (bicubic, antialiased),
    centre-crop to ``image_size`` squared, scale to [0, 1] and normalise with OpenAI CLIP's mean and std -- the
    processor's defaults.
    """

    def __init__(self, model, processor=None) -> None:
        self.model = model.eval().requires_grad_(False)
        self.processor = processor
        config = model.config
        self.dim = int(config.hidden_size)
        self.image_size = int(config.image_size)
        self.num_tokens = (config.image_size // config.patch_size) ** 2 + 1
        if config.num_hidden_layers < 2:
            raise ValueError(f"the penultimate hidden state needs >= 2 CLIP layers, got {config.num_hidden_layers}")

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, torch_dtype: torch.dtype | None = None, device: str | torch.device | None = None
    ) -> "ClipImageEncoder":
        """Load ``CLIPVisionModel`` (and ``CLIPImageProcessor`` if ``preprocessor_config.json`` is there) from
        ``directory``; ``torch_dtype`` defaults to float32."""
        transformers = import_transformers("the CLIP image encoder")
        directory = existing_directory(directory, "a CLIP vision model directory (transformers config.json + weights)")
        model = load_local_model(transformers.CLIPVisionModel, directory, torch_dtype, device)
        processor = None
        if (directory / "preprocessor_config.json").is_file():
            processor = transformers.CLIPImageProcessor.from_pretrained(str(directory), local_files_only=True)
        return cls(model, processor)

    def preprocess(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 ``[B, H, W, 3]`` (or ``[H, W, 3]``) -> ``pixel_values [B, 3, S, S]`` on the model's device and dtype."""
        x = _as_uint8_images(images)
        if self.processor is not None:
            pixels = self.processor(images=list(x.cpu().numpy()), return_tensors="pt")["pixel_values"]
        else:
            pixels = _clip_preprocess(x, self.image_size)
        return pixels.to(device=self.device, dtype=self.dtype)

    @torch.no_grad()
    def encode(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 images -> ``[B, num_tokens, dim]`` (``[B, 257, 1280]`` for ViT-H/14 at 224 px): ``hidden_states[-2]``."""
        out = self.model(pixel_values=self.preprocess(images), output_hidden_states=True)
        return out.hidden_states[-2]

    def save(self, directory: str | Path) -> Path:
        """Write model and image processor (when it has one) into one directory."""
        return self.write_pretrained(directory, self.processor)

    save_pretrained = save


def _as_uint8_images(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(images))
    if x.dtype != torch.uint8:
        raise ValueError(f"expected uint8 images [B, H, W, 3], got dtype {x.dtype}")
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected uint8 images [B, H, W, 3] or [H, W, 3], got shape {tuple(x.shape)}")
    return x


def _clip_preprocess(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 ``[B, H, W, 3]`` -> normalised ``[B, 3, size, size]``: shorter side to ``size``, centre crop."""
    x = images.permute(0, 3, 1, 2).float()
    h, w = x.shape[-2:]
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    if (new_h, new_w) != (h, w):
        x = nn.functional.interpolate(x, size=(new_h, new_w), mode="bicubic", antialias=True, align_corners=False)
        x = x.clamp(0.0, 255.0)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    x = x[:, :, top : top + size, left : left + size] / 255.0
    mean = torch.tensor(CLIP_MEAN, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


__all__ = ["ClipImageEncoder", "CLIP_MEAN", "CLIP_STD"]
