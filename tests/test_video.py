"""Tests for lv2_env.media.video: MP4 round trip, input validation, and surviving a SIGKILL mid-write."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from lv2_env.media.video import Mp4Writer, probe_video, read_video

FPS = 16


def moving_gradient(n: int, height: int = 48, width: int = 64, start: int = 0) -> np.ndarray:
    """Smooth synthetic clip [n, H, W, 3] uint8: sinusoidal colour gradients drifting over time.

    Smooth content is what H.264 at CRF 18 reproduces almost exactly, so a small error bound is meaningful.
    """
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = np.arange(start, start + n, dtype=np.float32)[:, None, None]
    red = 128 + 90 * np.sin(xx / 11.0 + 0.30 * t)
    green = 128 + 90 * np.cos(yy / 9.0 + 0.20 * t)
    blue = 128 + 60 * np.sin((xx + yy) / 15.0 - 0.25 * t)
    return np.clip(np.stack([red, green, blue], axis=-1), 0, 255).astype(np.uint8)


def mean_abs_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_round_trip_multi_frame_write(tmp_path: Path) -> None:
    frames = moving_gradient(40)
    path = tmp_path / "clip.mp4"
    with Mp4Writer(path, fps=FPS) as writer:
        writer.write(frames)
    assert writer.closed and writer.frames_written == 40

    info = probe_video(path)
    assert info == {"frames": 40, "fps": 16.0, "width": 64, "height": 48, "codec": "h264"}
    decoded = read_video(path)
    assert decoded.shape == frames.shape and decoded.dtype == np.uint8
    assert mean_abs_error(decoded, frames) < 3.0


def test_single_frame_writes_match_one_batch(tmp_path: Path) -> None:
    frames = moving_gradient(20)
    with Mp4Writer(tmp_path / "single.mp4", fps=FPS) as writer:
        for frame in frames:
            writer.write(frame)
        writer.write(frames[:0])  # an empty batch is a no-op
    decoded = read_video(tmp_path / "single.mp4")
    assert decoded.shape == (20, 48, 64, 3)
    assert mean_abs_error(decoded, frames) < 3.0


def test_mixed_writes_and_other_fps(tmp_path: Path) -> None:
    frames = moving_gradient(30)
    with Mp4Writer(tmp_path / "mixed.mp4", fps=24, crf=23) as writer:
        writer.write(frames[0])
        writer.write(frames[1:17])
        writer.write(frames[17:])
    info = probe_video(tmp_path / "mixed.mp4")
    assert info["frames"] == 30 and info["fps"] == 24.0
    assert mean_abs_error(read_video(tmp_path / "mixed.mp4"), frames) < 4.0


def test_constant_colour_frame_survives(tmp_path: Path) -> None:
    frame = np.full((16, 16, 3), (200, 40, 90), dtype=np.uint8)
    with Mp4Writer(tmp_path / "one.mp4") as writer:
        writer.write(frame)
    decoded = read_video(tmp_path / "one.mp4")
    assert decoded.shape == (1, 16, 16, 3)
    assert np.abs(decoded[0].astype(int) - frame).max() <= 3  # colour matrix round trip is consistent


def test_odd_size_is_padded_to_even_by_edge_repetition(tmp_path: Path) -> None:
    frames = moving_gradient(8, height=33, width=47)
    with Mp4Writer(tmp_path / "odd.mp4") as writer:
        writer.write(frames)
        assert writer.frame_size == (33, 47)
        assert (writer.height, writer.width) == (34, 48)
    decoded = read_video(tmp_path / "odd.mp4")
    assert decoded.shape == (8, 34, 48, 3)
    assert mean_abs_error(decoded[:, :33, :47], frames) < 3.0
    # The padded row/column repeats the edge, so it looks like its neighbour.
    assert mean_abs_error(decoded[:, 33, :47], frames[:, 32]) < 4.0
    assert mean_abs_error(decoded[:, :33, 47], frames[:, :, 46]) < 4.0


def test_size_given_up_front_writes_header_immediately(tmp_path: Path) -> None:
    path = tmp_path / "sized.mp4"
    writer = Mp4Writer(path, height=48, width=64)
    assert path.exists() and path.stat().st_size > 0
    with pytest.raises(ValueError, match="48 x 64.*got 32 x 64"):
        writer.write(np.zeros((32, 64, 3), np.uint8))
    writer.close()
    assert probe_video(path)["frames"] == 0
    assert read_video(path).shape == (0, 48, 64, 3)


def test_no_frames_and_no_size_creates_no_file(tmp_path: Path) -> None:
    Mp4Writer(tmp_path / "nothing.mp4").close()
    assert not (tmp_path / "nothing.mp4").exists()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((48, 64, 3), np.float32), "uint8.*got dtype float32"),
        (np.zeros((48, 64, 3), np.int64), "uint8.*got dtype int64"),
        (np.zeros((48, 64), np.uint8), r"\[H, W, 3\] or \[N, H, W, 3\].*got shape \(48, 64\)"),
        (np.zeros((48, 64, 4), np.uint8), r"got shape \(48, 64, 4\)"),
        (np.zeros((1, 2, 48, 64, 3), np.uint8), r"got shape \(1, 2, 48, 64, 3\)"),
        ([[[0, 0, 0]]], "numpy uint8 array.*got list"),
    ],
)
def test_bad_frames_raise_value_error(tmp_path: Path, bad: object, message: str) -> None:
    with Mp4Writer(tmp_path / "bad.mp4") as writer:
        with pytest.raises(ValueError, match=message):
            writer.write(bad)  # type: ignore[arg-type]


def test_size_change_and_write_after_close_raise(tmp_path: Path) -> None:
    writer = Mp4Writer(tmp_path / "v.mp4")
    writer.write(moving_gradient(2))
    with pytest.raises(ValueError, match="48 x 64.*got 50 x 64"):
        writer.write(np.zeros((50, 64, 3), np.uint8))
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        writer.write(moving_gradient(1))
    assert probe_video(tmp_path / "v.mp4")["frames"] == 2


@pytest.mark.parametrize(
    "kwargs",
    [{"fps": 0}, {"fps": -5}, {"crf": 60}, {"crf": 1.5}, {"height": 48}, {"height": 0, "width": 4},
     {"keyframe_interval": 0}],
)
def test_bad_constructor_arguments_raise(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Mp4Writer(tmp_path / "x.mp4", **kwargs)


def test_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Mp4Writer(tmp_path / "no" / "such" / "dir.mp4")


CRASH_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {tests_dir!r})
    from test_video import moving_gradient
    from lv2_env.media.video import Mp4Writer

    writer = Mp4Writer({path!r}, fps={fps})
    for i in range({n_frames}):
        writer.write(moving_gradient(1, start=i)[0])
    os.kill(os.getpid(), signal.SIGKILL)  # die without close(): no trailer, no encoder flush
    """
)


