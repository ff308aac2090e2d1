"""The video VAE: diffusers ``AutoencoderKLWan`` with Wan's per-channel latent normalisation.

Wan's causal 3D VAE compresses 8x in space and 4x in time, keeping the first frame on its own
(``F = 4k + 1`` frames -> ``k + 1`` latent frames). Its raw latents are normalised per channel,
``z' = (z - mean) / std``, with the mean and std recorded in the VAE's config; the DiT only ever sees
normalised latents. The same VAE encodes frames and the control videos.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from diffusers import AutoencoderKLWan
from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d, WanRMS_norm
from torch import nn

from model.checkpoint_files import check_diffusers_model


class _FastRMSNorm(WanRMS_norm):
    """``WanRMS_norm`` with the same arithmetic in a faster form.

    The VAE normalises every activation over its channels with ``F.normalize(x, dim=1)``; on CPU that strided
    vector norm was 31% of a generated clip's time (torch.profiler, benchmarks/generator_clip.py). A sum of
    squares and ``rsqrt`` in float32 computes the same ``x / max(||x||, 1e-12)`` about 3x faster.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dim = 1 if self.channel_first else -1
        xf = x.float()
        inverse_norm = torch.rsqrt(xf.square().sum(dim, keepdim=True).clamp_min(1e-24))
        return (xf * inverse_norm).to(x.dtype) * self.scale * self.gamma + self.bias


ONEDNN_MIN_VALUES = 100_000  # below this a batch-of-one Conv3d is faster on torch's own kernel


class _OneDnnCausalConv3d(WanCausalConv3d):
    """``WanCausalConv3d`` that runs float32 inference on CPU through oneDNN.

    For a batch of one with few channels, torch's heuristic sends a float32 Conv3d to its unblocked
    ``slow_conv3d`` kernel, not to oneDNN: decoding one 17-frame clip at 128x128 spent 90% of its 1.8 s there
    (torch.profiler, AVX2, 2 threads), while oneDNN computes the same convolution 3-8x faster. Batches of
    several videos already go to oneDNN, and for small inputs (under ~1e5 values) the slow kernel is the faster
    one (measured per layer shape). Training (gradients on), autocast (oneDNN is used there already) and other
    devices keep the usual path.
    """

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if (
            input.device.type == "cpu"
            and input.shape[0] == 1
            and input.numel() >= ONEDNN_MIN_VALUES
            and input.dtype == torch.float32
            and weight.dtype == torch.float32
            and not torch.is_grad_enabled()
            and not torch.is_autocast_enabled("cpu")
            and torch.backends.mkldnn.is_available()
        ):
            return torch.mkldnn_convolution(input.contiguous(), weight, bias, self.padding, self.stride,
                                            self.dilation, self.groups)
        return super()._conv_forward(input, weight, bias)


def _use_fast_kernels(model: AutoencoderKLWan) -> AutoencoderKLWan:
    for module in model.modules():
        if type(module) is WanRMS_norm:
            module.__class__ = _FastRMSNorm
        elif type(module) is WanCausalConv3d:
            module.__class__ = _OneDnnCausalConv3d
    return model


