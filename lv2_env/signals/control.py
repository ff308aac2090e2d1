"""LongVie 2's two control signals for a clip: dense depth and sparse point tracks.

Both follow LongVie 2 (docs/longvie2.md):

* **Dense**: per-frame metric depth normalised with one GLOBAL range ``(p5, p95)`` for a whole rollout,
  ``d' = clip((p95 - d) / (p95 - p5), 0, 1)`` (near is bright), written as a 3-channel grey uint8 video.
  Normalising per clip would make the same wall change brightness from clip to clip, which LongVie 2's ablation
  shows costs consistency. Offline (a recorded sequence) the range is fitted over every frame of the sequence;
  in an interactive rollout the future is unknown, so the environments fit it once on the first frame at
  ``reset`` and keep it for the whole episode (see :meth:`DepthRange.fit`). Sky pixels of a rendered world are
  left out of the percentiles (they would put p95 at the sky and flatten the ground); they normalise to 0.
* **Sparse**: a grid of points on the clip's first frame (2,500 at 832x480, scaled by image area, at least 100),
  lifted to 3D with that frame's depth and pose, and carried through the clip by projecting them with each
  frame's pose. A point is hidden when it leaves the image, goes behind the camera, or fails the depth test (a
  surface is clearly in front of it). Each point is drawn on black as a small filled square whose colour is
  fixed on the first frame: R = x / W, G = y / H, B = normalised inverse depth ``(1/z - 1/p95) / (1/p5 - 1/p95)``
  with the same global range; squares are painted far to near (near ones on top) and leave no trails. The
  tracks are recomputed for every clip.

The modalities are named once, in the clip format (:data:`model.clips.CONTROL_MODALITIES`, which is
:attr:`ControlSignals.MODALITIES`): :meth:`ControlSignals.videos` gives the videos the model takes, by name, and
:func:`model.clips.control_videos` gives the same from a stored clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from lv2_env.signals.camera import Intrinsics, project, unproject
from model.clips import CONTROL_MODALITIES

REFERENCE_TRACK_POINTS = 2500
REFERENCE_AREA = 832 * 480
MIN_TRACK_POINTS = 100
# Depth range (metres) of a rendered view that is nearly all sky: nothing to take percentiles of.
FALLBACK_DEPTH_RANGE = (1.0, 50.0)


@dataclass(frozen=True)
class DepthRange:
    """The global depth normalisation range: ``near`` is the 5th percentile, ``far`` the 95th, in metres."""

    near: float
    far: float

    def __post_init__(self) -> None:
        if not (np.isfinite(self.near) and np.isfinite(self.far)) or not 0.0 < self.near < self.far:
            raise ValueError(f"depth range needs 0 < near < far (finite), got near={self.near!r}, far={self.far!r}")

    @classmethod
    def fit(
        cls,
        depth: np.ndarray,
        low: float = 5.0,
        high: float = 95.0,
        min_spread: float = 0.5,
        sky_depth: float | None = None,
    ) -> "DepthRange":
        """Percentiles of all the given depth values (any shape, e.g. ``[F, H, W]`` of a whole sequence).

        ``sky_depth``: depth values at or beyond it (the sky of a rendered world) are left out, so that an open
        horizon does not pull p95 to the sky and squash all the ground into a few grey levels; the sky is still
        drawn, as far (black). A view filled by one flat wall has ``p5 == p95``; the spread is then widened to
        ``min_spread`` metres (documented, not silent) so the normalisation stays defined.
        """
        d = np.asarray(depth, dtype=np.float64)
        keep = np.isfinite(d) & (d > 0)
        if sky_depth is not None:
            keep &= d < sky_depth
        d = d[keep]
        if d.size == 0:
            raise ValueError("cannot fit a depth range: no finite positive depth values (below the sky depth)")
        near, far = np.percentile(d, [low, high])
        far = max(far, near + min_spread)
        return cls(float(near), float(far))

    @classmethod
    def fit_rendered(cls, depth: np.ndarray, sky_depth: float) -> "DepthRange":
        """The range of a rendered sequence (any shape): percentiles of its geometry, the sky left out; a view with
        less than 1% geometry (a camera looking at the sky) gets :data:`FALLBACK_DEPTH_RANGE`."""
        if np.mean(np.asarray(depth) < sky_depth) < 0.01:
            return cls(*FALLBACK_DEPTH_RANGE)
        return cls.fit(depth, sky_depth=sky_depth)

    def normalise(self, depth: np.ndarray) -> np.ndarray:
        """``clip((far - d) / (far - near), 0, 1)``: near is 1 (bright), far is 0."""
        return np.clip((self.far - depth) / (self.far - self.near), 0.0, 1.0)

    def normalise_inverse(self, depth: np.ndarray) -> np.ndarray:
        """Normalised inverse depth ``(1/d - 1/far) / (1/near - 1/far)``, clipped to ``[0, 1]``: near is 1."""
        inv = 1.0 / np.maximum(depth, 1e-6)
        return np.clip((inv - 1.0 / self.far) / (1.0 / self.near - 1.0 / self.far), 0.0, 1.0)


@dataclass(frozen=True, eq=False)
class ControlSignals:
    """The control signals of one clip of ``F`` frames with ``N`` tracked points.

    Attributes:
        dense: uint8 ``[F, H, W, 3]`` normalised depth video (near bright).
        sparse: uint8 ``[F, H, W, 3]`` point-track video.
        depth: float32 ``[F, H, W]`` metric depth (camera-frame z, metres).
        tracks: float32 ``[F, N, 2]`` pixel positions ``(x, y)`` of the tracked points in every frame.
        visibility: bool ``[F, N]``: the point is in the image, in front of the camera and not occluded.
        colours: uint8 ``[N, 3]`` fixed colour of each point.
        depth_range: the global normalisation range used for both videos.

    ``MODALITIES`` names the attributes that are control videos (the model's control modalities).
    """

    MODALITIES: ClassVar[tuple[str, ...]] = CONTROL_MODALITIES

    dense: np.ndarray
    sparse: np.ndarray
    depth: np.ndarray
    tracks: np.ndarray
    visibility: np.ndarray
    colours: np.ndarray
    depth_range: DepthRange

    @classmethod
    def from_tracks(
        cls,
        depth: np.ndarray,
        tracks: np.ndarray,
        track_depths: np.ndarray,
        visibility: np.ndarray,
        first_points: np.ndarray,
        depth_range: DepthRange,
        square: int | None = None,
    ) -> "ControlSignals":
        """Both control signals of a clip from its depth and its point tracks, however they were obtained.

        Args:
            depth: ``[F, H, W]`` depth (metric, or an estimate in the same units as ``depth_range``).
            tracks: ``[F, N, 2]`` pixel positions ``(x, y)`` of the points in every frame.
            track_depths: ``[F, N]`` each point's depth in every frame (it orders the squares far to near).
            visibility: bool ``[F, N]``.
            first_points: ``[N, 2]`` the points on frame 0 (their position fixes their colour).
            depth_range: the global range both videos are normalised with.
            square: side of a drawn point; :func:`default_square_size` when omitted.
        """
        depth = np.asarray(depth, dtype=np.float32)
        f, h, w = depth.shape
        if tracks.shape[:1] != (f,) or track_depths.shape != tracks.shape[:2] or visibility.shape != tracks.shape[:2]:
            raise ValueError(
                f"expected tracks [F={f}, N, 2] with track_depths and visibility [F, N], got {tracks.shape}, "
                f"{track_depths.shape} and {visibility.shape}"
            )
        colours = track_colours(first_points, track_depths[0], h, w, depth_range)
        square = default_square_size(h, w) if square is None else square
        return cls(
            dense=dense_video(depth, depth_range),
            sparse=draw_tracks(tracks, track_depths, visibility, colours, h, w, square),
            depth=depth,
            tracks=np.asarray(tracks, dtype=np.float32),
            visibility=visibility,
            colours=colours,
            depth_range=depth_range,
        )

    def videos(self) -> dict[str, np.ndarray]:
        """Modality name -> uint8 ``[F, H, W, 3]`` control video, for every one of :attr:`MODALITIES`: what the
        generator's ``generate_clip`` takes."""
        return {name: getattr(self, name) for name in self.MODALITIES}

    def __eq__(self, other: object) -> bool:
        """Equal when every array is equal element by element (the generated ``__eq__`` cannot compare arrays)."""
        if not isinstance(other, ControlSignals):
            return NotImplemented
        names = ("dense", "sparse", "depth", "tracks", "visibility", "colours")
        return self.depth_range == other.depth_range and all(
            np.array_equal(getattr(self, n), getattr(other, n)) for n in names
        )

    __hash__ = None  # mutable arrays inside: not hashable


def num_track_points(height: int, width: int) -> int:
    """2,500 points at 832x480, scaled by image area, never fewer than 100."""
    return max(MIN_TRACK_POINTS, int(round(REFERENCE_TRACK_POINTS * height * width / REFERENCE_AREA)))


def track_grid(height: int, width: int) -> np.ndarray:
    """Pixel-centre coordinates ``[N, 2]`` (x, y) of a regular grid of at least :func:`num_track_points` points."""
    n = num_track_points(height, width)
    rows = max(1, min(height, int(round(np.sqrt(n * height / width)))))
    cols = min(width, int(np.ceil(n / rows)))
    xs = np.floor((np.arange(cols) + 0.5) * width / cols) + 0.5
    ys = np.floor((np.arange(rows) + 0.5) * height / rows) + 0.5
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=-1)


