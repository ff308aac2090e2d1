"""Training clips from a folder of the user's own videos, in the clip format of :mod:`model.clips`.

:func:`build_from_videos` walks a folder for videos (``.mp4 .mov .mkv .avi .webm``, recursively, in sorted
order) and writes ``index.json`` plus one ``clips/SSSSSS_CC.npz`` per clip, readable by
``model.clips`` exactly like the procedural data. For every video:

1. **Decode** with PyAV, streaming (only the resampled, resized frames of the current shot are kept in
   memory). A display-matrix rotation (phone videos) is applied. A file that cannot be opened, has no video
   stream, decodes to nothing or is too short is *skipped with a reason* (``BuildReport.skipped`` and a
   ``RuntimeWarning``); the build goes on. A file whose decoding fails part-way keeps the frames before the
   damage (``BuildReport.notes``).
2. **Cuts**: PySceneDetect's ``ContentDetector`` runs over every decoded frame (at the native frame rate, on
   a copy at most ~256 px wide, as scenedetect's own auto-downscale does) and splits the video into shots;
   no clip and no history ever spans a cut. Fades and dissolves are not cuts to this detector.
3. **Resampling** to ``fps`` (16) from the PyAV timestamps, exactly (rational arithmetic): ticks every
   ``1/fps`` s from the first frame, each takes the decoded frame whose timestamp is nearest (ties: the
   earlier). A tick belongs to the shot of the frame it took. A source slower than ``fps`` repeats frames.
   Each frame is centre-cropped to the target aspect ratio and resized (``cv2.INTER_AREA``) to
   ``height x width``.
4. **Sequences** as the procedural builder cuts them: ``history_frames`` frames of run-up, then clips of
   ``frames`` frames sharing one frame. A shot too short for the full run-up uses the run-up it has (the
   clip's ``history`` then holds fewer than ``history_frames`` frames, possibly none); a shot shorter than
   one clip is skipped with a reason (``BuildReport.skipped_shots``). A long shot is cut into several
   sequences of at most ``clips_per_sequence`` clips; a later sequence's run-up is the frames of the same
   shot before it (no frame is lost between the sequences of a shot).
5. **Depth** from the pluggable ``depth_estimator(frames uint8 [N, H, W, 3]) -> float32 [N, H, W]``, called
   once per sequence (run-up included). It must return *depth* (larger is farther), positive, ideally in
   metres: the stored ``depth`` field is this estimate (not measured metric depth), and
   :meth:`DepthRange.fit`'s minimum spread of 0.5 is in those units. Non-finite values are set to the far
   end of the range. The **dense** control normalises it with ONE global ``(p5, p95)`` per sequence
   (:meth:`DepthRange.fit` over every frame of the sequence, run-up included), near bright, one grey channel.
6. **Sparse** control from OpenCV point tracks, a stand-in for SpatialTracker: on each clip's first frame the
   grid of :func:`lv2_env.signals.control.track_grid` (or Shi-Tomasi corners topped up with grid points to the same
   count, ``track_init="corners"``), carried frame to frame by pyramidal Lucas-Kanade with a forward-backward
   check: a point whose round trip misses by more than ``fb_threshold`` (1 px), whose tracking fails, or
   that leaves the image becomes invisible for the rest of the clip. Colours are fixed on the first frame
   (:func:`lv2_env.signals.control.track_colours`: R = x/W, G = y/H, B = normalised inverse depth with the sequence's
   range) and the video is drawn by :func:`lv2_env.signals.control.draw_tracks` (squares of
   :func:`~lv2_env.signals.control.default_square_size`, painted far to near by the estimated depth at each point's
   current position, no trails), exactly as the procedural sparse video.
7. **Unknown camera**: user videos carry no camera poses or intrinsics. ``poses`` is written as NaN
   ``float32 [F, 4, 4]`` and ``intrinsics`` as NaN ``float32 [3, 3]``, and the index header says
   ``"poses_known": false``. Anything that needs the camera must check the header (or ``np.isnan``).
8. **Captions** come from a sidecar text file next to the video (``name.txt`` for ``name.mp4``, first
   line, stripped), else the empty caption ``""``.

The index header is :mod:`model.clips`'s with ``split = "videos"``, ``"poses_known": false`` and
``"clips_per_sequence"`` (the most clips a sequence holds); every clip entry has ``file``, ``sequence``,
``clip``, ``caption``, plus ``video`` (the source path relative to the videos folder), ``shot`` (the shot's
number in the video), ``start_time`` (seconds from the video's first frame to the clip's first frame) and
``history`` (how many history frames the clip has). Clip files are written atomically (``.tmp`` then
rename). A rebuild into the same directory rewrites every clip; a directory holding data of another shape is
refused.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import av
import cv2
import numpy as np
from scenedetect import ContentDetector, FrameTimecode
from tqdm import tqdm

from lv2_env.signals.control import ControlSignals, DepthRange, num_track_points, track_grid
from model.clips import CLIPS_FOLDER, check_index_header, clip_file, clip_record, save_clip_atomic, write_index

__all__ = [
    "VIDEO_EXTENSIONS",
    "BuildReport",
    "DecodeStatus",
    "Shot",
    "build_from_videos",
    "find_videos",
    "read_caption",
    "read_shots",
    "plan_sequences",
    "lk_tracks",
    "initial_points",
    "clip_controls",
    "centre_crop_resize",
]

log = logging.getLogger(__name__)

SPLIT = "videos"
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".webm")
DETECTION_WIDTH = 256  # the detector sees frames at most about this wide (scenedetect's auto-downscale target)

DepthEstimator = Callable[[np.ndarray], np.ndarray]


# -- report -------------------------------------------------------------------------------------------------


@dataclass
class BuildReport:
    """What :func:`build_from_videos` did.

    Attributes:
        out_dir: the data directory written.
        videos: number of video files found.
        videos_used: videos that gave at least one clip.
        shots: shots detected in the decoded videos.
        sequences, clips: how many were written.
        skipped: ``(video path, reason)`` for every video that gave no clip (unreadable, corrupt, too short).
        skipped_shots: ``(video path, reason)`` for shots (or sequences) dropped from videos that were read.
        notes: ``(video path, message)``: videos whose decoding stopped early (the frames before were kept).
    """

    out_dir: Path
    videos: int = 0
    videos_used: int = 0
    shots: int = 0
    sequences: int = 0
    clips: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    skipped_shots: list[tuple[str, str]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)


# -- finding videos and captions -------------------------------------------------------------------------


def find_videos(videos_dir: str | Path) -> list[Path]:
    """Video files (by extension, case-insensitive) anywhere under ``videos_dir``, sorted."""
    root = Path(videos_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"videos folder does not exist: {str(root)!r}")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)


def read_caption(video: str | Path) -> str:
    """First line of the sidecar ``name.txt`` next to ``name.<ext>``, stripped; ``""`` without one."""
    sidecar = Path(video).with_suffix(".txt")
    if not sidecar.is_file():
        return ""
    lines = sidecar.read_text(encoding="utf-8", errors="replace").splitlines()
    return lines[0].strip() if lines else ""


# -- decoding, cuts and resampling -----------------------------------------------------------------------


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


# -- sequences ---------------------------------------------------------------------------------------------


def plan_sequences(
    n: int, frames: int, history_frames: int, clips_per_sequence: int | None = None
) -> tuple[int, list[list[int]]]:
    """How a shot of ``n`` (resampled) frames is cut: ``(run_up, [[clip start, ...] per sequence])``.

    The first clip starts after ``run_up = min(history_frames, n - frames)`` frames, the next ones every
    ``frames - 1`` frames (consecutive clips share a frame), as many as fit; they are grouped into sequences
    of at most ``clips_per_sequence`` (all in one when None). ``(0, [])`` when ``n < frames``.
    """
    if n < frames:
        return 0, []
    run_up = min(history_frames, n - frames)
    count = 1 + (n - run_up - frames) // (frames - 1)
    starts = [run_up + k * (frames - 1) for k in range(count)]
    size = clips_per_sequence or count
    return run_up, [starts[i : i + size] for i in range(0, count, size)]


# -- sparse tracks -----------------------------------------------------------------------------------------


def _inside(points: np.ndarray, height: int, width: int) -> np.ndarray:
    return (
        np.isfinite(points).all(axis=-1)
        & (points[:, 0] >= 0) & (points[:, 0] < width)
        & (points[:, 1] >= 0) & (points[:, 1] < height)
    )


def initial_points(first_frame: np.ndarray, mode: str = "grid") -> np.ndarray:
    """``[N, 2]`` (x, y) pixel coordinates (pixel ``i`` spans ``[i, i+1)``) of the points to track.

    ``"grid"``: :func:`lv2_env.signals.control.track_grid`, as the procedural tracks. ``"corners"``: Shi-Tomasi corners
    (``cv2.goodFeaturesToTrack``) topped up to the same count with the grid points farthest from any corner.
    """
    h, w = first_frame.shape[:2]
    grid = track_grid(h, w)
    if mode == "grid":
        return grid
    if mode != "corners":
        raise ValueError(f"track_init must be 'grid' or 'corners', got {mode!r}")
    n = len(grid)
    spacing = max(1.0, np.sqrt(h * w / num_track_points(h, w)) / 2)
    gray = cv2.cvtColor(first_frame, cv2.COLOR_RGB2GRAY)
    found = cv2.goodFeaturesToTrack(gray, maxCorners=n, qualityLevel=0.01, minDistance=spacing)
    corners = np.zeros((0, 2)) if found is None else found.reshape(-1, 2).astype(np.float64) + 0.5
    if len(corners) >= n:
        return corners[:n]
    if len(corners):
        distance = np.sqrt(((grid[:, None, :] - corners[None, :, :]) ** 2).sum(-1)).min(axis=1)
        extra = grid[np.argsort(-distance, kind="stable")[: n - len(corners)]]
    else:
        extra = grid
    return np.concatenate([corners, extra])


def lk_tracks(
    frames: np.ndarray,
    points: np.ndarray | None = None,
    fb_threshold: float = 1.0,
    win_size: int = 15,
    max_level: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """Carry ``points [N, 2]`` of frame 0 through ``frames uint8 [F, H, W, 3]`` with pyramidal Lucas-Kanade.

    Frame to frame, forward then backward; a point is lost for the rest of the clip when either pass fails,
    the round trip misses by more than ``fb_threshold`` pixels, or it leaves the image. Coordinates are those of
    :func:`lv2_env.signals.control.track_grid` (pixel centres at ``i + 0.5``). Returns ``(tracks float32 [F, N, 2],
    visibility bool [F, N])``; a lost point keeps its last position.
    """
    frames = np.asarray(frames)
    f, h, w = frames.shape[:3]
    points = track_grid(h, w) if points is None else np.asarray(points, dtype=np.float64)
    params = dict(
        winSize=(win_size, win_size),
        maxLevel=max_level,
        criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 0.01),
    )
    grays = [cv2.cvtColor(np.ascontiguousarray(x), cv2.COLOR_RGB2GRAY) for x in frames]
    current = points.astype(np.float32).copy()
    alive = _inside(current, h, w)
    tracks = np.empty((f, len(points), 2), dtype=np.float32)
    visibility = np.empty((f, len(points)), dtype=bool)
    tracks[0], visibility[0] = current, alive
    for i in range(1, f):
        idx = np.flatnonzero(alive)
        if idx.size:
            p0 = (current[idx] - 0.5).reshape(-1, 1, 2).astype(np.float32)  # OpenCV: pixel centres at integers
            p1, st1, _ = cv2.calcOpticalFlowPyrLK(grays[i - 1], grays[i], p0, None, **params)
            back, st2, _ = cv2.calcOpticalFlowPyrLK(grays[i], grays[i - 1], p1, None, **params)
            p1 = p1.reshape(-1, 2) + 0.5
            error = np.linalg.norm(back.reshape(-1, 2) - p0.reshape(-1, 2), axis=-1)
            ok = (st1.ravel() == 1) & (st2.ravel() == 1) & (error <= fb_threshold) & _inside(p1, h, w)
            current[idx[ok]] = p1[ok]
            alive[idx[~ok]] = False
        tracks[i], visibility[i] = current, alive
    return tracks, visibility


def _depth_at(depth: np.ndarray, points: np.ndarray) -> np.ndarray:
    h, w = depth.shape
    cols = np.clip(np.floor(points[:, 0]).astype(np.int64), 0, w - 1)
    rows = np.clip(np.floor(points[:, 1]).astype(np.int64), 0, h - 1)
    return depth[rows, cols]


def clip_controls(
    rgb: np.ndarray,
    depth: np.ndarray,
    depth_range: DepthRange,
    track_init: str = "grid",
    fb_threshold: float = 1.0,
    square: int | None = None,
) -> ControlSignals:
    """Both control signals of one clip of a user video: dense from the estimated ``depth [F, H, W]`` with the
    sequence's range, sparse from Lucas-Kanade tracks of ``rgb [F, H, W, 3]`` (see the module docstring)."""
    depth = np.asarray(depth, dtype=np.float32)
    f, h, w = depth.shape
    if rgb.shape != (f, h, w, 3):
        raise ValueError(f"expected rgb [F, H, W, 3] matching depth {depth.shape}, got {rgb.shape}")
    points = initial_points(rgb[0], track_init)
    tracks, visibility = lk_tracks(rgb, points, fb_threshold)
    depths = np.stack([_depth_at(depth[i], tracks[i]) for i in range(f)])
    return ControlSignals.from_tracks(depth, tracks, depths, visibility, points, depth_range, square)


