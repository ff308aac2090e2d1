"""H.264 MP4 writing and reading that survives a crash of the writing process.

The simulator produces frames slowly (each one comes out of a video model), so losing a whole file because
the process was killed before ``close()`` would throw away a lot of compute. :class:`Mp4Writer` therefore
writes a *fragmented* MP4:

* ``movflags=frag_keyframe+empty_moov+default_base_moof``: the header (``moov``) is written up front without
  a sample table, and every keyframe starts a new self-describing fragment (``moof`` + ``mdat``). A file
  cut after any complete fragment is a valid, playable MP4.
* A short GOP: a keyframe every ``keyframe_interval`` frames (default ``round(fps)``, i.e. one fragment per
  second of video), so a crash loses at most the frames of the fragment still being filled.
* ``tune=zerolatency``: x264 emits every frame's packet as soon as the frame is encoded (no lookahead, no
  B-frames), so the encoder holds nothing back either. It costs roughly 20% in file size at equal quality
  (CRF), a fair price for not losing frames.
* ``flush_packets=1``: FFmpeg's I/O layer otherwise keeps up to 32 KiB in a user-space buffer, which dies
  with the process; with it, each finished fragment is handed to the OS (``write(2)``) immediately. The
  data then survives the process being killed (SIGKILL, OOM killer), though not a power loss (no fsync).

Colour: frames are converted from RGB to limited-range BT.601 YUV 4:2:0 (FFmpeg's default conversion) and
the stream is tagged as such, so players and :func:`read_video` convert back with the same matrix.

Odd sizes: H.264 4:2:0 needs an even width and height. An odd-sized frame is padded by one row and/or
column at the bottom/right, repeating the edge pixels, so the stored (and decoded) video is the even size
(see :attr:`Mp4Writer.width` / :attr:`Mp4Writer.height`). Padding rather than raising keeps any render size
usable; the extra row/column is a copy of its neighbour, so it is visually invisible.
"""

from __future__ import annotations

import numbers
import os
import warnings
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, Iterator

import av
import numpy as np

__all__ = ["Mp4Writer", "read_video", "probe_video"]

# x264 through FFmpeg: libx264's "veryfast" keeps encoding cheap on CPU-only machines; CRF controls quality.
_PRESET = "veryfast"
# FFmpeg's AVColorSpace / AVColorRange values used to tag the stream (see the module docstring).
_AVCOL_SPC_SMPTE170M = 6
_AVCOL_RANGE_MPEG = 1


def _check_fps(fps: float) -> Fraction:
    """The frame rate as an exact fraction (PyAV wants a rational rate); fps must be positive and finite."""
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not np.isfinite(float(fps)):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    exact = fps if isinstance(fps, (int, Fraction)) else float(fps)  # numpy scalars -> Python numbers
    return Fraction(exact).limit_denominator(1001)


def _even(n: int) -> int:
    """The smallest even number >= n (H.264 4:2:0 needs even sizes)."""
    return n + (n % 2)


def _as_frame_batch(frames: Any) -> np.ndarray:
    """Validate ``frames`` and return them as a C-contiguous ``[N, H, W, 3]`` uint8 array.

    Accepts one frame ``[H, W, 3]`` or several ``[N, H, W, 3]``; anything else raises ValueError saying what
    was expected and what came, because silently casting (e.g. float images in [0, 1]) would write garbage.
    """
    if not isinstance(frames, np.ndarray):
        raise ValueError(
            f"expected frames as a numpy uint8 array [H, W, 3] or [N, H, W, 3], got {type(frames).__name__}"
        )
    if frames.dtype != np.uint8:
        raise ValueError(
            f"expected frames of dtype uint8 (values 0-255), got dtype {frames.dtype} "
            f"(convert with np.clip(x, 0, 255).astype(np.uint8) if the values are already 0-255)"
        )
    if frames.ndim not in (3, 4) or frames.shape[-1] != 3:
        raise ValueError(
            f"expected frames of shape [H, W, 3] or [N, H, W, 3] (RGB), got shape {tuple(frames.shape)}"
        )
    if frames.shape[-3] < 1 or frames.shape[-2] < 1:
        raise ValueError(f"expected frames of positive height and width, got shape {tuple(frames.shape)}")
    batch = frames[None] if frames.ndim == 3 else frames
    return np.ascontiguousarray(batch)


