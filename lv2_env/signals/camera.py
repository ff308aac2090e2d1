"""Pinhole camera, camera poses and the conventions every other module relies on.

Conventions (one set, used everywhere in lv2):

* **World frame**: right-handed, metres, ``z`` up. The ground is the plane ``z = 0``. At yaw 0 the camera
  looks along world ``+y`` ("north"), with world ``+x`` ("east") to its right.
* **Camera frame**: OpenCV, ``x`` right, ``y`` down, ``z`` forward. Depth is the ``z`` coordinate of a point
  in the camera frame (not the length of the ray).
* **Poses** are camera-to-world SE(3) matrices ``[4, 4]`` (float64): ``X_world = R @ X_cam + t``.
* **Camera state** is ``(x, y, z, yaw, pitch, roll)``: position in metres and Euler angles in radians.
  Positive yaw turns left (right-hand rule about world up), positive pitch looks up, positive roll banks the
  camera to the right (the horizon appears to tilt anticlockwise). The rotation is
  ``Rz(yaw) @ Rx(pitch) @ Ry(roll) @ BASE`` where ``BASE`` maps the camera axes onto the world at yaw 0.
* **Relative motion** (what actions describe) is ``(forward, right, up, yaw, pitch, roll)``: a translation in
  the *heading frame* of the reference state (its yaw only, so "forward" stays horizontal whatever the
  pitch, as in a first-person game) and angle changes added to the reference angles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Columns are the camera's x (right), y (down), z (forward) axes expressed in world coordinates at yaw 0.
BASE_ROTATION = np.array(
    [
        [1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0],
        [0.0, -1.0, 0.0],
    ]
)

STATE_FIELDS = ("x", "y", "z", "yaw", "pitch", "roll")
MOTION_FIELDS = ("forward", "right", "up", "yaw", "pitch", "roll")
FOV_DEG = 70.0  # horizontal field of view of every lv2 camera by default: the envs, the data, `lv2 generate`


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics for an image of ``width x height`` pixels; pixel centres sit at ``(u + 0.5, v + 0.5)``."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_fov(cls, fov_deg: float, width: int, height: int) -> "Intrinsics":
        """Square pixels with the given *horizontal* field of view in degrees."""
        if not 1.0 <= fov_deg <= 170.0:
            raise ValueError(f"fov_deg must be in [1, 170] degrees, got {fov_deg!r}")
        if width < 1 or height < 1:
            raise ValueError(f"image size must be positive, got width={width!r}, height={height!r}")
        f = 0.5 * width / np.tan(np.radians(fov_deg) / 2.0)
        return cls(fx=float(f), fy=float(f), cx=width / 2.0, cy=height / 2.0, width=int(width), height=int(height))

    @property
    def matrix(self) -> np.ndarray:
        """The 3x3 matrix ``K``."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled(self, width: int, height: int) -> "Intrinsics":
        """The same camera for an image resized to ``width x height``."""
        sx, sy = width / self.width, height / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, int(width), int(height))

    def pixel_rays(self) -> np.ndarray:
        """Camera-frame ray directions ``[H, W, 3]`` through pixel centres, scaled so that ``z = 1``."""
        u = (np.arange(self.width) + 0.5 - self.cx) / self.fx
        v = (np.arange(self.height) + 0.5 - self.cy) / self.fy
        uu, vv = np.meshgrid(u, v)
        return np.stack([uu, vv, np.ones_like(uu)], axis=-1)