# -- building ----------------------------------------------------------------------------------------------


def _estimate_depth(depth_estimator: DepthEstimator, frames: np.ndarray) -> np.ndarray:
    depth = np.asarray(depth_estimator(frames), dtype=np.float32)
    if depth.shape != frames.shape[:3]:
        raise ValueError(f"depth_estimator must return [N, H, W] = {frames.shape[:3]}, got {depth.shape}")
    return depth


def build_from_videos(
    videos_dir: str | Path,
    out_dir: str | Path,
    depth_estimator: DepthEstimator,
    height: int = 128,
    width: int = 128,
    frames: int = 17,
    fps: int = 16,
    history_frames: int = 16,
    progress: bool = True,
    clips_per_sequence: int | None = 4,
    track_init: str = "grid",
    cut_threshold: float = 27.0,
) -> BuildReport:
    """Cut every video under ``videos_dir`` into clips in ``out_dir`` (format: :mod:`model.clips` and this module's
    docstring). ``depth_estimator`` maps ``uint8 [N, H, W, 3]`` frames to ``float32 [N, H, W]`` depth.

    Unreadable, corrupt or too-short videos are skipped with a reason (``BuildReport.skipped``, plus a
    RuntimeWarning); the build never stops for one video. Raises ValueError for bad arguments, a depth
    estimator returning the wrong shape, or an ``out_dir`` holding data of another shape.
    """
    for name, value in (("height", height), ("width", width), ("fps", fps)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if int(frames) != frames or frames < 2:
        raise ValueError(f"frames must be an integer >= 2, got {frames!r}")
    if int(history_frames) != history_frames or history_frames < 0:
        raise ValueError(f"history_frames must be a non-negative integer, got {history_frames!r}")
    if clips_per_sequence is not None and clips_per_sequence < 1:
        raise ValueError(f"clips_per_sequence must be positive or None, got {clips_per_sequence!r}")
    if track_init not in ("grid", "corners"):
        raise ValueError(f"track_init must be 'grid' or 'corners', got {track_init!r}")
    videos_dir, out_dir = Path(videos_dir), Path(out_dir)
    videos = find_videos(videos_dir)
    # clips_per_sequence joins the header once the build knows it: the most clips one sequence holds.
    header = {"split": SPLIT, "height": height, "width": width, "frames": frames, "fps": fps,
              "history_frames": history_frames, "poses_known": False}
    check_index_header(out_dir, header)
    (out_dir / CLIPS_FOLDER).mkdir(parents=True, exist_ok=True)

    report = BuildReport(out_dir=out_dir, videos=len(videos))
    entries: list[dict] = []
    most_clips = 0
    nan_poses = np.full((frames, 4, 4), np.nan, dtype=np.float32)
    nan_intrinsics = np.full((3, 3), np.nan, dtype=np.float32)

    def skip(video: Path, reason: str) -> None:
        report.skipped.append((str(video), reason))
        warnings.warn(f"skipping video {str(video)!r}: {reason}", RuntimeWarning, stacklevel=3)

    bar = tqdm(videos, desc="videos", unit="video", disable=not progress)
    for video in bar:
        relative = video.relative_to(videos_dir).as_posix()
        caption = read_caption(video)
        status = DecodeStatus()
        clips_before, samples_seen, shot_lengths = len(entries), 0, []
        shots = _guarded(read_shots(video, height, width, fps, threshold=cut_threshold, status=status), status)
        for shot in shots:
            report.shots += 1
            n = len(shot.frames)
            samples_seen += n
            shot_lengths.append(n)
            _, groups = plan_sequences(n, frames, history_frames, clips_per_sequence)
            where = f"shot {shot.index} ({shot.times[0]:.2f}-{shot.times[-1]:.2f} s)"
            if not groups:
                report.skipped_shots.append(
                    (str(video), f"{where}: {n} frames at {fps} fps, fewer than the {frames} of one clip"))
                log.info("%s: %s has %d frames at %d fps, fewer than one clip; skipped", video, where, n, fps)
                continue
            for starts in groups:
                first_frame = max(0, starts[0] - history_frames)
                end = starts[-1] + frames
                depth = _estimate_depth(depth_estimator, shot.frames[first_frame:end])
                try:
                    depth_range = DepthRange.fit(depth)
                except ValueError as error:
                    report.skipped_shots.append((str(video), f"{where}, sequence from frame {first_frame}: {error}"))
                    continue
                depth = np.where(np.isfinite(depth), depth, np.float32(depth_range.far))
                sequence = report.sequences
                report.sequences += 1
                most_clips = max(most_clips, len(starts))
                for k, start in enumerate(starts):
                    window = slice(start - first_frame, start - first_frame + frames)
                    rgb = shot.frames[start : start + frames]
                    controls = clip_controls(rgb, depth[window], depth_range, track_init=track_init)
                    history = shot.frames[max(0, start - history_frames) : start]
                    name = clip_file(sequence, k)
                    save_clip_atomic(out_dir / name, clip_record(
                        rgb=rgb,
                        history=history,
                        depth=depth[window],
                        controls=controls.videos(),
                        poses=nan_poses,
                        intrinsics=nan_intrinsics,
                        depth_range=(depth_range.near, depth_range.far),
                        caption=caption,
                    ))
                    entries.append({"file": name, "sequence": sequence, "clip": k, "caption": caption,
                                    "video": relative, "shot": shot.index,
                                    "start_time": round(float(shot.times[start]), 6), "history": len(history)})
                    report.clips += 1
            bar.set_postfix(clips=report.clips)
        if status.frames_decoded == 0:
            skip(video, f"cannot read: {status.error}" if status.error else "no frames decoded")
            continue
        if status.error:
            message = f"decoding stopped after {status.frames_decoded} frames: {status.error}; kept the frames before"
            report.notes.append((str(video), message))
            warnings.warn(f"{str(video)!r}: {message}", RuntimeWarning, stacklevel=2)
        if len(entries) > clips_before:
            report.videos_used += 1
        elif samples_seen < frames:
            skip(video, f"too short: {samples_seen} frames at {fps} fps ({samples_seen / fps:.2f} s), "
                        f"one clip needs {frames}")
        else:
            skip(video, f"no shot long enough: shots of {shot_lengths} frames at {fps} fps, one clip needs {frames}")
    bar.close()

    write_index(out_dir, {**header, "clips_per_sequence": most_clips}, entries)
    if not entries:
        warnings.warn(f"no clips written to {str(out_dir)!r} from {len(videos)} videos", RuntimeWarning, stacklevel=2)
    return report


def _guarded(shots: Iterator[Shot], status: DecodeStatus) -> Iterator[Shot]:
    """``shots``, with any error raised while opening or decoding the video recorded in ``status.error``
    (ending the video) instead of raised: one bad file never stops the build. Errors of the code consuming
    the shots (e.g. the depth estimator) are not caught."""
    while True:
        try:
            shot = next(shots)
        except StopIteration:
            return
        except Exception as error:  # noqa: BLE001 - see the docstring
            status.error = f"{type(error).__name__}: {error}"
            return
        yield shot
