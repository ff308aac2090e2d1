"""Decoding a video into shots: PyAV decoding, PySceneDetect cut detection and resampling to a fixed frame rate.

:func:`read_shots` streams a video file and yields its :class:`Shot` s, each resampled and resized, holding only
the current shot's small frames in memory:

* **Decoding** with PyAV; a display-matrix rotation (phone videos) is applied. Opening errors raise; a decoding
  error part-way ends the video, keeping the frames before it (recorded in :class:`DecodeStatus`).
* **Cuts**: PySceneDetect's ``ContentDetector`` runs over every decoded frame (at the native frame rate, on a copy
  at most ~:data:`DETECTION_WIDTH` px wide, as scenedetect's own auto-downscale does); no shot spans a cut. Fades
  and dissolves are not cuts to this detector.
* **Resampling** to ``fps`` from the PyAV timestamps, exactly (rational arithmetic): ticks every ``1/fps`` s from
  the first frame, each takes the decoded frame whose timestamp is nearest (ties: the earlier). A tick belongs to
  the shot of the frame it took. A source slower than ``fps`` repeats frames. Each frame is centre-cropped to the
  target aspect ratio and resized (``cv2.INTER_AREA``) by :func:`centre_crop_resize`.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import cv2
import numpy as np
from scenedetect import ContentDetector, FrameTimecode

__all__ = ["DecodeStatus", "Shot", "centre_crop_resize", "read_shots"]

DETECTION_WIDTH = 256  # the detector sees frames at most about this wide (scenedetect's auto-downscale target)


def centre_crop_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre-crop ``image [h, w, 3]`` to the aspect ratio of ``height x width``, then resize (INTER_AREA)."""
    h, w = image.shape[:2]
    if h * width > w * height:  # too tall: crop rows
        ch, cw = max(1, round(w * height / width)), w
    else:  # too wide: crop columns
        ch, cw = h, max(1, round(h * width / height))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    crop = image[y0 : y0 + ch, x0 : x0 + cw]
    if (ch, cw) == (height, width):
        return np.ascontiguousarray(crop)
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)


@dataclass
class Shot:
    """One shot of a video, resampled: ``frames uint8 [n, H, W, 3]``, ``times`` float64 ``[n]`` (seconds of
    each tick from the video's first frame), ``source_frames`` int ``[n]`` (decoded-frame index each tick took)."""

    index: int
    frames: np.ndarray
    times: np.ndarray
    source_frames: np.ndarray


@dataclass
class DecodeStatus:
    """Filled in by :func:`read_shots` while it decodes: frames decoded, the source frame rate, and the error
    that ended decoding early (None when the file decoded to its end)."""

    frames_decoded: int = 0
    source_fps: float | None = None
    error: str | None = None  # decoding stopped early with this error


class _Sample:
    __slots__ = ("tick", "source", "image")

    def __init__(self, tick: int, source: int, image: np.ndarray) -> None:
        self.tick, self.source, self.image = tick, source, image


def _decoded(container, stream, status: DecodeStatus) -> Iterator:
    """The stream's frames; a decoding error ends the iteration and is recorded in ``status``."""
    iterator = container.decode(stream)
    while True:
        try:
            frame = next(iterator)
        except StopIteration:
            return
        except (av.FFmpegError, EOFError, ValueError, OSError) as error:
            status.error = f"{type(error).__name__}: {error}"
            return
        yield frame


