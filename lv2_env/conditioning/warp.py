"""Forward-warping a frame into other cameras with its depth: the warp baseline and the rendered conditioning.

:func:`warp_first_frame` lifts every pixel of a frame to 3D with its metric depth and splats it into each
camera of a path with a z-buffer (:func:`~lv2_env.conditioning.raster.splat_boxes`). :mod:`lv2_env.evaluation.clips`
uses it as the baseline that needs no model; :func:`render_along_path` is what a ``condition="rendered"`` model
receives in its I2V channels (GEN3C's rendered point cache, with the one frame the env knows best: the last one).
"""

from __future__ import annotations

import math

import numpy as np

from lv2_env.conditioning.raster import SAME_SURFACE, splat_boxes
from lv2_env.signals.camera import Intrinsics

SKY_DEPTH = 150.0  # the depth rendered worlds report for sky (Scene.far); at or beyond it a pixel is a direction
# The warp baseline's splat (see warp_first_frame): neighbouring frame-0 pixels whose depths differ by less than
# SAME_SURFACE (relative, raster.py) are one surface; a warped point fills a box of half its grid spacing plus
# SPLAT_SLACK pixel on each side, the half capped at MAX_SPLAT_HALF_SIDE pixels (magnification up to 2x that).
SPLAT_SLACK = 0.15
MAX_SPLAT_HALF_SIDE = 3.0


def as_intrinsics(K: np.ndarray | Intrinsics, width: int, height: int) -> Intrinsics:
    """``K`` (a ``[3, 3]`` matrix, as ``info["intrinsics"]``, or an :class:`Intrinsics`) for ``width x height``
    frames; an :class:`Intrinsics` of another size raises ``ValueError``."""
    if isinstance(K, Intrinsics):
        if (K.width, K.height) != (width, height):
            raise ValueError(f"intrinsics are for {K.width}x{K.height} images, but the frame is {width}x{height}")
        return K
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3):
        raise ValueError(f"expected a [3, 3] intrinsics matrix or an Intrinsics, got shape {K.shape}")
    return Intrinsics(float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]), int(width), int(height))


def _grid_spacing(uv: np.ndarray, depth0: np.ndarray, valid: np.ndarray, axis: int) -> np.ndarray:
    """Projected distance ``[H, W]`` from each warped point to its nearer same-surface neighbour along ``axis``
    of frame 0 (1: along rows, 0: along columns); inf where neither neighbour is on the same surface.

    Neighbours are on the same surface when their frame-0 depths differ by less than ``SAME_SURFACE`` (relative),
    so a silhouette never measures the gap to the background behind it.
    """
    ahead, behind = [slice(None)] * 2, [slice(None)] * 2
    ahead[axis], behind[axis] = slice(1, None), slice(None, -1)
    ahead, behind = tuple(ahead), tuple(behind)
    same = (np.abs(depth0[ahead] / depth0[behind] - 1.0) < SAME_SURFACE) & valid[ahead] & valid[behind]
    gap = np.where(same, np.linalg.norm(uv[ahead] - uv[behind], axis=-1), np.inf)
    before, after = [(0, 0)] * 2, [(0, 0)] * 2
    before[axis], after[axis] = (1, 0), (0, 1)
    return np.minimum(np.pad(gap, before, constant_values=np.inf), np.pad(gap, after, constant_values=np.inf))


def _splat(
    world: np.ndarray, sky: np.ndarray, depth0: np.ndarray, pose: np.ndarray, intrinsics: Intrinsics
) -> np.ndarray:
    """The frame-0 pixel each pixel of camera ``pose`` shows (``[H, W]``, -1 for none); see :func:`warp_first_frame`.

    ``world``: frame 0's pixels as homogeneous world coordinates ``[N, 4]`` (points w = 1, sky directions w = 0).
    """
    h, w = depth0.shape
    n = h * w
    cam = world @ np.linalg.inv(pose)[:3].T  # [N, 3]
    z = cam[:, 2]
    in_front = z > 1e-9
    safe_z = np.where(in_front, z, 1.0)
    u = np.where(in_front, intrinsics.fx * cam[:, 0] / safe_z + intrinsics.cx, -1e9)  # behind: off the image
    v = np.where(in_front, intrinsics.fy * cam[:, 1] / safe_z + intrinsics.cy, -1e9)
    key = np.where(sky, math.inf, z)  # sky loses every depth test

    # Box half-sides from the local spacing of the warped grid (the depth ratio where it is unknown).
    uv = np.stack([u, v], axis=-1).reshape(h, w, 2)
    magnification = np.where(sky, 1.0, depth0.reshape(n) / safe_z)
    ax, ay = (
        np.clip(0.5 * np.where(np.isfinite(s), s, magnification), 0.0, MAX_SPLAT_HALF_SIDE) + SPLAT_SLACK
        for s in (_grid_spacing(uv, depth0, in_front.reshape(h, w), axis).reshape(n) for axis in (1, 0))
    )

    return splat_boxes(u, v, ax, ay, key, np.arange(n), h, w)


