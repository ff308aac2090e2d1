"""Stage ``vae``: train the tiny preset's Wan VAE on procedural clips (no small pretrained Wan VAE exists).

The VAE is fully convolutional (plus one attention block at its lowest resolution), so it trains on random
crops of the clips: 64x64 crops cost about a quarter of full 128x128 frames per step, and the calibration
notes show the smaller size learning several times faster per minute. The windows are whole 17-frame clips:
a VAE trained on 9-frame windows reconstructed frames 1-9 of a held-out clip at 26-27 dB but frames 13-17 at
20-22 dB, because the causal encoder's later temporal chunks never saw training (measured at step 1750 of
the first run, which then continued on 17-frame windows). Loss: L1 + MSE of the
reconstruction plus a very small KL term (Wan-style: the latent must stay close to a Gaussian only loosely).
Held-out PSNR is measured on whole eval clips (128x128, 17 frames) in the run's precision.
``freeze_encoder`` fine-tunes only the decoder of a trained VAE: the latent space (and so cached latents and
any DiT trained on them) stays the same while reconstructions sharpen. At export the per-channel mean and std of raw latents over training clips are recorded in the VAE's config,
so the DiT sees normalised latents.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import AutoencoderKLWan
from torch import nn

from model.metrics import psnr_finite
from model.presets import Preset
from model.clips import ClipDataset
from model.training.latents import ENCODER_PREFIXES
from model.vae import VideoVAE, frames_to_tensor


@dataclass
class VaeStageConfig:
    batch_size: int = 2
    crop: int = 64
    frames: int = 17
    kl_weight: float = 1e-6
    eval_clips: int = 8
    statistics_clips: int = 64
    freeze_encoder: bool = False


class VaeObjective(nn.Module):
    """``forward(video)`` -> ``(loss, metrics)`` for a video batch ``[B, 3, F, H, W]`` in ``[-1, 1]``."""

    def __init__(self, vae: AutoencoderKLWan, kl_weight: float, freeze_encoder: bool = False) -> None:
        super().__init__()
        self.vae = vae
        self.kl_weight = kl_weight
        self.freeze_encoder = freeze_encoder
        if freeze_encoder:
            for name, parameter in vae.named_parameters():
                if name.startswith(ENCODER_PREFIXES):
                    parameter.requires_grad_(False)

    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_encoder):
            posterior = self.vae.encode(video).latent_dist
        reconstruction = self.vae.decode(posterior.sample()).sample.float()
        l1 = (reconstruction - video).abs().mean()
        mse = (reconstruction - video).square().mean()
        kl = posterior.kl().mean()
        loss = l1 + mse + self.kl_weight * kl
        psnr_db = 10 * torch.log10(4.0 / mse.detach().clamp_min(1e-10))  # the range [-1, 1] spans 2
        return loss, {"l1": l1.detach(), "kl": kl.detach(), "psnr": psnr_db}


class VaeStage:
    name = "vae"

    def __init__(
        self, preset: Preset, data: str | Path, eval_data: str | Path | None, config: VaeStageConfig,
        init: str | Path | None = None,
    ) -> None:
        expect = {"height": preset.height, "width": preset.width}
        self.preset = preset
        self.config = config
        self.train_set = ClipDataset(data, ("rgb",), expect=expect)
        self.eval_set = ClipDataset(eval_data, ("rgb",), expect=expect) if eval_data else None
        frames = self.train_set.index["frames"]
        if config.frames > frames or (config.frames - 1) % 4:
            raise ValueError(f"VAE windows must be 4k+1 frames and at most the clips' {frames}, got {config.frames}")
        if config.crop > min(preset.height, preset.width) or config.crop % 16:
            raise ValueError(f"crop must be a multiple of 16 and at most the frame size, got {config.crop}")
        # ``init``: continue from saved VAE weights (e.g. the committed ones when a run directory was lost).
        self.vae = VideoVAE.from_pretrained(init) if init else VideoVAE.from_config(**preset.vae)
        if config.freeze_encoder and not init:
            raise ValueError("--freeze-encoder fine-tunes the decoder of a trained VAE: give its directory with --init")
        self.objective = VaeObjective(self.vae.model, config.kl_weight, config.freeze_encoder)

    def module(self) -> nn.Module:
        return self.objective

    def batch(self, rng: np.random.Generator, step: int) -> dict[str, Any]:
        c, f = self.config.crop, self.config.frames
        windows = []
        for _ in range(self.config.batch_size):
            clip = self.train_set[int(rng.integers(len(self.train_set)))]["rgb"]  # [F, H, W, 3]
            t0 = int(rng.integers(0, clip.shape[0] - f + 1))
            y0 = int(rng.integers(0, clip.shape[1] - c + 1))
            x0 = int(rng.integers(0, clip.shape[2] - c + 1))
            window = clip[t0 : t0 + f, y0 : y0 + c, x0 : x0 + c]
            windows.append(window[:, :, ::-1] if rng.random() < 0.5 else window)
        return {"video": frames_to_tensor(np.ascontiguousarray(np.stack(windows)))}

    @torch.no_grad()
    def evaluate(self, step: int) -> dict[str, float]:
        if self.eval_set is None:
            return {}
        scores = []
        count = min(self.config.eval_clips, len(self.eval_set))
        for i in np.linspace(0, len(self.eval_set) - 1, count).astype(int):
            clip = self.eval_set[int(i)]["rgb"]
            scores.append(psnr_finite(reconstruct(self.vae, clip), clip))
        return {"psnr": float(np.mean(scores))}

    @torch.no_grad()
    def export(self, directory: Path) -> None:
        """Measure the latent statistics on training clips, then save the VAE under ``directory / "vae"``.

        With a frozen encoder the latent space is the initial VAE's, so its statistics are kept as they were.
        """
        if self.config.freeze_encoder:
            self.vae.save_pretrained(Path(directory) / "vae")
            return
        rng = np.random.default_rng(0)
        raws = []
        for i in rng.choice(len(self.train_set), min(self.config.statistics_clips, len(self.train_set)), replace=False):
            video = frames_to_tensor(self.train_set[int(i)]["rgb"])
            raws.append(self.vae.model.encode(video).latent_dist.mode())
        raw = torch.cat(raws)  # [N, 16, T, h, w]
        self.vae.set_latent_statistics(raw.mean(dim=(0, 2, 3, 4)), raw.std(dim=(0, 2, 3, 4)))
        self.vae.save_pretrained(Path(directory) / "vae")


def reconstruct(vae: VideoVAE, clip: np.ndarray) -> np.ndarray:
    """Encode and decode a uint8 clip ``[F, H, W, 3]`` (posterior mean), returned as uint8."""
    from model.vae import tensor_to_frames

    return tensor_to_frames(vae.decode(vae.encode(frames_to_tensor(clip))))[0]
