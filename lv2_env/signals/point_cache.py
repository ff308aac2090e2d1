"""A 3D point cache of what a generated world has shown so far, for control signals without a scene.

A world started from a user's image has no geometry to render depth from. LongVie 2's answer at inference is
to estimate depth on the frames generated so far, lift them to 3D with the known camera, and render that
point cloud along the next camera path: the dense control is that depth video, the sparse tracks follow
its points. :class:`PointCache` keeps the points of the last ``capacity`` key frames (one per clip: the
clip's last frame), so memory stays flat over a long episode; :meth:`PointCache.render_depth` splats them
with a z-buffer and fills the holes that splatting leaves (nearest valid depth, then the far value for
regions nothing has seen yet, which the generator is free to invent).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from lv2_env.signals.camera import Intrinsics



def unproject(depth: np.ndarray, pose: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """World points ``[H * W, 3]`` of a metric depth map ``[H, W]`` (camera z) seen from ``pose`` (4x4, c2w)."""
    h, w = depth.shape
    k = intrinsics.matrix
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    z = depth.astype(np.float64)
    x = (u + 0.5 - k[0, 2]) / k[0, 0] * z
    y = (v + 0.5 - k[1, 2]) / k[1, 1] * z
    camera = np.stack([x, y, z], axis=-1).reshape(-1, 3)
    return camera @ pose[:3, :3].T + pose[:3, 3]


def splat_depth(points: np.ndarray, pose: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """Depth ``[H, W]`` of ``points`` ``[N, 3]`` seen from ``pose``: nearest point per pixel, 0 where none."""
    h, w = intrinsics.height, intrinsics.width
    world_to_camera = np.linalg.inv(pose)
    camera = points @ world_to_camera[:3, :3].T + world_to_camera[:3, 3]
    z = camera[:, 2]
    front = z > 1e-3
    camera, z = camera[front], z[front]
    k = intrinsics.matrix
    u = np.floor(k[0, 0] * camera[:, 0] / z + k[0, 2]).astype(np.int64)
    v = np.floor(k[1, 1] * camera[:, 1] / z + k[1, 2]).astype(np.int64)
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    flat = v[inside] * w + u[inside]
    buffer = np.full(h * w, np.inf)
    np.minimum.at(buffer, flat, z[inside])
    buffer[~np.isfinite(buffer)] = 0.0
    return buffer.reshape(h, w).astype(np.float32)


def fill_holes(depth: np.ndarray, far: float, iterations: int = 6) -> np.ndarray:
    """Fill zeros of a splatted depth map: the largest neighbouring depth a few times (background first, so a
    gap between points of a near object does not pull the far scene forward), then ``far``."""
    out = depth.copy()
    for _ in range(iterations):
        holes = out == 0
        if not holes.any():
            break
        padded = np.pad(out, 1, mode="edge")
        neighbours = np.stack([padded[dy : dy + out.shape[0], dx : dx + out.shape[1]]
                               for dy in range(3) for dx in range(3)])
        out[holes] = neighbours.max(axis=0)[holes]
    out[out == 0] = far
    return out


class PointCache:
    """The world points of the last ``capacity`` key frames."""

    def __init__(self, intrinsics: Intrinsics, capacity: int = 4, far: float = 150.0) -> None:
        if capacity < 1:
            raise ValueError(f"the point cache needs a capacity of at least 1 key frame, got {capacity}")
        self.intrinsics = intrinsics
        self.capacity = capacity
        self.far = far
        self._frames: deque[np.ndarray] = deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self._frames)

    def clear(self) -> None:
        self._frames.clear()

    def add(self, depth: np.ndarray, pose: np.ndarray) -> None:
        """Lift a key frame's metric depth ``[H, W]`` (seen from ``pose``) into the cache; the sky stays out."""
        if depth.shape != (self.intrinsics.height, self.intrinsics.width):
            raise ValueError(f"expected depth of shape {(self.intrinsics.height, self.intrinsics.width)}, got {depth.shape}")
        keep = (np.isfinite(depth) & (depth > 0) & (depth < 0.9 * self.far)).reshape(-1)
        self._frames.append(unproject(depth, pose, self.intrinsics)[keep].astype(np.float32))

    def points(self) -> np.ndarray:
        return np.concatenate(list(self._frames)) if self._frames else np.zeros((0, 3), np.float32)

    def render_depth(self, poses: np.ndarray) -> np.ndarray:
        """Hole-filled depth ``[F, H, W]`` of the cached points from each pose ``[F, 4, 4]``."""
        return self.render(poses)[0]

    def render(self, poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hole-filled depth ``[F, H, W]`` of the cached points from each pose ``[F, 4, 4]``, and where no point
        landed (bool ``[F, H, W]``: the filled holes, depth guessed rather than seen)."""
        points = self.points().astype(np.float64)
        splats = [splat_depth(points, pose, self.intrinsics) for pose in poses]
        return (np.stack([fill_holes(d, self.far) for d in splats]),
                np.stack([d == 0 for d in splats]))
