"""A 3D point cache of what a generated world has shown so far, for control signals without a scene.

A world started from a user's image has no geometry to render depth from. LongVie 2's answer at inference is
to estimate depth on the frames generated so far, lift them to 3D with the known camera, and render that
point cloud along the next camera path: the dense control is that depth video, the sparse tracks follow
its points. :class:`PointCache` keeps the start frame's points for good. Errors compound (what the model draws
feeds the depth network, whose depth steers the model), and on the model's own frames the tiny depth network is
right on few pixels, so by default nothing else enters the cache: what it holds nothing of takes the ground plane's
depth, and the world stays the start picture's geometry on a flat ground (``key_frames=False``; measured in
docs/results.md: the world holds far longer). With ``key_frames=True`` it also keeps the last ``capacity`` key
frames (one per clip: the clip's last frame), anchored: where the cache already holds a surface it is kept, and a
new estimate fills only what it holds nothing of, scaled to agree with it (:meth:`PointCache.add_key_frame`).
:meth:`PointCache.render` splats the points with a z-buffer, fills the gaps between them with the neighbouring
depth, and gives what nothing has seen the ground plane's depth below the horizon and the far plane above it (the
generator is free to invent there).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from lv2_env.signals.camera import Intrinsics

SKY_FRACTION = 0.9  # depth beyond this share of the far plane is sky: never cached
MIN_OVERLAP = 0.05  # the share of a key frame both it and the cache must see to align its scale
GROUND_ROWS = 0.25  # the share of a start frame's rows, from the bottom, taken as ground to fix the depth's scale


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


def fill_holes(depth: np.ndarray, far: np.ndarray | float, iterations: int = 6) -> np.ndarray:
    """Fill zeros of a splatted depth map: the largest neighbouring depth a few times (background first, so a
    gap between points of a near object does not pull the far scene forward), then ``far`` (a value, or a map
    ``[H, W]`` such as the ground plane's depth)."""
    out = depth.copy()
    for _ in range(iterations):
        holes = out == 0
        if not holes.any():
            break
        padded = np.pad(out, 1, mode="edge")
        neighbours = np.stack([padded[dy : dy + out.shape[0], dx : dx + out.shape[1]]
                               for dy in range(3) for dx in range(3)])
        out[holes] = neighbours.max(axis=0)[holes]
    unseen = out == 0
    out[unseen] = np.broadcast_to(far, out.shape)[unseen]
    return out


class PointCache:
    """The world points of the start frame (kept for good) and of the last ``capacity`` key frames.

    Args:
        intrinsics: the camera's :class:`~lv2_env.signals.camera.Intrinsics`.
        capacity: key frames kept after the start frame (one per clip), so memory stays flat.
        far: the far plane (m): the sky's depth, and what nothing seen and no ground below gets.
        ground_z: the ground plane's height in world coordinates (the camera walks at eye height above it), whose
            depth fills what nothing has seen below the horizon; None: ``far`` everywhere unseen.
        key_frames: whether :meth:`add_key_frame` takes key frames' estimated depth in at all; False (the
            default): the start frame's points and the ground prior are the world's geometry for good.
        anchored: with ``key_frames``, :meth:`add_key_frame` keeps the geometry the cache holds and takes a new
            estimate only where it holds nothing, aligned (one scale) to what it holds; False: every estimate is
            taken as it comes.
    """

    def __init__(self, intrinsics: Intrinsics, capacity: int = 4, far: float = 150.0, ground_z: float | None = 0.0,
                 key_frames: bool = False, anchored: bool = True) -> None:
        if capacity < 1:
            raise ValueError(f"the point cache needs a capacity of at least 1 key frame, got {capacity}")
        self.intrinsics = intrinsics
        self.capacity = capacity
        self.far = far
        self.ground_z = ground_z
        self.key_frames = key_frames
        self.anchored = anchored
        self._start: np.ndarray | None = None  # the start frame's points: the anchor everything is aligned to
        self._frames: deque[np.ndarray] = deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self._frames) + (self._start is not None)

    def clear(self) -> None:
        self._start = None
        self._frames.clear()

    def add(self, depth: np.ndarray, pose: np.ndarray, where: np.ndarray | None = None) -> None:
        """Lift a key frame's metric depth ``[H, W]`` (seen from ``pose``; only the pixels of ``where`` if given)
        into the cache; the sky stays out. The first key frame after :meth:`clear` is kept for good."""
        if depth.shape != (self.intrinsics.height, self.intrinsics.width):
            raise ValueError(f"expected depth of shape {(self.intrinsics.height, self.intrinsics.width)}, got {depth.shape}")
        keep = np.isfinite(depth) & (depth > 0) & (depth < SKY_FRACTION * self.far)
        if where is not None:
            keep &= where
        points = unproject(depth, pose, self.intrinsics)[keep.reshape(-1)].astype(np.float32)
        if self._start is None:
            self._start = points
        else:
            self._frames.append(points)

    def add_key_frame(self, estimate: np.ndarray | None, pose: np.ndarray,
                      rendered: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Take a key frame's estimated depth ``[H, W]`` (from the depth network, on a generated frame) seen from
        ``pose``; returns the depth the world keeps for it. Without ``key_frames``, that is the cache's own depth
        from ``pose`` and nothing is added (``estimate`` may be None: nothing reads it). ``anchored``: where the
        cache already holds geometry it is kept, and the estimate, scaled by the median ratio to it over the pixels
        both see, fills the rest. ``rendered``: the cache's :meth:`render` from ``pose`` (depth, unseen), when the
        caller already has it."""
        if self._start is not None and not self.key_frames:
            return rendered[0] if rendered is not None else self.render(pose[None])[0][0]
        if estimate is None:
            raise ValueError("expected the key frame's estimated depth [H, W], got None (only a cache that holds its "
                             "start frame and takes no key frames needs none)")
        if not self.anchored or self._start is None:
            self.add(estimate, pose)
            return estimate
        cached, holes = rendered if rendered is not None else (x[0] for x in self.render(pose[None]))
        scene = (estimate < SKY_FRACTION * self.far) & (cached < SKY_FRACTION * self.far) & ~holes
        if scene.mean() > MIN_OVERLAP:
            estimate = estimate * float(np.median(cached[scene] / np.maximum(estimate[scene], 1e-3)))
        fused = np.where(holes, estimate, cached).astype(np.float32)
        self.add(fused, pose, where=holes)
        return fused

    def scaled_to_ground(self, estimate: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """A start frame's estimated depth ``[H, W]`` scaled (one factor) so that its lowest rows, most likely
        ground, lie on the ground plane the camera stands on: the camera's height fixes the metric scale a depth
        network only guesses. Unchanged without a ground prior or where the lowest rows see no ground."""
        if self.ground_z is None:
            return estimate
        ground = self.ground_depth(pose)
        rows = slice(int(estimate.shape[0] * (1.0 - GROUND_ROWS)), None)
        g, e = ground[rows], estimate[rows]
        usable = (g < SKY_FRACTION * self.far) & (e > 0) & (e < SKY_FRACTION * self.far)
        if usable.mean() < 0.5:
            return estimate
        return (estimate * float(np.median(g[usable] / e[usable]))).astype(np.float32)

    def points(self) -> np.ndarray:
        frames = ([] if self._start is None else [self._start]) + list(self._frames)
        return np.concatenate(frames) if frames else np.zeros((0, 3), np.float32)

    def render(self, poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hole-filled depth ``[F, H, W]`` of the cached points from each pose ``[F, 4, 4]``, and where nothing
        was seen (bool ``[F, H, W]``: depth guessed rather than seen). The small gaps between splatted points take
        the neighbouring depth; what is left is unseen: the ground plane's depth (``ground_z``) below the
        horizon, else ``far``."""
        points = self.points().astype(np.float64)
        depth, unseen = [], []
        for pose in poses:
            near = fill_holes(splat_depth(points, pose, self.intrinsics), 0.0)  # unseen pixels stay 0
            unseen.append(near == 0)
            depth.append(np.where(unseen[-1], self.ground_depth(pose), near).astype(np.float32))
        return np.stack(depth), np.stack(unseen)

    def ground_depth(self, pose: np.ndarray) -> np.ndarray | float:
        """The depth ``[H, W]`` of the ground plane ``z = ground_z`` seen from ``pose`` (``far`` above the horizon
        or beyond it); ``far`` itself when there is no ground prior."""
        if self.ground_z is None:
            return self.far
        h, w = self.intrinsics.height, self.intrinsics.width
        k = self.intrinsics.matrix
        v, u = np.mgrid[0:h, 0:w].astype(np.float64)
        rays = np.stack([(u + 0.5 - k[0, 2]) / k[0, 0], (v + 0.5 - k[1, 2]) / k[1, 1], np.ones_like(u)], -1)
        down = rays @ pose[:3, :3].T[:, 2]  # world z of each ray (camera z = 1)
        height = pose[2, 3] - self.ground_z
        with np.errstate(divide="ignore", invalid="ignore"):
            depth = np.where(down < 0, height / -down, np.inf)
        return np.minimum(np.where(depth > 0, depth, self.far), self.far).astype(np.float32)
