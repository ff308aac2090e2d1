"""Long-video generation: clip after clip, each conditioned on the last frame and the history of the previous one.

:class:`LongVideoGenerator` keeps exactly what the next clip needs and nothing more: the last frame, a
:class:`HistoryBuffer` of the last few frames (fixed capacity, so memory does not grow with the number of
clips), and the episode's one seeded noise tensor (LongVie 2's unified noise). Each call to
:meth:`~LongVideoGenerator.generate_clip` takes the two control videos of the clip and a prompt (which may change
from clip to clip) and returns the clip's frames; its first frame is the previous clip's last frame, exactly.
"""

from __future__ import annotations

import time
from collections import deque
from contextlib import nullcontext
from typing import Mapping

import numpy as np
import torch

from model.pipeline import (
    SamplingOptions,
    check_clip_shapes,
    condition_from_latent,
    condition_video,
    denoise,
    unified_noise,
)
from model.transformer import LongVieTransformer
from model.vae import VideoVAE, frames_to_tensor, num_latent_frames, tensor_to_frames


class HistoryBuffer:
    """The last ``capacity`` frames generated so far (uint8 ``[H, W, 3]`` each); older frames fall out."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"history capacity must be >= 0 frames, got {capacity}")
        self.capacity = capacity
        self._frames: deque[np.ndarray] = deque(maxlen=capacity if capacity > 0 else None)

    def __len__(self) -> int:
        return len(self._frames) if self.capacity > 0 else 0

    def extend(self, frames: np.ndarray) -> None:
        if self.capacity > 0:
            self._frames.extend(np.ascontiguousarray(f) for f in frames)

    def clear(self) -> None:
        self._frames.clear()

    @property
    def full(self) -> bool:
        return self.capacity > 0 and len(self._frames) == self.capacity

    def frames(self) -> np.ndarray:
        """``[N, H, W, 3]`` uint8, oldest first."""
        return np.stack(list(self._frames))


def history_frames_for(latent_frames: int) -> int:
    """Pixel frames whose encoding gives ``latent_frames`` latent frames (``4 (n - 1) + 1``; 0 for none)."""
    return 0 if latent_frames <= 0 else 4 * (latent_frames - 1) + 1


class LongVideoGenerator:
    """Generates a long video clip by clip with LongVie 2's history context and unified noise.

    Args:
        transformer: the control DiT.
        vae: the video VAE (frames and control videos).
        text_encoder: any object with ``encode(list[str]) -> [B, L, D]`` (see :mod:`model.text`).
        frames: frames per clip, ``4k + 1``.
        history_latent_frames: latent frames of history context (0 turns history off).
        options: sampling options (steps, shift, guidance, control scales).
        seed: seed of the unified noise.
        autocast: ``torch.bfloat16`` to run the DiT and VAE under CPU/GPU autocast, or None for float32.
    """

    def __init__(
        self,
        transformer: LongVieTransformer,
        vae: VideoVAE,
        text_encoder,
        frames: int = 17,
        history_latent_frames: int = 2,
        options: SamplingOptions | None = None,
        seed: int = 0,
        autocast: torch.dtype | None = None,
        image_encoder=None,
    ) -> None:
        num_latent_frames(frames)
        if history_latent_frames < 0:
            raise ValueError(f"history_latent_frames must be >= 0, got {history_latent_frames}")
        self.transformer = transformer.eval()
        self.vae = vae.eval()
        self.text_encoder = text_encoder
        self.image_encoder = image_encoder
        self.frames = frames
        self.history_latent_frames = history_latent_frames
        self.options = options or SamplingOptions()
        self.seed = seed
        self.autocast = autocast
        self.history = HistoryBuffer(history_frames_for(history_latent_frames))
        self.last_frame: np.ndarray | None = None
        self.last_timings: dict[str, float] = {}
        self._noise: torch.Tensor | None = None
        self._prompt_cache: tuple[str, torch.Tensor] | None = None
        self._negative: torch.Tensor | None = None

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    def reset(self, first_frame: np.ndarray, seed: int | None = None) -> None:
        """Start a new video from ``first_frame`` (uint8 ``[H, W, 3]``); draws the episode's unified noise."""
        frame = np.asarray(first_frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
            raise ValueError(f"first_frame must be uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
        if frame.shape[0] % 16 or frame.shape[1] % 16:
            raise ValueError(f"frame size must be a multiple of 16, got {frame.shape[0]}x{frame.shape[1]}")
        if seed is not None:
            self.seed = seed
        self.history.clear()
        self.last_frame = frame.copy()
        latent_shape = (1, self.vae.z_dim, num_latent_frames(self.frames), frame.shape[0] // 8, frame.shape[1] // 8)
        generator = torch.Generator().manual_seed(int(self.seed))
        self._noise = torch.randn(latent_shape, generator=generator).to(self.device)

    @torch.no_grad()
    def generate_clip(self, controls: Mapping[str, np.ndarray], prompt: str, first_frame: np.ndarray | None = None) -> np.ndarray:
        """Generate the next clip.

        Args:
            controls: modality name -> uint8 control video ``[F, H, W, 3]`` (LongVie 2: ``dense``, ``sparse``).
            prompt: the clip's caption.
            first_frame: uint8 ``[H, W, 3]`` to restart from (resets the video); default: the previous clip's last.

        Returns:
            uint8 ``[F, H, W, 3]``; frame 0 is the first frame given (or the previous clip's last frame).
        """
        if first_frame is not None:
            self.reset(first_frame)
        if self.last_frame is None:
            raise RuntimeError("call reset(first_frame) (or pass first_frame=) before the first clip")
        h, w = self.last_frame.shape[:2]
        timings: dict[str, float] = {}
        tick = time.perf_counter()
        device = self.device
        with self._autocast():
            # 1. Control videos and the I2V conditioning video, encoded in one batch.
            videos = {name: frames_to_tensor(v).to(device) for name, v in controls.items()}
            check_clip_shapes(self.frames, h, w, videos)
            first = frames_to_tensor(self.last_frame[None]).to(device)[:, :, 0]
            names = list(videos)
            latents = self.vae.encode(torch.cat([*videos.values(), condition_video(first, self.frames)]))
            control_latents = {name: latents[i : i + 1] for i, name in enumerate(names)}
            condition = condition_from_latent(latents[len(names) :])
            # 2. History latents and text.
            history = self._history_latents(device)
            context, negative = self._encode_prompt(prompt)
            image_context = self._image_context(device)
            timings["control_encoding"] = time.perf_counter() - tick

            # 3. Denoise from the unified noise.
            tick = time.perf_counter()
            noise = unified_noise(self._noise, history)
            latents = denoise(
                self.transformer, noise, condition, context, self.options, controls=control_latents,
                history=history, negative_context=negative, image_context=image_context,
            )
            timings["denoising"] = time.perf_counter() - tick

            # 4. Decode.
            tick = time.perf_counter()
            frames = tensor_to_frames(self.vae.decode(latents))[0]
            timings["decoding"] = time.perf_counter() - tick

        frames[0] = self.last_frame  # the shared frame is exactly the previous clip's last frame
        self.history.extend(frames[1:])
        self.last_frame = frames[-1].copy()
        self.last_timings = timings
        return frames

    # ------------------------------------------------------------------ helpers

    def _autocast(self):
        if self.autocast is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast)

    def _image_context(self, device: torch.device) -> torch.Tensor | None:
        """CLIP features of the clip's first frame, for a base with image cross-attention (Wan2.1-I2V)."""
        if self.image_encoder is None:
            return None
        return self.image_encoder.encode(self.last_frame[None]).to(device)

    def _history_latents(self, device: torch.device) -> torch.Tensor | None:
        if not self.history.full:
            return None  # the first clip has no history
        return self.vae.encode(frames_to_tensor(self.history.frames()).to(device))

    def _encode_prompt(self, prompt: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self._prompt_cache is None or self._prompt_cache[0] != prompt:
            self._prompt_cache = (prompt, self.text_encoder.encode([prompt]).to(self.device))
        negative = None
        if self.options.guidance_scale > 1.0:
            if self._negative is None:
                self._negative = self.text_encoder.encode([""]).to(self.device)
            negative = self._negative
        return self._prompt_cache[1], negative
