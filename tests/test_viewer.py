"""Tests for lv2_env.media.viewer, headless: SDL's dummy video driver gives a real display surface without a screen."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Iterator

import numpy as np
import pytest

from lv2_env.media.viewer import PygameViewer


@pytest.fixture
def viewer(monkeypatch: pytest.MonkeyPatch) -> Iterator[PygameViewer]:
    """A viewer on the dummy driver (set before the window opens), always closed afterwards."""
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    view = PygameViewer(title="lv2 test", scale=3, fps=0)
    yield view
    view.close()


def random_frame(height: int = 20, width: int = 30, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def screen_pixels() -> np.ndarray:
    """What is on the display now, as [H, W, 3] RGB (surfarray is [W, H, 3])."""
    import pygame

    return pygame.surfarray.array3d(pygame.display.get_surface()).swapaxes(0, 1)


def test_importing_the_module_does_not_import_pygame() -> None:
    code = "import sys, lv2_env.media.viewer; assert 'pygame' not in sys.modules, 'pygame imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_no_pygame_banner_is_printed() -> None:
    code = (
        "import numpy as np; from lv2_env.media.viewer import PygameViewer; v = PygameViewer(fps=0); "
        "v.show(np.zeros((4, 4, 3), np.uint8)); v.close()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "SDL_VIDEODRIVER": "dummy"},
    )
    assert result.returncode == 0, result.stderr
    assert "pygame" not in result.stdout.lower() and "pygame" not in result.stderr.lower()


def test_window_opens_lazily_with_scaled_size(viewer: PygameViewer) -> None:
    assert not viewer.is_open and viewer.window_size is None
    assert viewer.show(random_frame(20, 30)) is True
    assert viewer.is_open
    assert viewer.window_size == (90, 60)  # (width, height) = frame * scale

    import pygame

    assert pygame.display.get_surface().get_size() == (90, 60)
    assert pygame.display.get_caption()[0] == "lv2 test"


def test_shown_frame_appears_nearest_neighbour_scaled(viewer: PygameViewer) -> None:
    frame = random_frame(20, 30, seed=1)
    viewer.show(frame)
    expected = frame.repeat(3, axis=0).repeat(3, axis=1)
    np.testing.assert_array_equal(screen_pixels(), expected)

    second = random_frame(20, 30, seed=2)
    viewer.show(second)
    np.testing.assert_array_equal(screen_pixels(), second.repeat(3, axis=0).repeat(3, axis=1))


def test_caption_text_is_drawn_on_top_only(viewer: PygameViewer) -> None:
    frame = np.full((40, 60, 3), 100, dtype=np.uint8)
    viewer.show(frame, caption_text="step 3 | forward")
    pixels = screen_pixels()
    expected = frame.repeat(3, axis=0).repeat(3, axis=1)
    changed = np.any(pixels != expected, axis=-1)
    assert changed[:40].sum() > 100  # the text band, top left
    assert not changed[60:].any()  # the rest of the frame is untouched
    assert (pixels[:40] > 200).all(axis=-1).any()  # white text pixels


def test_long_caption_fits_in_one_line(viewer: PygameViewer) -> None:
    frame = np.full((10, 10, 3), 50, dtype=np.uint8)
    viewer.show(frame, caption_text="a very long status line\nwith a newline " * 10)
    changed = np.any(screen_pixels() != 50, axis=-1)
    assert changed[:15].any() and not changed[20:].any()


def test_new_frame_size_resizes_the_window(viewer: PygameViewer) -> None:
    viewer.show(random_frame(20, 30))
    viewer.show(random_frame(10, 12))
    assert viewer.window_size == (36, 30)


def test_close_is_idempotent_and_show_reopens(viewer: PygameViewer) -> None:
    viewer.close()  # before ever opening
    viewer.show(random_frame())
    viewer.close()
    assert not viewer.is_open
    viewer.close()
    assert not viewer.is_open and not viewer.closed_by_user

    import pygame

    assert not pygame.display.get_init()
    assert viewer.show(random_frame()) and viewer.is_open


def test_quit_event_sets_closed_by_user(viewer: PygameViewer) -> None:
    viewer.show(random_frame())
    import pygame

    pygame.event.post(pygame.event.Event(pygame.QUIT))
    assert viewer.show(random_frame()) is False
    assert viewer.closed_by_user and not viewer.is_open
    assert viewer.show(random_frame()) is False  # stays closed: the user's choice
    assert viewer.show_clip(np.stack([random_frame()] * 3)) is False
    viewer.close()


def test_other_events_are_kept_for_callers(viewer: PygameViewer) -> None:
    viewer.show(random_frame())
    import pygame

    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_w))
    viewer.show(random_frame())
    assert any(e.type == pygame.KEYDOWN and e.key == pygame.K_w for e in viewer.last_events)
    assert viewer.is_open


def test_show_clip_plays_at_fps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    frames = np.stack([random_frame(32, 32, seed=i) for i in range(8)])
    with PygameViewer(scale=2, fps=20) as view:
        start = time.perf_counter()
        assert view.show_clip(frames, caption_text="clip") is True
        elapsed = time.perf_counter() - start
        last = frames[-1].repeat(2, axis=0).repeat(2, axis=1)
        # The text band covers the top; compare the bottom rows with the last frame.
        np.testing.assert_array_equal(screen_pixels()[32:], last[32:])
    assert not view.is_open
    assert elapsed >= 7 / 20 * 0.9  # 8 frames at 20 fps: at least 7 frame intervals


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((20, 30, 3), np.float32), "uint8.*got dtype float32"),
        (np.zeros((20, 30), np.uint8), r"\[H, W, 3\].*got shape \(20, 30\)"),
        (np.zeros((20, 30, 4), np.uint8), r"got shape \(20, 30, 4\)"),
        (np.zeros((2, 20, 30, 3), np.uint8), r"got shape \(2, 20, 30, 3\)"),
        (np.zeros((0, 30, 3), np.uint8), r"got shape \(0, 30, 3\)"),
        ([[0, 0, 0]], "numpy uint8 array.*got list"),
    ],
)
def test_bad_frames_raise_value_error(viewer: PygameViewer, bad: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        viewer.show(bad)  # type: ignore[arg-type]
    assert not viewer.is_open  # validated before opening anything


def test_bad_clip_and_arguments_raise(viewer: PygameViewer) -> None:
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\].*got \(20, 30, 3\)"):
        viewer.show_clip(random_frame())
    with pytest.raises(ValueError, match="uint8"):
        viewer.show_clip(np.zeros((2, 4, 4, 3), np.float64))
    with pytest.raises(ValueError, match="caption_text"):
        viewer.show(random_frame(), caption_text=3)  # type: ignore[arg-type]
    for kwargs in ({"scale": 0}, {"scale": -1}, {"fps": -1}, {"title": None}):
        with pytest.raises(ValueError):
            PygameViewer(**kwargs)  # type: ignore[arg-type]