def read_shots(
    path: str | Path,
    height: int,
    width: int,
    fps: int = 16,
    threshold: float = 27.0,
    min_scene_len: int = 15,
    status: DecodeStatus | None = None,
) -> Iterator[Shot]:
    """Decode ``path`` and yield its shots, resampled to ``fps`` and resized to ``height x width``.

    Streams: a shot is yielded as soon as the cut after it is known, so only one shot's small frames are held.
    ``threshold`` and ``min_scene_len`` (frames at the native rate) are ContentDetector's. Opening errors
    raise; a decoding error part-way ends the video (recorded in ``status.error`` when given).
    """
    status = status if status is not None else DecodeStatus()
    step = Fraction(1, fps)
    with av.open(str(path), mode="r") as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        rate = Fraction(rate) if rate else None
        status.source_fps = float(rate) if rate else None
        time_base = stream.time_base
        detector = ContentDetector(threshold=threshold, min_scene_len=min_scene_len)
        detect_rate = rate if rate else Fraction(30)
        detect_size: tuple[int, int] | None = None

        samples: list[_Sample] = []
        shot_start = 0  # decoded-frame index where the current shot starts
        shot_index = 0
        pending_cuts: list[int] = []
        t0: Fraction | None = None
        tick = 0
        prev = None  # (index, time, frame, image or None)
        last_time: Fraction | None = None
        last_duration: Fraction | None = None
        index = -1

        def image_of(entry):
            if entry[3] is None:
                frame = entry[2]
                rgb = frame.to_ndarray(format="rgb24")
                rotation = frame.rotation or 0  # counter-clockwise degrees from the display matrix
                if rotation % 90 == 0 and (rotation // 90) % 4:
                    rgb = np.rot90(rgb, k=(rotation // 90) % 4)  # np.rot90 turns counter-clockwise
                entry[3] = centre_crop_resize(rgb, height, width)
            return entry[3]

        def flush(before: int) -> Iterator[Shot]:
            nonlocal samples, shot_start, shot_index
            mine = [s for s in samples if s.source < before]
            samples = [s for s in samples if s.source >= before]
            if mine:
                yield Shot(
                    index=shot_index,
                    frames=np.stack([s.image for s in mine]),
                    times=np.array([float(s.tick * step) for s in mine]),
                    source_frames=np.array([s.source for s in mine]),
                )
            shot_index += 1
            shot_start = before

        for frame in _decoded(container, stream, status):
            if frame.pts is not None and time_base is not None:
                time = Fraction(frame.pts) * time_base
            elif rate:
                time = Fraction(status.frames_decoded) / rate
            else:
                time = Fraction(status.frames_decoded, 30)
            status.frames_decoded += 1
            if last_time is not None and time <= last_time:
                continue  # out of order or duplicate timestamp: not a new instant
            index += 1
            if frame.duration and time_base is not None:
                last_duration = Fraction(frame.duration) * time_base
            if t0 is None:
                t0 = time
            current = [index, time, frame, None]
            # Ticks in (previous time, this time] take the nearer of the two frames (ties: the earlier).
            while t0 + tick * step <= time:
                when = t0 + tick * step
                take = prev if prev is not None and when - prev[1] <= time - when else current
                samples.append(_Sample(tick, take[0], image_of(take)))
                tick += 1
            # Cut detection on a small BGR copy, at the native frame rate.
            if detect_size is None:
                scale = max(1, frame.width // DETECTION_WIDTH)
                detect_size = (max(1, frame.width // scale), max(1, frame.height // scale))
            small = frame.reformat(width=detect_size[0], height=detect_size[1], format="bgr24").to_ndarray()
            for cut in detector.process_frame(FrameTimecode(index, detect_rate), small):
                pending_cuts.append(int(cut.frame_num))
            prev, last_time = current, time
            # A cut at frame c <= index closes the shot before it: later ticks can only take frames >= index.
            while pending_cuts:
                cut = pending_cuts.pop(0)
                if cut > shot_start:
                    yield from flush(cut)

        if prev is None:
            return
        # Ticks after the last frame that are still nearer to it than to a next frame would be.
        duration = last_duration or (1 / rate if rate else None)
        if duration is not None:
            while t0 + tick * step < prev[1] + duration / 2:
                samples.append(_Sample(tick, prev[0], image_of(prev)))
                tick += 1
        pending_cuts.extend(int(c.frame_num) for c in detector.post_process(FrameTimecode(index, detect_rate)))
        for cut in sorted(pending_cuts):
            if cut > shot_start:
                yield from flush(cut)
        yield from flush(index + 1)
