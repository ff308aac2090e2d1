"""A pygame window that shows generated frames, for ``render_mode="human"``.

pygame is imported lazily, on the first :meth:`PygameViewer.show`, so importing lv2 (e.g. on a headless
training machine) neither needs a display nor pays pygame's start-up; and pygame's "Hello from the pygame
community" banner is switched off (``PYGAME_HIDE_SUPPORT_PROMPT``) because it would pollute the output of
every script that renders.

Scaling is nearest-neighbour (``pygame.transform.scale``): generated frames are small, and blocky pixels
show exactly what the model produced, where smooth scaling would blur away artefacts worth seeing. It is
also the cheaper of the two.

pygame has a single display per process, so use one viewer at a time.
"""

from __future__ import annotations

import numbers
import os
from typing import Any

import numpy as np

__all__ = ["PygameViewer"]

# Must be set before pygame is first imported anywhere in the process; setdefault keeps a user's choice.
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")


def import_pygame() -> Any:
    """Import pygame on first use (see the module docstring for why not at module import time)."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    return pygame


def _check_frame(frame: Any) -> np.ndarray:
    """Return ``frame`` as a C-contiguous ``[H, W, 3]`` uint8 array, or raise ValueError saying what came."""
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"expected a frame as a numpy uint8 array [H, W, 3], got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise ValueError(f"expected a frame of dtype uint8 (values 0-255), got dtype {frame.dtype}")
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"expected a frame of shape [H, W, 3] (RGB), got shape {tuple(frame.shape)}")
    return np.ascontiguousarray(frame)


class PygameViewer:
    """Show RGB frames in a window, scaled up, with an optional one-line text overlay, at real speed.

    The window opens lazily on the first :meth:`show`, sized to the frame times ``scale``; a frame of a
    different size later resizes it. Every :meth:`show` pumps pygame's event queue (so the window stays
    responsive) and then waits on a clock ticking at ``fps``, so showing a clip frame by frame plays it at
    its real speed (``fps=0`` disables the wait).

    If the user closes the window (a ``pygame.QUIT`` event), the window is closed, :attr:`closed_by_user`
    becomes True, and further :meth:`show` calls do nothing and return False, so a loop can stop with
    ``while viewer.show(frame): ...``. After an explicit :meth:`close`, a later :meth:`show` reopens it.

    The events taken from the queue by the last :meth:`show` are kept in :attr:`last_events`, so callers
    that read the keyboard (e.g. a human driving the camera) see them instead of losing them.

    Args:
        title: window caption.
        scale: window pixels per frame pixel (nearest-neighbour), a positive number.
        fps: display rate in frames per second; 0 shows frames as fast as they come.
    """

    def __init__(self, title: str = "lv2", scale: float = 4, fps: float = 16) -> None:
        if not isinstance(title, str):
            raise ValueError(f"title must be a string, got {type(title).__name__}")
        if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not scale > 0:
            raise ValueError(f"scale must be a positive number, got {scale!r}")
        if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not fps >= 0:
            raise ValueError(f"fps must be a number >= 0 (0: no frame-rate limit), got {fps!r}")
        self.title = title
        self.scale = scale
        self.fps = fps
        self.closed_by_user = False
        self.last_events: list[Any] = []
        self._pygame: Any = None
        self._screen: Any = None
        self._clock: Any = None
        self._font: Any = None
        self._frame_size: tuple[int, int] | None = None  # (H, W) the window is currently sized for

    @property
    def is_open(self) -> bool:
        """True while the window is open."""
        return self._screen is not None

    @property
    def window_size(self) -> tuple[int, int] | None:
        """``(width, height)`` of the window in pixels, or None while it is closed."""
        return None if self._screen is None else tuple(self._screen.get_size())  # type: ignore[return-value]

    def _scaled_size(self, height: int, width: int) -> tuple[int, int]:
        """Window ``(width, height)`` for a frame of ``height x width``; at least one pixel each way."""
        return max(1, round(width * self.scale)), max(1, round(height * self.scale))

    def _open(self, height: int, width: int) -> None:
        """Create (or resize) the window for frames of ``height x width``."""
        if self._pygame is None:
            self._pygame = import_pygame()
        pygame = self._pygame
        if not pygame.display.get_init():
            pygame.display.init()
        self._screen = pygame.display.set_mode(self._scaled_size(height, width))
        pygame.display.set_caption(self.title)
        self._frame_size = (height, width)
        if self._clock is None:
            self._clock = pygame.time.Clock()
        self._font = self._load_font(self._screen.get_height())

    def _load_font(self, window_height: int) -> Any:
        """pygame's default font at a size readable in this window, or None if pygame has no font support."""
        pygame = self._pygame
        try:
            if not pygame.font.get_init():
                pygame.font.init()
            return pygame.font.Font(None, int(np.clip(window_height // 14, 14, 28)))
        except (ImportError, NotImplementedError, pygame.error):
            return None  # a pygame built without SDL_ttf: frames still show, just without text

    def _draw_text(self, text: str) -> None:
        """Draw ``text`` as one line, top left, white on a translucent black band; cut with '...' if too long."""
        if self._font is None or not text:
            return
        pygame = self._pygame
        line = " ".join(text.split())  # one line: newlines and tabs become spaces
        margin = 4
        max_width = self._screen.get_width() - 2 * margin
        rendered = self._font.render(line, True, (255, 255, 255))
        while rendered.get_width() > max_width and len(line) > 1:
            line = line[:-1]
            rendered = self._font.render(line.rstrip() + "...", True, (255, 255, 255))
        band = pygame.Surface((rendered.get_width() + 2 * margin, rendered.get_height() + 2 * margin))
        band.set_alpha(160)
        band.fill((0, 0, 0))
        self._screen.blit(band, (0, 0))
        self._screen.blit(rendered, (margin, margin))

    def _handle_events(self) -> None:
        """Take all pending events; a QUIT (window closed) closes the viewer and sets :attr:`closed_by_user`."""
        pygame = self._pygame
        self.last_events = pygame.event.get()
        if any(event.type == pygame.QUIT for event in self.last_events):
            self.closed_by_user = True
            self.close()

    def show(self, frame: np.ndarray, caption_text: str | None = None) -> bool:
        """Display one ``[H, W, 3]`` uint8 RGB frame, with an optional one-line text overlay.

        Returns True if the window is still open afterwards, False once the user has closed it.
        """
        image = _check_frame(frame)
        if caption_text is not None and not isinstance(caption_text, str):
            raise ValueError(f"caption_text must be a string or None, got {type(caption_text).__name__}")
        if self.closed_by_user:
            return False
        height, width = image.shape[:2]
        if self._screen is None or self._frame_size != (height, width):
            self._open(height, width)
        pygame = self._pygame
        surface = pygame.image.frombuffer(image, (width, height), "RGB")  # no copy
        # Scale into a new surface and blit: the display's pixel format usually differs from packed RGB.
        self._screen.blit(pygame.transform.scale(surface, self._screen.get_size()), (0, 0))
        if caption_text:
            self._draw_text(caption_text)
        pygame.display.flip()
        self._handle_events()
        if self._screen is not None and self.fps > 0:
            self._clock.tick(self.fps)
        return self._screen is not None

    def show_clip(self, frames: np.ndarray, caption_text: str | None = None) -> bool:
        """Play ``[N, H, W, 3]`` uint8 frames in order at ``fps``; stop early if the user closes the window.

        Returns True if the window is still open afterwards.
        """
        if not isinstance(frames, np.ndarray) or frames.ndim != 4:
            shape = tuple(frames.shape) if isinstance(frames, np.ndarray) else type(frames).__name__
            raise ValueError(f"expected frames of shape [N, H, W, 3] (uint8 RGB), got {shape}")
        for frame in frames:
            if not self.show(frame, caption_text):
                return False
        return not self.closed_by_user

    def close(self) -> None:
        """Close the window. Safe to call any number of times, and before the window ever opened."""
        if self._screen is None:
            return
        self._screen = None
        self._font = None
        self._frame_size = None
        if self._pygame is not None and self._pygame.display.get_init():
            self._pygame.display.quit()

    def __enter__(self) -> "PygameViewer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "open" if self.is_open else ("closed by user" if self.closed_by_user else "closed")
        return f"PygameViewer(title={self.title!r}, scale={self.scale}, fps={self.fps}, {state})"