def warp_first_frame(
    rgb0: np.ndarray,
    depth0: np.ndarray,
    poses: np.ndarray,
    K: np.ndarray | Intrinsics,
    sky_depth: float | None = SKY_DEPTH,
) -> tuple[np.ndarray, np.ndarray]:
    """Forward-warp frame 0 into every camera of the clip with its exact depth: ``(frames, covered)``.

    Every pixel centre of frame 0 is lifted to 3D with ``depth0`` and ``poses[0]``, projected into each
    ``poses[f]`` (camera-to-world, OpenCV camera; ``K`` the ``[3, 3]`` matrix or an :class:`Intrinsics`) and
    splatted with a z-buffer (the nearest surface wins) as a box as large as the gap to its warped neighbours:
    half-sides of half the local grid spacing plus ``SPLAT_SLACK`` pixel (see :func:`_grid_spacing`; where a point
    has no same-surface neighbour, the spacing is its depth ratio ``z0 / z_f``, the magnification of a surface
    facing the camera). The boxes of a surface tile the image however the motion magnifies or resamples it, so
    no pinholes read as revealed and no background shines through a magnified surface; an unmoved camera gives
    every point exactly its own pixel, so frame 0 comes back unchanged. The slack lets sheared grids (turning)
    close, and lets a silhouette grow by at most that much.

    Pixels no box reaches are ``covered=False``: what the motion newly reveals, or what lies outside frame 0.
    They are black in ``frames``. A magnification beyond ``2 * MAX_SPLAT_HALF_SIDE`` (walking into a wall)
    leaves gaps that count as revealed. Colours are copied, so what changes with the view (fog thinning as the
    camera approaches) is the warp's error too.

    Depths at or beyond ``sky_depth`` (the renderer's sky, 150 m) are treated as directions at infinity: sky
    colour depends only on the view direction, so it moves with rotation alone and loses every depth test.
    ``sky_depth=None`` treats all pixels as points.

    Returns ``frames`` uint8 ``[F, H, W, 3]`` (frame 0 equals ``rgb0``) and ``covered`` bool ``[F, H, W]``.
    """
    rgb0, depth0 = np.asarray(rgb0), np.asarray(depth0)
    poses = np.asarray(poses, dtype=np.float64)
    if rgb0.dtype != np.uint8 or rgb0.ndim != 3 or rgb0.shape[-1] != 3:
        raise ValueError(f"rgb0 must be uint8 [H, W, 3], got {rgb0.dtype} {rgb0.shape}")
    h, w = rgb0.shape[:2]
    if depth0.shape != (h, w):
        raise ValueError(f"depth0 must be [H, W] = {(h, w)} like rgb0, got {depth0.shape}")
    if poses.ndim != 3 or poses.shape[1:] != (4, 4) or len(poses) < 1:
        raise ValueError(f"poses must be camera-to-world [F >= 1, 4, 4], got {poses.shape}")
    depth = depth0.astype(np.float64)
    if not np.all(np.isfinite(depth) & (depth > 0)):
        raise ValueError("depth0 must be finite and positive everywhere (camera-frame z in metres)")
    intrinsics = as_intrinsics(K, w, h)
    n = h * w

    rays = intrinsics.pixel_rays().reshape(n, 3)  # camera frame, z = 1
    sky = (depth >= sky_depth).reshape(n) if sky_depth is not None else np.zeros(n, bool)
    homogeneous = np.concatenate([rays * np.where(sky, 1.0, depth.reshape(n))[:, None], (~sky)[:, None]], axis=1)
    world = homogeneous @ poses[0].T  # [N, 4]: points (w = 1) and sky directions (w = 0)
    winner = np.stack([_splat(world, sky, depth, pose, intrinsics) for pose in poses])  # [F, H, W]
    covered = winner >= 0
    colour = rgb0.reshape(n, 3)[np.maximum(winner, 0)]
    return np.where(covered[..., None], colour, 0).astype(np.uint8), covered


# ---------------------------------------------------------------------------------------------------- evaluation


def render_along_path(frame: np.ndarray, depth: np.ndarray, poses: np.ndarray, intrinsics) -> np.ndarray:
    """``frame`` (uint8 ``[H, W, 3]``, seen from ``poses[0]`` with metric ``depth`` ``[H, W]``) rendered into every
    camera of ``poses`` ``[F, 4, 4]``: uint8 ``[F, H, W, 3]``, black where no point lands; frame 0 is ``frame``."""
    frames, _ = warp_first_frame(frame, depth, poses, intrinsics)
    frames[0] = frame
    return frames


def render_clip(clip: dict) -> np.ndarray:
    """:func:`render_along_path` of a clip record's first frame (``rgb``, ``depth``, ``poses``, ``intrinsics``)."""
    return render_along_path(clip["rgb"][0], clip["depth"][0], clip["poses"], clip["intrinsics"])