class Mp4Writer:
    """Append RGB frames to an H.264 (libx264, yuv420p) fragmented MP4 that stays playable after a crash.

    See the module docstring for why the file survives a crash and how odd sizes are handled.

    >>> with Mp4Writer("out.mp4", fps=16) as writer:   # doctest: +SKIP
    ...     writer.write(first_frame)                   # [H, W, 3] uint8
    ...     writer.write(more_frames)                   # [N, H, W, 3] uint8

    Args:
        path: output file; created (or truncated) when the size is known: at construction if ``height``
            and ``width`` are given, otherwise at the first :meth:`write`. If the writer is closed without
            any frame and without a given size, no file is created.
        fps: frame rate of the video.
        crf: x264 constant rate factor, 0 (lossless) to 51 (worst); 18 is visually near-lossless.
        height, width: the frame size (both or neither); if omitted the first frame fixes it.
        keyframe_interval: frames per GOP, hence per MP4 fragment; defaults to ``round(fps)`` (one second).
            A crash loses at most this many frames; smaller values lose less but make the file bigger.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float = 16,
        crf: int = 18,
        height: int | None = None,
        width: int | None = None,
        *,
        keyframe_interval: int | None = None,
    ) -> None:
        self.path = Path(path)
        self._rate = _check_fps(fps)
        self.fps = fps
        if isinstance(crf, bool) or not isinstance(crf, (int, np.integer)) or not 0 <= crf <= 51:
            raise ValueError(f"crf must be an integer in [0, 51], got {crf!r}")
        self.crf = int(crf)
        if keyframe_interval is None:
            keyframe_interval = max(1, round(float(self._rate)))
        if isinstance(keyframe_interval, bool) or not isinstance(keyframe_interval, (int, np.integer)):
            raise ValueError(f"keyframe_interval must be a positive integer, got {keyframe_interval!r}")
        if keyframe_interval < 1:
            raise ValueError(f"keyframe_interval must be a positive integer, got {keyframe_interval!r}")
        self.keyframe_interval = int(keyframe_interval)
        if (height is None) != (width is None):
            raise ValueError(f"give both height and width or neither, got height={height!r}, width={width!r}")
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"directory for the video does not exist: {str(self.path.parent)!r}")

        self._frame_size: tuple[int, int] | None = None  # (H, W) of the frames the caller passes
        self._container: Any = None
        self._stream: Any = None
        self._frames_written = 0
        self._closed = False
        if height is not None and width is not None:
            for name, value in (("height", height), ("width", width)):
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                    raise ValueError(f"{name} must be a positive integer, got {value!r}")
            self._open(int(height), int(width))

    # -- properties -------------------------------------------------------------------------------------

    @property
    def frames_written(self) -> int:
        """Number of frames handed to the encoder so far."""
        return self._frames_written

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._closed

    @property
    def frame_size(self) -> tuple[int, int] | None:
        """``(height, width)`` that every written frame must have, or None before the first frame."""
        return self._frame_size

    @property
    def height(self) -> int | None:
        """Height of the encoded video: the frame height rounded up to even (None before it is known)."""
        return None if self._frame_size is None else _even(self._frame_size[0])

    @property
    def width(self) -> int | None:
        """Width of the encoded video: the frame width rounded up to even (None before it is known)."""
        return None if self._frame_size is None else _even(self._frame_size[1])

    # -- writing ----------------------------------------------------------------------------------------

    def _open(self, height: int, width: int) -> None:
        """Open the container and the x264 stream for frames of ``height x width`` (before padding)."""
        container = av.open(
            str(self.path),
            mode="w",
            format="mp4",
            options={"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"},
        )
        try:
            stream = container.add_stream(
                "libx264",
                rate=self._rate,
                options={"crf": str(self.crf), "preset": _PRESET, "tune": "zerolatency"},
            )
            stream.width = _even(width)
            stream.height = _even(height)
            stream.pix_fmt = "yuv420p"
            ctx = stream.codec_context
            ctx.gop_size = self.keyframe_interval
            ctx.colorspace = _AVCOL_SPC_SMPTE170M
            ctx.color_range = _AVCOL_RANGE_MPEG
            # Write the header now, so the file exists (and is a valid, empty MP4) from the start.
            container.start_encoding()
        except Exception:
            container.close()
            raise
        self._container, self._stream = container, stream
        self._frame_size = (height, width)

    def write(self, frames: np.ndarray) -> None:
        """Encode one frame ``[H, W, 3]`` or several ``[N, H, W, 3]`` (uint8 RGB) and append them.

        Raises ValueError for a wrong dtype or shape, a size that differs from the first frame's (or the
        size given to the constructor), or writing after :meth:`close`.
        """
        if self._closed:
            raise ValueError(f"cannot write to {str(self.path)!r}: expected an open Mp4Writer, got a closed one")
        batch = _as_frame_batch(frames)
        size = (int(batch.shape[1]), int(batch.shape[2]))
        if self._frame_size is None:
            if len(batch) == 0:
                return
            self._open(*size)
        elif size != self._frame_size:
            raise ValueError(
                f"expected frames of height x width {self._frame_size[0]} x {self._frame_size[1]} "
                f"(fixed by the first frame or the constructor), got {size[0]} x {size[1]}"
            )
        pad_h, pad_w = _even(size[0]) - size[0], _even(size[1]) - size[1]
        if pad_h or pad_w:
            batch = np.pad(batch, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        for image in batch:
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = self._frames_written
            self._container.mux(self._stream.encode(frame))
            self._frames_written += 1

    def close(self) -> None:
        """Flush the encoder, write the last fragment and the index, and close the file. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._container is None:
            return
        try:
            self._container.mux(self._stream.encode(None))
        finally:
            self._container.close()

    def __enter__(self) -> "Mp4Writer":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Close even on error: what was written so far is still a valid video.
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"Mp4Writer({str(self.path)!r}, fps={self.fps}, frames_written={self._frames_written}, {state})"