def default_square_size(height: int, width: int) -> int:
    """Side in pixels of a drawn track point: 8 at 480 lines, and at least 3 so it survives 8x VAE downsampling."""
    return max(3, int(round(min(height, width) / 64)))


def dense_video(depth: np.ndarray, depth_range: DepthRange) -> np.ndarray:
    """uint8 ``[F, H, W, 3]`` grey video of globally normalised depth ``[F, H, W]``."""
    grey = np.round(depth_range.normalise(depth) * 255.0).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def _visible(uv: np.ndarray, z: np.ndarray, depth: np.ndarray, rel_tol: float, abs_tol: float) -> np.ndarray:
    """Visibility of projected points ``uv [N, 2]`` at depth ``z [N]`` against one depth map ``[H, W]``.

    The depth test compares with the farthest of the four pixels whose centres surround the point, so that a
    point seen at a grazing angle is not hidden by its own surface; it is hidden only when every neighbour is
    clearly in front of it.
    """
    h, w = depth.shape
    inside = (z > 1e-6) & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
    x0 = np.clip(np.floor(uv[:, 0] - 0.5).astype(np.int64), 0, w - 1)
    y0 = np.clip(np.floor(uv[:, 1] - 0.5).astype(np.int64), 0, h - 1)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    surface = np.maximum.reduce([depth[y0, x0], depth[y0, x1], depth[y1, x0], depth[y1, x1]])
    return inside & (z <= surface * (1.0 + rel_tol) + abs_tol)


