"""Training clips from a folder of the user's own videos, in the clip format of :mod:`model.clips`.

:func:`build_from_videos` walks a folder for videos (``.mp4 .mov .mkv .avi .webm``, recursively, in sorted
order) and writes ``index.json`` plus one ``clips/SSSSSS_CC.npz`` per clip, readable by
``model.clips`` exactly like the procedural data. For every video:

1. **Decode** into shots with :func:`lv2_env.data.video_shots.read_shots`, streaming (only the resampled, resized
   frames of the current shot are kept in memory; a display-matrix rotation is applied). A file that cannot be
   opened, has no video stream, decodes to nothing or is too short is *skipped with a reason*
   (``BuildReport.skipped`` and a ``RuntimeWarning``); the build goes on. A file whose decoding fails part-way
   keeps the frames before the damage (``BuildReport.notes``).
2. **Cuts**: PySceneDetect's ``ContentDetector`` splits the video into shots (:mod:`lv2_env.data.video_shots`);
   no clip and no history ever spans a cut.
3. **Resampling** to ``fps`` (16) from the PyAV timestamps, exactly, each frame centre-cropped to the target
   aspect ratio and resized to ``height x width`` (:mod:`lv2_env.data.video_shots`).
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
6. **Sparse** control from OpenCV Lucas-Kanade point tracks, a stand-in for SpatialTracker
   (:mod:`lv2_env.data.point_tracks`; ``track_init`` picks grid points or corners), drawn exactly as the
   procedural sparse video.
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
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from tqdm import tqdm

from lv2_env.data.point_tracks import clip_controls
from lv2_env.data.video_shots import DecodeStatus, Shot, read_shots
from lv2_env.signals.control import DepthRange
from model.clips import CLIPS_FOLDER, check_index_header, clip_file, clip_record, save_clip_atomic, write_index

__all__ = [
    "VIDEO_EXTENSIONS",
    "BuildReport",
    "build_from_videos",
    "find_videos",
    "read_caption",
    "plan_sequences",
]

log = logging.getLogger(__name__)

SPLIT = "videos"
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".webm")

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