# -- reading ----------------------------------------------------------------------------------------------


def _iter_rgb_frames(path: str | os.PathLike[str], strict: bool) -> Iterator[np.ndarray]:
    """Decode the first video stream of ``path`` to ``[H, W, 3]`` uint8 RGB frames, in order.

    A file whose writer was killed may end in a partly written fragment; decoding that tail fails with
    InvalidDataError. Unless ``strict``, decoding stops there with a warning and the frames before it are
    kept, because a truncated tail is the expected state of a crash-recovered file.
    """
    with av.open(str(path), mode="r") as container:
        if not container.streams.video:
            raise ValueError(f"expected a file with a video stream, got none in {str(path)!r}")
        stream = container.streams.video[0]
        count = 0
        try:
            for packet in container.demux(stream):
                # The final packet from demux() is an empty flush packet; decoding it drains the decoder.
                for frame in packet.decode():
                    count += 1
                    yield frame.to_ndarray(format="rgb24")
        except (av.error.InvalidDataError, EOFError) as error:
            if strict:
                raise
            warnings.warn(
                f"{str(path)!r}: decoding stopped after {count} frames at damaged or truncated data "
                f"({error}); the file was probably cut while being written",
                RuntimeWarning,
                stacklevel=3,
            )


def read_video(path: str | os.PathLike[str], *, strict: bool = False) -> np.ndarray:
    """Decode a whole video to a ``[N, H, W, 3]`` uint8 RGB array (PyAV only, no ffmpeg/ffprobe binary).

    Loads every frame into memory, so it is meant for the short clips lv2 produces. With ``strict=False``
    (default) a truncated tail (a crash-recovered file) ends decoding with a RuntimeWarning instead of an
    error; pass ``strict=True`` to raise.
    """
    frames = list(_iter_rgb_frames(path, strict))
    if frames:
        return np.stack(frames)
    with av.open(str(path), mode="r") as container:
        ctx = container.streams.video[0].codec_context
        return np.zeros((0, ctx.height, ctx.width, 3), dtype=np.uint8)


def probe_video(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Describe the first video stream: ``frames``, ``fps``, ``width``, ``height``, ``codec``.

    ``frames`` counts the stored packets (no decoding; cheap), because a fragmented MP4 has no frame count
    in its header. ``fps`` is the average frame rate as a float, or None when the file holds no frame yet
    (the header alone does not carry it). ``codec`` is FFmpeg's codec name, e.g. ``"h264"``.
    """
    with av.open(str(path), mode="r") as container:
        if not container.streams.video:
            raise ValueError(f"expected a file with a video stream, got none in {str(path)!r}")
        stream = container.streams.video[0]
        frames = 0
        try:
            for packet in container.demux(stream):
                if packet.size > 0:
                    frames += 1
        except (av.error.InvalidDataError, EOFError):
            pass  # a truncated tail: count what is readable, as read_video does
        rate = stream.average_rate
        return {
            "frames": frames,
            "fps": float(rate) if rate and frames else None,
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
            "codec": stream.codec_context.name,
        }