def frames_to_tensor(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 frames ``[F, H, W, 3]`` or ``[B, F, H, W, 3]`` -> float ``[B, 3, F, H, W]`` in ``[-1, 1]``."""
    x = torch.as_tensor(np.asarray(frames) if not isinstance(frames, torch.Tensor) else frames)
    if x.dtype != torch.uint8:
        raise ValueError(f"expected uint8 frames, got dtype {x.dtype}")
    if x.ndim == 4:
        x = x[None]
    if x.ndim != 5 or x.shape[-1] != 3:
        raise ValueError(f"expected frames [F, H, W, 3] or [B, F, H, W, 3], got {tuple(x.shape)}")
    return x.permute(0, 4, 1, 2, 3).float().div(127.5).sub(1.0)


def tensor_to_frames(video: torch.Tensor) -> np.ndarray:
    """float ``[B, 3, F, H, W]`` in ``[-1, 1]`` -> uint8 ``[B, F, H, W, 3]``."""
    x = video.detach().float().clamp(-1.0, 1.0).add(1.0).mul(127.5).round()
    return x.to(torch.uint8).permute(0, 2, 3, 4, 1).cpu().numpy()


def num_latent_frames(frames: int) -> int:
    """Latent frames of a video of ``frames`` frames: the first alone, then one per 4."""
    if frames < 1 or (frames - 1) % 4:
        raise ValueError(f"the Wan VAE takes 4k+1 frames, got {frames}")
    return 1 + (frames - 1) // 4


class VideoVAE(nn.Module):
    """Encodes videos to normalised latents and decodes them back."""

    def __init__(self, model: AutoencoderKLWan) -> None:
        super().__init__()
        self.model = _use_fast_kernels(model)
        mean = torch.tensor(model.config.latents_mean, dtype=torch.float32).view(1, -1, 1, 1, 1)
        std = torch.tensor(model.config.latents_std, dtype=torch.float32).view(1, -1, 1, 1, 1)
        self.register_buffer("latents_mean", mean, persistent=False)
        self.register_buffer("latents_std", std, persistent=False)

    @classmethod
    def from_config(cls, **config) -> "VideoVAE":
        return cls(AutoencoderKLWan(**config))

    @classmethod
    def from_pretrained(cls, directory: str | Path, torch_dtype: torch.dtype | None = None) -> "VideoVAE":
        """Load a local diffusers-layout VAE (``config.json`` + safetensors weights).

        The directory is checked first (:func:`model.checkpoint_files.check_diffusers_model`): a config that is
        not valid JSON or builds no VAE raises ValueError, and weights with a missing, extra or wrongly shaped
        tensor raise :class:`~model.checkpoint_files.CheckpointWeightsError`, both naming the file, where diffusers
        would fill missing tensors at random or fail deep inside torch.
        """
        directory = check_diffusers_model(directory, AutoencoderKLWan, "the VAE")
        return cls(AutoencoderKLWan.from_pretrained(str(directory), local_files_only=True, torch_dtype=torch_dtype))

    def save_pretrained(self, directory) -> None:
        self.model.save_pretrained(str(directory), safe_serialization=True)

    @property
    def z_dim(self) -> int:
        return int(self.model.config.z_dim)

    def set_latent_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Record per-channel statistics of raw latents (measured on data after training) in the config."""
        self.model.register_to_config(latents_mean=[float(v) for v in mean], latents_std=[float(v) for v in std])
        self.latents_mean.copy_(torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1, 1))
        self.latents_std.copy_(torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1, 1))

    def normalise(self, raw: torch.Tensor) -> torch.Tensor:
        return (raw - self.latents_mean.to(raw)) / self.latents_std.to(raw)

    def denormalise(self, latents: torch.Tensor) -> torch.Tensor:
        return latents * self.latents_std.to(latents) + self.latents_mean.to(latents)

    def encode(self, video: torch.Tensor, sample: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        """``[B, 3, F, H, W]`` in ``[-1, 1]`` -> normalised latents ``[B, 16, 1 + (F-1)/4, H/8, W/8]``.

        The posterior's mean by default (deterministic, as Wan's pipelines do); ``sample=True`` draws from it.
        """
        num_latent_frames(video.shape[2])
        posterior = self.model.encode(video).latent_dist
        raw = posterior.sample(generator) if sample else posterior.mode()
        return self.normalise(raw)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents -> video ``[B, 3, F, H, W]`` in ``[-1, 1]``."""
        return torch.cat(list(self.decode_chunks(latents)), dim=2)

    def decode_chunks(self, latents: torch.Tensor) -> Iterator[torch.Tensor]:
        """Normalised latents -> the video chunk by chunk, as the causal decoder produces it: ``[B, 3, 1, H, W]``
        for latent frame 0, then ``[B, 3, 4, H, W]`` for each later one (in ``[-1, 1]``).

        Wan's decoder runs one latent frame at a time with a cache of the previous ones, so the first frames of
        a clip are ready before the rest: a player can show them while the rest decodes. This is the loop of
        diffusers' ``AutoencoderKLWan._decode`` (untiled, unpatchified: the Wan2.1 layout), yielding instead of
        concatenating; the chunks concatenated are exactly what diffusers decodes (tested).
        """
        model = self.model
        if model.use_tiling or model.config.patch_size is not None:  # layouts this loop does not cover
            yield model.decode(self.denormalise(latents)).sample.clamp(-1.0, 1.0)
            return
        model.clear_cache()
        try:
            x = model.post_quant_conv(self.denormalise(latents))
            for i in range(x.shape[2]):
                model._conv_idx = [0]
                chunk = model.decoder(x[:, :, i : i + 1], feat_cache=model._feat_map, feat_idx=model._conv_idx,
                                      first_chunk=i == 0)
                yield chunk.clamp(-1.0, 1.0)
        finally:
            model.clear_cache()
