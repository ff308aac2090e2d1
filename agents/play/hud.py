"""The window of ``lv2 play`` (:class:`PlayWindow`): the frames (and the ``--compare`` panels) between a top bar and
bottom lines of text, the HUD (:func:`hud_lines`: generated frames per second, clip, recording, the prompt and the
last message, each fitted to the window's width), and the key table (:data:`lv2_env.envs.keys.KEYS`) drawn over
the frames."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from agents.play.text import fit_line, wrap_lines
from lv2_env.envs.keys import KEYS

HUD_HEIGHT = 22  # pixels per line of the bars above and below the frames
BOTTOM_LINES = 3  # the prompt (up to two lines) and the last message
HUD_FONT_SIZE, KEYS_FONT_SIZE = 22, 18
MARGIN = 4  # pixels between the window's edge and the text
MESSAGE_SECONDS = 6.0  # a message shows this long, then the key hint comes back


@dataclass(frozen=True)
class HudState:
    """What the HUD tells: the player's state as it is drawn."""

    recording: bool
    generated_fps: float  # NaN before the first step
    clip_index: int
    goal: str | None  # what the agent walks to (G), None while the keys steer
    stepping: bool  # a clip is being generated
    panels: int  # 1; with --compare 2 (generated, ground truth) or 3 (and the world memory's render)
    prompt_line: str | None  # the line being typed, None when not typing
    prompt: str
    message: str
    message_time: float  # time.monotonic() when the message was said
    show_keys: bool


def hud_lines(state: HudState, room: int, measure: Callable[[str], int]) -> tuple[str, list[str]]:
    """The HUD's top line (recording, generated fps, clip) and bottom lines (the prompt on up to
    ``BOTTOM_LINES - 1`` lines, then the last message or the key hint), fitted to ``room`` (by ``measure``)."""
    fps = "-" if not np.isfinite(state.generated_fps) else f"{state.generated_fps:.1f}"
    parts = (["REC"] if state.recording else []) + [f"{fps} generated fps", f"clip {state.clip_index}"]
    if state.goal is not None:
        parts.append(f"agent -> {state.goal}")
    if state.stepping:
        parts.append(f"generating {state.clip_index + 1}")
    if state.panels > 1:
        parts.append("generated | ground truth | world memory" if state.panels == 3 else
                     "left: generated, right: ground truth")
    top = fit_line(" | ".join(parts), room, measure)
    if state.prompt_line is not None:  # the end of the line being typed stays in view
        prompt = wrap_lines(f"new prompt: {state.prompt_line}_", room, measure, BOTTOM_LINES - 1, keep_end=True)
    else:
        prompt = wrap_lines(f"prompt: {state.prompt}", room, measure, BOTTOM_LINES - 1)
    if state.message and time.monotonic() - state.message_time < MESSAGE_SECONDS:
        note = state.message
    else:
        note = ("H: hide keys" if state.show_keys else "H: keys") + " | Esc: quit"
    return top, prompt + [fit_line(note, room, measure)]


class PlayWindow:
    """The pygame window, opened by :meth:`open` on the first frame; ``scale`` window pixels per frame pixel."""

    def __init__(self, pygame: Any, scale: int, fps: int) -> None:
        self.pygame = pygame
        self.scale = scale
        self.fps = fps
        self.screen = None
        self.font = None
        self.keys_font = None
        self.clock = None

    def open(self, height: int, width: int, panels: int) -> None:
        """Open the window for ``panels`` frames of ``height x width`` side by side, with the HUD's bars."""
        pg = self.pygame
        pg.display.init()
        pg.font.init()
        bars = (1 + BOTTOM_LINES) * HUD_HEIGHT
        self.screen = pg.display.set_mode((width * self.scale * panels, height * self.scale + bars))
        pg.display.set_caption("lv2 play")
        self.font = pg.font.Font(None, HUD_FONT_SIZE)
        self.keys_font = pg.font.Font(None, KEYS_FONT_SIZE)
        self.clock = pg.time.Clock()

    def tick(self) -> None:
        """Wait for the next frame's time (``fps``)."""
        self.clock.tick(self.fps)

    def frames_height(self) -> int:
        """Pixels of the window's frame area, between the top bar and the bottom lines."""
        return self.screen.get_height() - (1 + BOTTOM_LINES) * HUD_HEIGHT

    def text_width(self, text: str) -> int:
        return self.font.size(text)[0]

    def hud_lines(self, state: HudState) -> tuple[str, list[str]]:
        """:func:`hud_lines` fitted to this window's width."""
        return hud_lines(state, self.screen.get_width() - 2 * MARGIN, self.text_width)

    def draw(self, shown: tuple[np.ndarray | None, ...], state: HudState) -> None:
        """``shown`` (the frame, then its truth and memory render, None: no panel), the HUD, and the key table if
        ``state.show_keys``."""
        frame, *extras = shown
        self.screen.fill((0, 0, 0))
        self._blit(frame, 0)
        for k, extra in enumerate(extras, start=1):
            if extra is not None:
                self._blit(extra, k * frame.shape[1] * self.scale)
        self._draw_hud(state)
        if state.show_keys:
            self._draw_keys()
        self.pygame.display.flip()

    def _blit(self, frame: np.ndarray, x: int) -> None:
        pg = self.pygame
        surface = pg.image.frombuffer(np.ascontiguousarray(frame), (frame.shape[1], frame.shape[0]), "RGB")
        size = (frame.shape[1] * self.scale, frame.shape[0] * self.scale)
        self.screen.blit(pg.transform.scale(surface, size), (x, HUD_HEIGHT))

    def _draw_hud(self, state: HudState) -> None:
        top, bottom = self.hud_lines(state)
        colour = (255, 80, 80) if state.recording else (255, 255, 255)
        self.screen.blit(self.font.render(top, True, colour), (MARGIN, 3))
        below = HUD_HEIGHT + self.frames_height()
        for i, text in enumerate(bottom):
            self.screen.blit(self.font.render(text, True, (255, 255, 255)), (MARGIN, below + 3 + i * HUD_HEIGHT))

    def keys_panel(self) -> tuple[int, int, int]:
        """``(width, height, key column width)`` in pixels of the key table drawn over the frames."""
        keys_width = max(self.keys_font.size(keys)[0] for keys, _ in KEYS) + 3 * MARGIN
        width = keys_width + max(self.keys_font.size(action)[0] for _, action in KEYS) + 2 * MARGIN
        return width, len(KEYS) * self.keys_font.get_linesize() + 2 * MARGIN, keys_width

    def _draw_keys(self) -> None:
        """The key table (:data:`lv2_env.envs.keys.KEYS`) on a dark translucent panel at the frames' top left."""
        pg = self.pygame
        width, height, keys_width = self.keys_panel()
        panel = pg.Surface((width, height), pg.SRCALPHA)
        panel.fill((0, 0, 0, 170))
        line = self.keys_font.get_linesize()
        for i, (keys, action) in enumerate(KEYS):
            y = MARGIN + i * line
            panel.blit(self.keys_font.render(keys, True, (255, 220, 120)), (MARGIN, y))
            panel.blit(self.keys_font.render(action, True, (255, 255, 255)), (keys_width, y))
        self.screen.blit(panel, (MARGIN, HUD_HEIGHT + MARGIN))
