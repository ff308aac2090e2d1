"""Long-video generation: clip after clip, each conditioned on the last frame and the history of the previous one.

:class:`BatchGenerator` is the one implementation: ``N`` videos generated together, one VAE encode, one
denoising loop and one VAE decode per clip for all of them (DIAMOND's world-model env is batched first, too).
Each video is a :class:`GeneratorSlot`, which keeps exactly what its next clip needs and nothing more: the last
frame, a :class:`HistoryBuffer` of the last few frames (fixed capacity, so memory does not grow with the number
of clips), and the episode's one seeded noise tensor (LongVie 2's unified noise). A single video,
:class:`LongVideoGenerator`, is a batch of one. Each call to :meth:`~GeneratorSlot.generate_clip` takes the
clip's control videos and a prompt (which may change from clip to clip) and returns the clip's frames; its first
frame is the previous clip's last frame, exactly.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Callable, Mapping

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
from model.precision import autocast_context
from model.presets import CONDITIONS, CONTROL_CONDITIONS, history_frames_for
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


PROMPT_CACHE_SIZE = 64  # encoded prompts a generator keeps (prompts may change every step)

# Called with (slot index, uint8 [k, H, W, 3]) for each chunk of new frames as the decoder produces it.
ChunkCallback = Callable[[int, np.ndarray], None]


@dataclass(frozen=True)
class KnownPixels:
    """Pixels of a clip known before it is generated (an env's memory of surfaces it has shown): uint8 ``frames``
    ``[F, H, W, 3]`` and bool ``mask`` ``[F, H, W]``. The generator shows them where ``mask`` is set, over what it
    decodes, and continues the video from the result (its next clip's first frame and history)."""

    frames: np.ndarray
    mask: np.ndarray

    def __post_init__(self) -> None:
        frames, mask = np.asarray(self.frames), np.asarray(self.mask)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or mask.shape != frames.shape[:3] \
                or mask.dtype != bool:
            raise ValueError(f"known pixels are uint8 frames [F, H, W, 3] and a bool mask [F, H, W], got "
                             f"{frames.dtype} {frames.shape} and {mask.dtype} {mask.shape}")
        object.__setattr__(self, "frames", frames)
        object.__setattr__(self, "mask", mask)

    def apply(self, frames: np.ndarray, start: int = 0) -> np.ndarray:
        """``frames`` (uint8 ``[k, H, W, 3]``, frames ``start..start+k-1`` of the clip) with the known pixels in."""
        window = slice(start, start + len(frames))
        return np.where(self.mask[window, ..., None], self.frames[window], frames)


class BatchGenerator:
    """``slots`` long videos generated together with LongVie 2's history context and unified noise.

    Args:
        transformer: the control DiT.
        vae: the video VAE (frames and control videos).
        text_encoder: any object with ``encode(list[str]) -> [B, L, D]`` (see :mod:`model.text`).
        frames: frames per clip, ``4k + 1``.
        history_latent_frames: latent frames of history context (0 turns history off).
        options: sampling options (steps, shift, guidance, control scales).
        autocast: ``torch.bfloat16`` to run the DiT and VAE under CPU/GPU autocast, or None for float32.
        image_encoder: CLIP features of the first frame, for a base with image cross-attention (Wan2.1-I2V).
        condition: ``"first_frame"`` (Wan / LongVie 2: the I2V video is [first frame, zeros...]) or
            ``"rendered"`` (the model was trained with the previous frame rendered along the camera path there,
            GEN3C-style; every clip then needs ``rendered=``).
        control_condition: what each control branch's 20 I2V channels carry (:data:`model.presets.CONTROL_CONDITIONS`):
            ``"image"``, the base's own conditioning; ``"own_first_frame"``, the mask and the latent of that control
            video's own first frame followed by zeros (LongVie 2's published weights).
        history_frames: pixel frames of the previous clip kept as history (its last ones; None: exactly the
            ``1 + 4 (history_latent_frames - 1)`` the VAE encodes). Of them, the first ``1 + 4 (n - 1)`` are
            encoded, as the causal VAE itself would: LongVie 2's code keeps 8 and encodes frames -8..-4.
        slots: how many videos (:attr:`slots`, each a :class:`GeneratorSlot`).
        seed: the slots' first noise seed (each ``reset`` may give another).
        control_encoder: a network distilled to give the VAE encoder's latents for the conditioning videos
            (:class:`model.control_encoder.ControlEncoder`), used for them in its place; None: the VAE encoder.
            History frames always go through the VAE encoder.

    Slots with history and slots without (a slot just reset) run as two batches, because the history tokens
    must have the same length across a batch.
    """

    def __init__(
        self,
        transformer: LongVieTransformer,
        vae: VideoVAE,
        text_encoder,
        frames: int = 17,
        history_latent_frames: int = 2,
        options: SamplingOptions | None = None,
        autocast: torch.dtype | None = None,
        image_encoder=None,
        condition: str = "first_frame",
        control_condition: str = "image",
        history_frames: int | None = None,
        slots: int = 1,
        seed: int = 0,
        control_encoder: torch.nn.Module | None = None,
    ) -> None:
        num_latent_frames(frames)
        if condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {list(CONDITIONS)}, got {condition!r}")
        if control_condition not in CONTROL_CONDITIONS:
            raise ValueError(f"control_condition must be one of {list(CONTROL_CONDITIONS)} (what the control branches "
                             f"were trained with), got {control_condition!r}")
        if history_latent_frames < 0:
            raise ValueError(f"history_latent_frames must be >= 0, got {history_latent_frames}")
        encoded = history_frames_for(history_latent_frames)
        if history_frames is not None and history_frames < encoded:
            raise ValueError(f"history_frames must be None or >= {encoded} (what {history_latent_frames} history "
                             f"latent frames encode), got {history_frames}")
        if not isinstance(slots, int) or slots < 1:
            raise ValueError(f"a batch generator needs at least one slot, got {slots!r}")
        low = {p.dtype for p in transformer.parameters()} - {torch.float32}
        if low and autocast is None:
            raise ValueError(f"the transformer has {sorted(map(str, low))} weights: generate with autocast=torch.bfloat16 "
                             "(precision 'bf16'), or load the model in float32 to compute in float32")
        self.transformer = transformer.eval()
        self.vae = vae.eval()
        self.control_encoder = None if control_encoder is None else control_encoder.eval()
        self.text_encoder = text_encoder
        self.image_encoder = image_encoder
        self.frames = frames
        self.history_latent_frames = history_latent_frames
        self.options = options or SamplingOptions()
        self.autocast = autocast
        self.condition = condition
        self.control_condition = control_condition
        self.history_frames = history_frames
        self.slots = [GeneratorSlot(self, i, seed) for i in range(slots)]
        self._prompts: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._negative: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.slots)

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    @property
    def history_capacity(self) -> int:
        """Pixel frames of history a slot keeps (0 with history off)."""
        if self.history_latent_frames == 0:
            return 0
        return self.history_frames if self.history_frames is not None else history_frames_for(self.history_latent_frames)

    def reset(self, index: int, first_frame: np.ndarray, seed: int | None = None) -> None:
        """Start slot ``index``'s video from ``first_frame`` (uint8 ``[H, W, 3]``) with its unified noise."""
        slot = self.slots[index]
        frame = np.asarray(first_frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
            raise ValueError(f"first_frame must be uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
        if frame.shape[0] % 16 or frame.shape[1] % 16:
            raise ValueError(f"frame size must be a multiple of 16, got {frame.shape[0]}x{frame.shape[1]}")
        if seed is not None:
            slot.seed = int(seed)
        slot.history.clear()
        slot.last_frame = frame.copy()
        latent_shape = (1, self.vae.z_dim, num_latent_frames(self.frames), frame.shape[0] // 8, frame.shape[1] // 8)
        slot.noise = torch.randn(latent_shape, generator=torch.Generator().manual_seed(slot.seed)).to(self.device)

    @torch.no_grad()
    def generate(
        self,
        indices: list[int],
        controls: list[Mapping[str, np.ndarray]],
        prompts: list[str],
        rendered: list[np.ndarray] | None = None,
        on_frames: ChunkCallback | None = None,
        known: list[KnownPixels | None] | None = None,
    ) -> list[np.ndarray]:
        """The next clip of each slot in ``indices``: uint8 ``[F, H, W, 3]`` each, in the order given.

        ``controls``: per slot, modality name -> uint8 control video ``[F, H, W, 3]`` (LongVie 2: ``dense``,
        ``sparse``); ``prompts``: per slot, its caption; ``rendered``: per slot, the previous frame rendered
        along the clip's camera path (a ``condition="rendered"`` model only); ``on_frames(index, chunk)``:
        each slot's new frames as the decoder produces them (4 at a time for Wan's VAE), before this returns;
        ``known``: per slot, pixels shown over the decoded ones (:class:`KnownPixels`) or None.
        """
        if known is not None and len(known) != len(indices):
            raise ValueError(f"expected one known-pixels entry (or None) per slot, got {len(known)} for {len(indices)} slots")
        if not (len(indices) == len(controls) == len(prompts)) or (rendered is not None and len(rendered) != len(indices)):
            raise ValueError(f"expected one control dict, one prompt (and one rendered video) per slot, got "
                             f"{len(indices)} slots, {len(controls)} control dicts, {len(prompts)} prompts"
                             + ("" if rendered is None else f" and {len(rendered)} rendered videos"))
        slots = [self.slots[i] for i in indices]
        if any(s.last_frame is None for s in slots):
            raise RuntimeError("call reset(first_frame) (or pass first_frame=) before the first clip")
        out: dict[int, np.ndarray] = {}
        timings: dict[str, float] = {}
        for with_history in (False, True):
            group = [k for k, s in enumerate(slots) if s.history.full == with_history]
            if not group:
                continue
            group_known = [None if known is None else known[k] for k in group]
            chunk_callback = None
            if on_frames is not None:
                chunk_callback = lambda chunk, group=group: [on_frames(indices[k], chunk[row]) for row, k in enumerate(group)]  # noqa: E731
            frames, part = self._generate(
                np.stack([slots[k].last_frame for k in group]),
                {name: np.stack([np.asarray(controls[k][name]) for k in group]) for name in controls[group[0]]},
                [prompts[k] for k in group],
                np.stack([slots[k].history.frames() for k in group]) if with_history else None,
                torch.cat([slots[k].noise for k in group]),
                None if rendered is None else np.stack([np.asarray(rendered[k]) for k in group]),
                chunk_callback,
                group_known,
            )
            for name, seconds in part.items():
                timings[name] = timings.get(name, 0.0) + seconds
            for row, k in enumerate(group):
                out[k] = frames[row]
        for k, slot in enumerate(slots):
            slot.history.extend(out[k][1:])
            slot.last_frame = out[k][-1].copy()
            slot.last_timings = timings
        return [out[k] for k in range(len(slots))]

    # ------------------------------------------------------------------ one batched clip

    @torch.no_grad()
    def _generate(
        self,
        last_frames: np.ndarray,
        controls: Mapping[str, np.ndarray],
        prompts: list[str],
        history_frames: np.ndarray | None,
        noise: torch.Tensor,
        rendered: np.ndarray | None = None,
        on_frames: Callable[[np.ndarray], None] | None = None,
        known: list[KnownPixels | None] | None = None,
    ) -> tuple[np.ndarray, dict[str, float]]:
        """One clip for each of ``B`` videos: last frames ``[B, H, W, 3]``, controls ``{name: [B, F, H, W, 3]}``,
        ``B`` prompts, history frames ``[B, N, H, W, 3]`` or None, unified noise ``[B, 16, T, h, w]``, rendered
        conditioning ``[B, F, H, W, 3]`` (a ``"rendered"`` model) or None; ``on_frames`` receives each decoded
        chunk of new frames ``[B, k, H, W, 3]``, with each video's ``known`` pixels (or None) already in."""
        h, w = last_frames.shape[1:3]
        if (self.condition == "rendered") != (rendered is not None):
            raise ValueError(
                "this model is conditioned on the previous frame rendered along the camera path: pass rendered= "
                "(uint8 [F, H, W, 3])" if rendered is None else
                "rendered= is for models trained with condition='rendered'; this one takes the first frame alone"
            )
        timings: dict[str, float] = {}
        tick = time.perf_counter()
        device = self.device
        with autocast_context(self.autocast, device):
            context, negative = self._context(prompts)
            # 1. Control videos and the I2V conditioning videos, encoded in one batch (by the distilled control
            #    encoder when there is one).
            videos = {name: torch.cat([frames_to_tensor(x) for x in v]).to(device) for name, v in controls.items()}
            check_clip_shapes(self.frames, h, w, videos)
            first = frames_to_tensor(last_frames[:, None])[:, :, 0].to(device)  # [B, 3, H, W]
            b, names = first.shape[0], list(videos)
            if rendered is not None:
                guide = torch.cat([frames_to_tensor(x) for x in rendered]).to(device)  # [B, 3, F, H, W]
                check_clip_shapes(self.frames, h, w, {"rendered": guide})
                guide[:, :, 0] = first  # frame 0 is the frame itself, exactly
            else:
                guide = condition_video(first, self.frames)
            # LongVie 2's published branches take their own first frame's conditioning, encoded in the same batch.
            own = [condition_video(videos[name][:, :, 0], self.frames) for name in names] \
                if self.control_condition == "own_first_frame" else []
            encode_conditioning = self.control_encoder if self.control_encoder is not None else self.vae.encode
            latents = encode_conditioning(torch.cat([*videos.values(), guide, *own]))
            control_latents = {name: latents[i * b : (i + 1) * b] for i, name in enumerate(names)}
            k = len(names) * b
            condition = condition_from_latent(latents[k : k + b])
            control_conditions = {name: condition_from_latent(latents[k + (i + 1) * b : k + (i + 2) * b])
                                  for i, name in enumerate(names) if own} or None
            # 2. History latents (the oldest 1 + 4 (n - 1) kept frames: what the causal VAE encodes of them)
            #    and image context.
            history = None
            if history_frames is not None:
                encoded = history_frames[:, : history_frames_for(self.history_latent_frames)]
                history = self.vae.encode(torch.cat([frames_to_tensor(x) for x in encoded]).to(device))
            image_context = None
            if self.image_encoder is not None:  # CLIP features of the first frames (Wan2.1-I2V's image attention)
                image_context = self.image_encoder.encode(last_frames).to(device)
            timings["control_encoding"] = time.perf_counter() - tick

            # 3. Denoise from the unified noise.
            tick = time.perf_counter()
            latents = denoise(
                self.transformer, unified_noise(noise, history), condition, context, self.options,
                controls=control_latents, history=history, negative_context=negative, image_context=image_context,
                control_conditions=control_conditions,
            )
            timings["denoising"] = time.perf_counter() - tick

            # 4. Decode, chunk by chunk (the first is the shared frame, replaced below).
            tick = time.perf_counter()
            chunks, decoded = [], 0
            for chunk in self.vae.decode_chunks(latents):
                frames = tensor_to_frames(chunk)  # [B, k, H, W, 3]
                for row, pixels in enumerate(known or ()):
                    if pixels is not None:
                        frames[row] = pixels.apply(frames[row], decoded)
                chunks.append(frames)
                decoded += frames.shape[1]
                if on_frames is not None and len(chunks) > 1:
                    on_frames(chunks[-1])
            frames = np.concatenate(chunks, axis=1)
            timings["decoding"] = time.perf_counter() - tick

        frames[:, 0] = last_frames  # the shared frame is exactly the previous clip's last frame
        return frames, timings

    def _context(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Text of every prompt (each encoded alone, cached), zero-padded to the longest: ``[B, L, D]``; and the
        empty prompt's, for classifier-free guidance."""
        device = self.device
        for prompt in prompts:
            if prompt in self._prompts:
                self._prompts.move_to_end(prompt)
            else:
                if len(self._prompts) >= PROMPT_CACHE_SIZE:
                    self._prompts.popitem(last=False)
                self._prompts[prompt] = self.text_encoder.encode([prompt]).to(device)
        parts = [self._prompts[p] for p in prompts]
        length = max(c.shape[1] for c in parts)
        context = torch.cat([torch.nn.functional.pad(c, (0, 0, 0, length - c.shape[1])) for c in parts])
        negative = None
        if self.options.guidance_scale > 1.0:
            if self._negative is None:
                self._negative = self.text_encoder.encode([""]).to(device)
            negative = self._negative.expand(len(prompts), -1, -1)
        return context, negative


class GeneratorSlot:
    """One video of a :class:`BatchGenerator`: its last frame, history, unified noise and last step's timings.

    ``reset`` and ``generate_clip`` run this video alone (a batch of one); :meth:`BatchGenerator.generate`
    runs several slots together.
    """

    def __init__(self, batch: BatchGenerator, index: int, seed: int = 0) -> None:
        self.batch = batch
        self.index = index
        self.seed = int(seed)
        self.last_frame: np.ndarray | None = None
        self.history = HistoryBuffer(batch.history_capacity)
        self.noise: torch.Tensor | None = None
        self.last_timings: dict[str, float] = {}

    @property
    def frames(self) -> int:
        """Frames per clip."""
        return self.batch.frames

    @property
    def condition(self) -> str:
        """``"first_frame"`` or ``"rendered"`` (see :class:`BatchGenerator`)."""
        return self.batch.condition

    @property
    def options(self) -> SamplingOptions:
        return self.batch.options

    @property
    def history_latent_frames(self) -> int:
        """Latent frames of history context (0: history off; see :class:`BatchGenerator`)."""
        return self.batch.history_latent_frames

    def reset(self, first_frame: np.ndarray, seed: int | None = None) -> None:
        """Start a new video from ``first_frame`` (uint8 ``[H, W, 3]``); draws the episode's unified noise."""
        self.batch.reset(self.index, first_frame, seed)

    def generate_clip(
        self,
        controls: Mapping[str, np.ndarray],
        prompt: str,
        first_frame: np.ndarray | None = None,
        rendered: np.ndarray | None = None,
        on_frames: Callable[[np.ndarray], None] | None = None,
        known: KnownPixels | None = None,
    ) -> np.ndarray:
        """Generate this video's next clip.

        Args:
            controls: modality name -> uint8 control video ``[F, H, W, 3]`` (LongVie 2: ``dense``, ``sparse``).
            prompt: the clip's caption.
            first_frame: uint8 ``[H, W, 3]`` to restart from (resets the video); default: the previous clip's last.
            rendered: uint8 ``[F, H, W, 3]``, the first frame rendered along the clip's camera path with its depth
                (black where nothing lands); required by, and only used by, a ``condition="rendered"`` model.
            on_frames: called with each chunk of new frames (uint8 ``[k, H, W, 3]``, 4 frames at a time for Wan's
                VAE) as soon as the decoder has produced it, before this method returns: for players that show
                frames while the rest of the clip decodes.
            known: pixels shown over the decoded ones (:class:`KnownPixels`), in the returned frames, the chunks
                ``on_frames`` gets, and what the next clip continues from.

        Returns:
            uint8 ``[F, H, W, 3]``; frame 0 is the first frame given (or the previous clip's last frame).
        """
        if first_frame is not None:
            self.reset(first_frame)
        callback = None if on_frames is None else (lambda index, chunk: on_frames(chunk))
        return self.batch.generate([self.index], [controls], [prompt], None if rendered is None else [rendered],
                                   on_frames=callback, known=None if known is None else [known])[0]


class LongVideoGenerator(GeneratorSlot):
    """One long video: the only slot of its own :class:`BatchGenerator` (whose arguments it takes, but ``slots``)."""

    def __init__(self, transformer: LongVieTransformer, vae: VideoVAE, text_encoder, *, seed: int = 0,
                 **settings: Any) -> None:
        batch = BatchGenerator(transformer, vae, text_encoder, slots=1, seed=seed, **settings)
        super().__init__(batch, 0, seed)
        batch.slots[0] = self  # the batch's one slot is this object
