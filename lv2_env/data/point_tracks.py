"""Sparse point tracks of a user video's clip: OpenCV pyramidal Lucas-Kanade, a stand-in for SpatialTracker.

On a clip's first frame, :func:`initial_points` takes the grid of :func:`lv2_env.signals.control.track_grid` (or
Shi-Tomasi corners topped up with grid points to the same count); :func:`lk_tracks` carries them frame to frame with
a forward-backward check: a point whose round trip misses by more than ``fb_threshold`` (1 px), whose tracking
fails, or that leaves the image becomes invisible for the rest of the clip. :func:`clip_controls` turns the tracks
and the estimated depth into both control signals of the clip: colours fixed on the first frame
(:func:`lv2_env.signals.control.track_colours`: R = x/W, G = y/H, B = normalised inverse depth with the sequence's
range), drawn by :func:`lv2_env.signals.control.draw_tracks` (squares painted far to near by the estimated depth at
each point's current position, no trails), exactly as the procedural sparse video.
"""

from __future__ import annotations

import cv2
import numpy as np

from lv2_env.signals.control import ControlSignals, DepthRange, num_track_points, track_grid

__all__ = ["clip_controls", "initial_points", "lk_tracks"]


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
