"""What the next clip is conditioned on, and what the world remembers of it: one home for the loop that
``LV2/World-v0``, ``lv2 generate`` (:func:`lv2_env.offline.generate_video`), ``lv2 eval``'s single clips and
``lv2 data memory-renders`` all run.

For a model that reads a render of the path (``condition="rendered"``, the shipped one), each clip is conditioned
on the world memory of every frame the world has shown (``conditioning="memory"``), or on its last frame alone
warped along the path (``"last_frame"``); with ``composite`` the memory's pixels are shown over the generated ones.
A first-frame model (the full-size preset) takes the last frame itself, so it gets nothing from here. That policy
is :func:`memory_options` (it refuses the combinations that cannot work); :func:`condition_on_memory` turns the
memory's render along a path into a clip's conditioning.

A clip's loop is:

1. :meth:`ClipConditioner.start`: the world's first frame, its depth and pose (the memory keeps it, protected);
2. :meth:`ClipConditioner.condition`: the clip's conditioning along its poses and depth (:class:`ClipConditioning`);
3. the generator makes the clip (``rendered=``, ``known=`` from step 2);
4. :meth:`ClipConditioner.remember`: the frame the world showed last, its depth and pose; then 2 again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lv2_env.conditioning.atmosphere import Atmosphere
from lv2_env.conditioning.warp import render_along_path
from lv2_env.conditioning.world_memory import MemoryRender, WorldMemory

if TYPE_CHECKING:  # model.generator imports torch; the conditioner itself does not need it
    from model.generator import KnownPixels


def memory_options(condition: str, conditioning: str | None = None, composite: bool | None = None,
                   trained_conditioning: str | None = None) -> tuple[str, bool]:
    """``(conditioning, composite)`` for a model of I2V ``condition`` (``"rendered"`` or ``"first_frame"``) trained
    on ``trained_conditioning`` (its preset's): by default the memory, composited, for a model that reads a render
    of the path, else the last frame alone. Combinations that cannot work raise ``ValueError`` saying why."""
    if conditioning is None:
        conditioning = "memory" if condition == "rendered" else "last_frame"
    if composite is None:
        composite = conditioning == "memory"
    if conditioning == "memory" and condition != "rendered":
        raise ValueError(f"conditioning='memory' feeds the memory's render into the I2V channels, which only a "
                         f"model trained with condition='rendered' reads; this one is {condition!r}")
    if trained_conditioning == "memory" and conditioning != "memory":
        raise ValueError(f"this checkpoint was trained on the world memory's renders (trained_conditioning="
                         f"'memory'), and conditioning={conditioning!r} shows it the last frame alone, which it was "
                         f"never trained on: use conditioning='memory' (the default)")
    if composite and conditioning != "memory":
        raise ValueError(f"composite=True shows the world memory's pixels over the generated ones, so it needs "
                         f"conditioning='memory'; got conditioning={conditioning!r}")
    return conditioning, bool(composite)


@dataclass(frozen=True)
class MemoryConditioning:
    """What a clip along ``poses`` gets from a world memory (:func:`condition_on_memory`): ``rendered``, the
    rendered conditioning (uint8 ``[F, H, W, 3]``: the memory's render, surfaces and sky, black in its holes;
    frame 0 the last frame itself), ``known`` (``[F, H, W]``: where the memory shows something, frame 0 aside), and
    the memory's own ``render``."""

    rendered: np.ndarray
    known: np.ndarray
    render: MemoryRender

    def known_pixels(self):
        """What to show over the generated frames (a ``model.generator.KnownPixels``): the surfaces and the sky the
        memory holds, each as it was first seen."""
        from model.generator import KnownPixels

        return KnownPixels(self.rendered, self.known)


def condition_on_memory(memory: WorldMemory, last_frame: np.ndarray, poses: np.ndarray,
                        depth: np.ndarray | None = None) -> MemoryConditioning:
    """The conditioning of the clip along ``poses`` ``[F, 4, 4]`` from ``memory``, which already holds every frame
    the world has shown (``last_frame`` ``[H, W, 3]``, seen from ``poses[0]``, too), rendered with the path's
    ``depth`` ``[F, H, W]`` when it is known (see :meth:`~lv2_env.conditioning.world_memory.WorldMemory.render`)."""
    render = memory.render(poses, depth)
    rendered = render.frames.copy()
    rendered[0] = last_frame
    known = render.covered.copy()
    known[0] = False  # frame 0 is the last frame itself, which the generator keeps
    return MemoryConditioning(rendered, known, render)


@dataclass(frozen=True)
class ClipConditioning:
    """One clip's conditioning (every field None for a model that takes its first frame only):

    * ``rendered``: uint8 ``[F, H, W, 3]``, what the model sees along the path (frame 0 the last frame);
    * ``known``: the memory's pixels to show over the generated ones (``composite`` on), else None;
    * ``memory_frames``: uint8 ``[F, H, W, 3]``, the memory's own render (black in its holes), and
      ``memory_known``, bool ``[F, H, W]``, where it holds something (frame 0 False); None without a memory.
    """

    rendered: np.ndarray | None = None
    known: "KnownPixels | None" = None
    memory_frames: np.ndarray | None = None
    memory_known: np.ndarray | None = None


class ClipConditioner:
    """The conditioning loop of a world (module docstring).

    Args:
        condition: the model's I2V condition, ``"rendered"`` or ``"first_frame"``.
        intrinsics: the camera's :class:`~lv2_env.signals.camera.Intrinsics`.
        conditioning: ``"memory"``, ``"last_frame"`` or None (the model's default), and ``composite``: as
            :func:`memory_options`, with the model's ``trained_conditioning``.
        memory_capacity: surfels the memory holds at most.
    """

    def __init__(self, condition: str, intrinsics, conditioning: str | None = None, composite: bool | None = None,
                 trained_conditioning: str | None = None, memory_capacity: int = 1 << 18) -> None:
        self.model_condition = condition
        self.intrinsics = intrinsics
        self.conditioning, self.composite = memory_options(condition, conditioning, composite, trained_conditioning)
        self.memory = (WorldMemory(intrinsics, capacity=memory_capacity)
                       if self.conditioning == "memory" else None)
        self._last_frame: np.ndarray | None = None  # [H, W, 3]: frame 0 of the next clip

    @property
    def renders_path(self) -> bool:
        """Whether the model reads a render of the path (else it takes its first frame alone)."""
        return self.model_condition == "rendered"

    def start(self, frame: np.ndarray, depth: np.ndarray | None, pose: np.ndarray,
              atmosphere: Atmosphere | None = None) -> None:
        """A new world from ``frame`` (uint8 ``[H, W, 3]``) with its ``depth`` ``[H, W]`` seen from ``pose``
        ``[4, 4]``: the memory forgets everything and keeps this frame for good; ``atmosphere``, the scene's fog
        (None for a world from a picture)."""
        self._last_frame = np.array(frame, dtype=np.uint8)  # a copy: the caller's array may be handed on
        if self.memory is not None:
            self.memory.clear()
            self.memory.atmosphere = atmosphere
            self.memory.add(frame, depth, pose, protected=True)

    def condition(self, poses: np.ndarray, depth: np.ndarray, first_frame: np.ndarray | None = None
                  ) -> ClipConditioning:
        """The conditioning of the clip along ``poses`` ``[F, 4, 4]`` with the path's ``depth`` ``[F, H, W]``
        (frame 0 the last frame's pose and depth). Its frame 0 is the last frame the world showed, or
        ``first_frame`` when given (training data conditions each clip on its own true first frame)."""
        if self._last_frame is None:
            raise RuntimeError("call start() before condition()")
        if not self.renders_path:
            return ClipConditioning()
        frame = self._last_frame if first_frame is None else first_frame
        if self.memory is None:
            return ClipConditioning(rendered=render_along_path(frame, depth[0], poses, self.intrinsics))
        remembered = condition_on_memory(self.memory, frame, poses, depth)
        return ClipConditioning(rendered=remembered.rendered,
                                known=remembered.known_pixels() if self.composite else None,
                                memory_frames=remembered.render.frames, memory_known=remembered.known)

    def remember(self, frame: np.ndarray, depth: np.ndarray, pose: np.ndarray) -> None:
        """The frame the world showed last (uint8 ``[H, W, 3]``, the next clip's frame 0) with its ``depth`` and
        ``pose``."""
        self._last_frame = np.array(frame, dtype=np.uint8)
        if self.memory is not None:
            self.memory.add(frame, depth, pose)