def track_points(
    depth: np.ndarray,
    poses: np.ndarray,
    intrinsics: Intrinsics,
    grid: np.ndarray | None = None,
    rel_tol: float = 0.02,
    abs_tol: float = 0.02,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Carry the first frame's grid points through the clip.

    Args:
        depth: ``[F, H, W]`` metric depth of every frame (the occlusion test needs all of them).
        poses: ``[F, 4, 4]`` camera-to-world poses.
        grid: ``[N, 2]`` pixel coordinates on frame 0; :func:`track_grid` when omitted.

    Returns:
        ``(tracks [F, N, 2], depths [F, N], visibility [F, N], points [N, 3])``: positions, camera depth in each
        frame, visibility and the points' world coordinates.
    """
    f, h, w = depth.shape
    grid = track_grid(h, w) if grid is None else np.asarray(grid, dtype=np.float64)
    cols = np.clip(np.floor(grid[:, 0]).astype(np.int64), 0, w - 1)
    rows = np.clip(np.floor(grid[:, 1]).astype(np.int64), 0, h - 1)
    points = unproject(grid, depth[0, rows, cols], poses[0], intrinsics)  # [N, 3]
    tracks = np.empty((f, len(grid), 2))
    depths = np.empty((f, len(grid)))
    visibility = np.empty((f, len(grid)), dtype=bool)
    for i in range(f):
        uv, z = project(points, poses[i], intrinsics)
        tracks[i], depths[i] = uv, z
        visibility[i] = _visible(uv, z, depth[i], rel_tol, abs_tol)
    return tracks, depths, visibility, points


def track_colours(grid: np.ndarray, first_depth: np.ndarray, height: int, width: int, depth_range: DepthRange) -> np.ndarray:
    """uint8 ``[N, 3]``: R = x / W, G = y / H, B = normalised inverse depth on the first frame."""
    rgb = np.stack(
        [grid[:, 0] / width, grid[:, 1] / height, depth_range.normalise_inverse(first_depth)], axis=-1
    )
    return np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def draw_tracks(
    tracks: np.ndarray,
    depths: np.ndarray,
    visibility: np.ndarray,
    colours: np.ndarray,
    height: int,
    width: int,
    square: int,
) -> np.ndarray:
    """uint8 ``[F, H, W, 3]``: visible points as filled squares on black, painted far to near, no trails."""
    f, n = visibility.shape
    video = np.zeros((f, height, width, 3), dtype=np.uint8)
    offsets = np.arange(square) - (square - 1) / 2.0
    dy, dx = np.meshgrid(offsets, offsets, indexing="ij")
    dx, dy = dx.ravel(), dy.ravel()  # [S*S]
    for i in range(f):
        idx = np.flatnonzero(visibility[i])
        if idx.size == 0:
            continue
        # Rank by depth: nearer points get a higher rank, and the highest rank wins each pixel ("far to near").
        order = idx[np.argsort(-depths[i, idx], kind="stable")]
        xs = np.floor(tracks[i, order, 0][:, None] + dx[None, :]).astype(np.int64)  # [n, S*S]
        ys = np.floor(tracks[i, order, 1][:, None] + dy[None, :]).astype(np.int64)
        ranks = np.broadcast_to(np.arange(order.size)[:, None], xs.shape)
        ok = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
        winner = np.full(height * width, -1, dtype=np.int64)
        np.maximum.at(winner, ys[ok] * width + xs[ok], ranks[ok])
        painted = winner >= 0
        frame = video[i].reshape(-1, 3)
        frame[painted] = colours[order[winner[painted]]]
    return video


def compute_control_signals(
    depth: np.ndarray,
    poses: np.ndarray,
    intrinsics: Intrinsics,
    depth_range: DepthRange,
    square: int | None = None,
) -> ControlSignals:
    """Both control signals of one clip from its metric depth ``[F, H, W]`` and poses ``[F, 4, 4]``."""
    depth = np.asarray(depth, dtype=np.float32)
    poses = np.asarray(poses, dtype=np.float64)
    if depth.ndim != 3 or poses.shape != (depth.shape[0], 4, 4):
        raise ValueError(f"expected depth [F, H, W] and poses [F, 4, 4], got {depth.shape} and {poses.shape}")
    f, h, w = depth.shape
    if (h, w) != (intrinsics.height, intrinsics.width):
        raise ValueError(f"depth is {h}x{w} but the intrinsics describe {intrinsics.height}x{intrinsics.width}")
    grid = track_grid(h, w)
    tracks, depths, visibility, _ = track_points(depth, poses, intrinsics, grid)
    return ControlSignals.from_tracks(depth, tracks, depths, visibility, grid, depth_range, square)
