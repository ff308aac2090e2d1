"""A light encoder for the conditioning videos, distilled from the VAE encoder (``control-encoder/`` of a model).

Every generated clip encodes its conditioning videos (the dense and sparse controls, the rendered or first-frame
video) with the full causal VAE encoder: 60 of the 112 GFLOP of a tiny-model step (BENCHMARKS.md). This network
gives the same normalised latents ``[B, 16, 1 + (F-1)/4, H/8, W/8]`` for ~7x less arithmetic: each latent frame's
four frames (the first frame alone, repeated, as Wan's causal encoder treats it) are stacked as channels and
brought to latent resolution by 2-D convolutions, then one causal convolution over latent time carries what came
before. ``python -m model.training.distill_control_encoder`` trains it to match the VAE encoder on what
LV2/World-v0 actually encodes; the VAE, its decoder and the DiT are untouched.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from model.vae import num_latent_frames

CONTROL_ENCODER_FOLDER = "control-encoder"  # its folder in a model directory
FRAMES_PER_LATENT = 4  # Wan's VAE: 4x in time after the first frame
SPATIAL_STRIDE = 8  # and 8x in space


class _ResBlock(nn.Module):
    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, channels), nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2, self.conv2 = nn.GroupNorm(groups, channels), nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(F.silu(self.norm2(h)))


class ControlEncoder(ModelMixin, ConfigMixin):
    """Video ``[B, 3, F, H, W]`` in ``[-1, 1]`` -> normalised latents ``[B, z_dim, 1 + (F-1)/4, H/8, W/8]``.

    Args:
        z_dim: latent channels (the VAE's).
        widths: channels at 1/2, 1/4 and 1/8 of the frame's size.
        blocks: residual blocks at 1/8 (one at 1/4).
        groups: GroupNorm groups.
    """

    @register_to_config
    def __init__(self, z_dim: int = 16, widths: tuple[int, int, int] = (32, 64, 96), blocks: int = 2, groups: int = 8):
        super().__init__()
        w0, w1, w2 = widths
        in_channels = 3 * FRAMES_PER_LATENT * 4  # four frames, then 2x2 pixels unshuffled into channels
        self.stem = nn.Conv2d(in_channels, w0, 3, padding=1)
        self.down1 = nn.Conv2d(w0, w1, 3, stride=2, padding=1)
        self.mid1 = _ResBlock(w1, groups)
        self.down2 = nn.Conv2d(w1, w2, 3, stride=2, padding=1)
        self.mid2 = nn.Sequential(*[_ResBlock(w2, groups) for _ in range(blocks)])
        self.temporal_norm = nn.GroupNorm(groups, w2)
        self.temporal = nn.Conv3d(w2, w2, (2, 3, 3), padding=(0, 1, 1))  # this latent frame and the one before
        self.out_norm = nn.GroupNorm(groups, w2)
        self.out = nn.Conv2d(w2, z_dim, 1)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        b, c, frames, h, w = video.shape
        t = num_latent_frames(frames)
        if c != 3 or h % SPATIAL_STRIDE or w % SPATIAL_STRIDE:
            raise ValueError(f"expected a video [B, 3, F, H, W] with H and W multiples of {SPATIAL_STRIDE}, "
                             f"got {tuple(video.shape)}")
        # 1. Each latent frame's four frames as channels: the first frame alone (repeated), then groups of four.
        first = video[:, :, :1].expand(-1, -1, FRAMES_PER_LATENT, -1, -1)
        grouped = torch.cat([first, video[:, :, 1:]], dim=2).reshape(b, c, t, FRAMES_PER_LATENT, h, w)
        x = grouped.permute(0, 2, 1, 3, 4, 5).reshape(b * t, c * FRAMES_PER_LATENT, h, w)
        # 2. Down to latent resolution, every latent frame on its own.
        x = F.pixel_unshuffle(x, 2)
        x = F.silu(self.stem(x))
        x = self.mid1(self.down1(x))
        x = self.mid2(self.down2(x))
        # 3. One causal step over latent time (the first frame padded with itself), then the latent channels.
        #    (Norms act on each latent frame alone, so nothing later leaks into an earlier latent frame.)
        y = F.silu(self.temporal_norm(x))
        y = y.reshape(b, t, *y.shape[1:]).permute(0, 2, 1, 3, 4)
        y = self.temporal(torch.cat([y[:, :, :1], y], dim=2))
        x = x + y.permute(0, 2, 1, 3, 4).reshape(x.shape)
        x = self.out(F.silu(self.out_norm(x)))
        return x.reshape(b, t, *x.shape[1:]).permute(0, 2, 1, 3, 4).contiguous()
