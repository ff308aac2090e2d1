"""Sampling one clip: the flow-matching denoising loop around the (pure) control DiT.

The pipeline owns the loop, the scheduler is a diffusers scheduler (``FlowMatchEulerDiscreteScheduler`` with a
timestep ``shift``), and classifier-free guidance is one more forward pass with the empty prompt, skipped when
``guidance_scale == 1``. Everything that depends on the previous clip (history latents, the unified noise) is
passed in: :class:`model.generator.LongVideoGenerator` keeps that state.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from model.transformer import LongVieTransformer
from model.vae import num_latent_frames

# The reference blends the first latent frame of the unified noise with the last history latent.
HISTORY_NOISE_BLEND = 0.074


@dataclass
class SamplingOptions:
    """How a clip is sampled. ``control_scales`` maps a modality to its scale (``{"dense": lambda}``)."""

    steps: int = 10
    shift: float = 3.0
    guidance_scale: float = 1.0
    control_scales: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be a positive integer, got {self.steps!r}")
        if not self.shift > 0:
            raise ValueError(f"shift must be positive, got {self.shift!r}")
        if not self.guidance_scale >= 1.0:
            raise ValueError(f"guidance_scale must be >= 1 (1 turns guidance off), got {self.guidance_scale!r}")

    @classmethod
    def from_preset(
        cls,
        sampling: Mapping[str, Any],
        steps: int | None = None,
        guidance_scale: float | None = None,
        **fields: Any,
    ) -> SamplingOptions:
        """A preset's (or checkpoint's) ``sampling`` defaults with what a caller overrides: ``steps`` and
        ``guidance_scale`` when not None (a flag left unset keeps the model's), any other field by name."""
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise ValueError(f"sampling steps must be an integer >= 1 (or None: the model's), got {steps!r}")
        options = {**sampling, **fields}
        if steps is not None:
            options["steps"] = steps
        if guidance_scale is not None:
            options["guidance_scale"] = guidance_scale
        known = {f.name for f in dataclasses.fields(cls)}
        if set(options) - known:
            raise ValueError(f"unknown sampling options {sorted(set(options) - known)}; expected some of {sorted(known)}")
        return cls(**options)


def first_frame_mask(latent_frames: int, height: int, width: int, batch: int = 1) -> torch.Tensor:
    """Wan I2V's 4-channel mask ``[B, 4, T, h, w]``: the first latent frame (4 pixel frames folded) is known."""
    mask = torch.zeros(batch, 4, latent_frames, height, width)
    mask[:, :, 0] = 1.0
    return mask


def condition_video(first_frame: torch.Tensor, frames: int) -> torch.Tensor:
    """The I2V conditioning video ``[B, 3, F, H, W]``: the first frame, then zeros. ``first_frame``: ``[B, 3, H, W]``."""
    b, _, h, w = first_frame.shape
    video = torch.zeros(b, 3, frames, h, w, dtype=first_frame.dtype, device=first_frame.device)
    video[:, :, 0] = first_frame
    return video


def condition_from_latent(latent: torch.Tensor) -> torch.Tensor:
    """``[B, 20, T, h, w]``: the first-frame mask, then the latent of :func:`condition_video`."""
    b, _, t, h, w = latent.shape
    return torch.cat([first_frame_mask(t, h, w, b).to(latent), latent], dim=1)


def make_scheduler(shift: float) -> FlowMatchEulerDiscreteScheduler:
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)


def unified_noise(noise: torch.Tensor, history: torch.Tensor | None) -> torch.Tensor:
    """The clip's starting noise: the episode's one noise tensor, its first latent frame blended with the last
    history latent (``0.074 * history + 0.926 * noise``) when there is history."""
    if history is None or history.shape[2] == 0:
        return noise.clone()
    out = noise.clone()
    out[:, :, 0] = HISTORY_NOISE_BLEND * history[:, :, -1] + (1.0 - HISTORY_NOISE_BLEND) * noise[:, :, 0]
    return out


@torch.no_grad()
def denoise(
    transformer: LongVieTransformer,
    noise: torch.Tensor,
    condition: torch.Tensor,
    context: torch.Tensor,
    options: SamplingOptions,
    controls: Mapping[str, torch.Tensor] | None = None,
    history: torch.Tensor | None = None,
    negative_context: torch.Tensor | None = None,
    image_context: torch.Tensor | None = None,
    on_step: Callable[[int, int], None] | None = None,
    control_conditions: Mapping[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Integrate the flow from ``noise [B, 16, T, h, w]`` to a clean latent with the scheduler's Euler steps.
    ``control_conditions``: per modality, the 20-channel conditioning of its branch when it is not ``condition``
    (see :meth:`model.transformer.LongVieTransformer.forward`)."""
    scheduler = make_scheduler(options.shift)
    scheduler.set_timesteps(options.steps, device=noise.device)
    guided = options.guidance_scale > 1.0
    if guided and negative_context is None:
        raise ValueError("guidance_scale > 1 needs negative_context (the empty prompt's embedding)")
    latents = noise
    b = noise.shape[0]
    for i, t in enumerate(scheduler.timesteps):
        timestep = t.expand(b).to(noise.dtype)
        velocity = transformer(
            latents, timestep, context, condition, controls=controls, control_scales=options.control_scales,
            history=history, encoder_hidden_states_image=image_context, control_conditions=control_conditions,
        )
        if guided:
            unconditional = transformer(
                latents, timestep, negative_context, condition, controls=controls,
                control_scales=options.control_scales, history=history, encoder_hidden_states_image=image_context,
                control_conditions=control_conditions,
            )
            velocity = unconditional + options.guidance_scale * (velocity - unconditional)
        latents = scheduler.step(velocity.float(), t, latents.float(), return_dict=False)[0].to(noise.dtype)
        if on_step is not None:
            on_step(i, options.steps)
    return latents


def check_clip_shapes(frames: int, height: int, width: int, controls: Mapping[str, torch.Tensor]) -> None:
    """Control videos ``[B, 3, F, H, W]`` must match the clip's frames and size."""
    num_latent_frames(frames)
    for name, video in controls.items():
        if tuple(video.shape[2:]) != (frames, height, width):
            raise ValueError(
                f"control {name!r} video has {tuple(video.shape[2:])} (frames, height, width) but the clip is "
                f"{(frames, height, width)}"
            )