def _rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rotation_from_euler(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera-to-world rotation for the given Euler angles (see the module docstring)."""
    return _rot_z(yaw) @ _rot_x(pitch) @ _rot_y(roll) @ BASE_ROTATION


def euler_from_rotation(rotation: np.ndarray) -> tuple[float, float, float]:
    """Inverse of :func:`rotation_from_euler`; pitch is returned in ``[-pi/2, pi/2]``."""
    m = np.asarray(rotation, dtype=np.float64) @ BASE_ROTATION.T
    pitch = float(np.arcsin(np.clip(m[2, 1], -1.0, 1.0)))
    if abs(np.cos(pitch)) > 1e-9:
        yaw = float(np.arctan2(-m[0, 1], m[1, 1]))
        roll = float(np.arctan2(-m[2, 0], m[2, 2]))
    else:  # gimbal lock: yaw and roll turn about the same axis; put it all in yaw
        yaw = float(np.arctan2(m[1, 0], m[0, 0]))
        roll = 0.0
    return yaw, pitch, roll


def pose_from_state(state: np.ndarray) -> np.ndarray:
    """Camera-to-world ``[4, 4]`` pose from a state ``(x, y, z, yaw, pitch, roll)``."""
    s = np.asarray(state, dtype=np.float64)
    pose = np.eye(4)
    pose[:3, :3] = rotation_from_euler(s[3], s[4], s[5])
    pose[:3, 3] = s[:3]
    return pose


def poses_from_states(states: np.ndarray) -> np.ndarray:
    """``[F, 6]`` states to ``[F, 4, 4]`` camera-to-world poses."""
    return np.stack([pose_from_state(s) for s in np.asarray(states, dtype=np.float64)])


def state_from_pose(pose: np.ndarray) -> np.ndarray:
    """State ``(x, y, z, yaw, pitch, roll)`` of a camera-to-world pose."""
    p = np.asarray(pose, dtype=np.float64)
    if p.shape != (4, 4):
        raise ValueError(f"expected a [4, 4] camera-to-world pose, got shape {p.shape}")
    yaw, pitch, roll = euler_from_rotation(p[:3, :3])
    return np.array([p[0, 3], p[1, 3], p[2, 3], yaw, pitch, roll])


def heading_vectors(yaw: float) -> tuple[np.ndarray, np.ndarray]:
    """World-frame unit vectors ``(forward, right)`` on the ground plane for a heading ``yaw``."""
    forward = np.array([-np.sin(yaw), np.cos(yaw), 0.0])
    right = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    return forward, right


def apply_motion(reference: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """States reached from ``reference`` by relative motions ``[..., 6]`` (forward, right, up, yaw, pitch, roll)."""
    ref = np.asarray(reference, dtype=np.float64)
    mot = np.asarray(motion, dtype=np.float64)
    forward, right = heading_vectors(ref[3])
    up = np.array([0.0, 0.0, 1.0])
    out = np.empty(mot.shape)
    out[..., :3] = ref[:3] + mot[..., 0:1] * forward + mot[..., 1:2] * right + mot[..., 2:3] * up
    out[..., 3:] = ref[3:] + mot[..., 3:]
    return out


def relative_motion(reference: np.ndarray, states: np.ndarray) -> np.ndarray:
    """Inverse of :func:`apply_motion`: the relative motions ``[..., 6]`` that lead from ``reference`` to ``states``."""
    ref = np.asarray(reference, dtype=np.float64)
    st = np.asarray(states, dtype=np.float64)
    forward, right = heading_vectors(ref[3])
    delta = st[..., :3] - ref[:3]
    out = np.empty(st.shape)
    out[..., 0] = delta @ forward
    out[..., 1] = delta @ right
    out[..., 2] = delta[..., 2]
    out[..., 3:] = st[..., 3:] - ref[3:]
    return out


def project(points_world: np.ndarray, pose: np.ndarray, intrinsics: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Project world points ``[..., 3]`` into the camera ``pose``.

    Returns ``(uv, z)``: continuous pixel coordinates ``[..., 2]`` (pixel ``(i, j)`` covers ``[j, j+1) x [i, i+1)``)
    and camera-frame depth ``[...]``. Points behind the camera get ``z <= 0``; their ``uv`` is meaningless.
    """
    pts = np.asarray(points_world, dtype=np.float64)
    rot, t = pose[:3, :3], pose[:3, 3]
    cam = (pts - t) @ rot  # R^T (X - t), written for row vectors
    z = cam[..., 2]
    safe_z = np.where(np.abs(z) < 1e-12, 1e-12, z)
    u = intrinsics.fx * cam[..., 0] / safe_z + intrinsics.cx
    v = intrinsics.fy * cam[..., 1] / safe_z + intrinsics.cy
    return np.stack([u, v], axis=-1), z


def unproject(uv: np.ndarray, depth: np.ndarray, pose: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """World points ``[..., 3]`` of pixel coordinates ``uv [..., 2]`` at camera-frame ``depth [...]``."""
    uv = np.asarray(uv, dtype=np.float64)
    d = np.asarray(depth, dtype=np.float64)
    x = (uv[..., 0] - intrinsics.cx) / intrinsics.fx * d
    y = (uv[..., 1] - intrinsics.cy) / intrinsics.fy * d
    cam = np.stack([x, y, d], axis=-1)
    return cam @ pose[:3, :3].T + pose[:3, 3]