def run_and_kill(path: Path, n_frames: int) -> subprocess.CompletedProcess:
    script = CRASH_SCRIPT.format(tests_dir=str(Path(__file__).parent), path=str(path), fps=FPS, n_frames=n_frames)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


def test_file_survives_sigkill_mid_write(tmp_path: Path) -> None:
    path = tmp_path / "crash.mp4"
    n_written = 5 * FPS  # five seconds of video
    result = run_and_kill(path, n_written)
    assert result.returncode == -signal.SIGKILL, result.stderr

    # Only the fragment still being filled may be lost: at least 4 of the 5 seconds decode.
    info = probe_video(path)
    assert info["codec"] == "h264" and (info["width"], info["height"]) == (64, 48)
    assert 4 * FPS <= info["frames"] <= n_written
    assert info["fps"] == 16.0
    decoded = read_video(path, strict=True)  # cut at a fragment boundary: nothing damaged
    assert 4 * FPS <= len(decoded) <= n_written
    assert mean_abs_error(decoded, moving_gradient(len(decoded))) < 3.0


def test_read_video_tolerates_a_truncated_tail(tmp_path: Path) -> None:
    path = tmp_path / "full.mp4"
    with Mp4Writer(path, fps=FPS) as writer:
        writer.write(moving_gradient(48))
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.8)])  # cut inside the last fragment's data

    with pytest.warns(RuntimeWarning, match="truncated"):
        decoded = read_video(cut)
    assert 2 * FPS <= len(decoded) < 48
    assert mean_abs_error(decoded, moving_gradient(len(decoded))) < 3.0
    with pytest.raises(Exception):
        read_video(cut, strict=True)
