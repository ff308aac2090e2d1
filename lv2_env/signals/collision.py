"""The collision rule: the camera is a sphere that may not enter objects or the ground.

The camera is a sphere of radius :data:`CAMERA_RADIUS` around its position. Each frame of a clip's path is
checked in order; at the first frame whose sphere would touch an object or dip below ``z = CAMERA_RADIUS``,
the camera stops: that frame and every later frame of the clip keep the position of the last free frame, while
their rotation still follows the action (turning in place never collides). The environment reports the stop in
``info`` (``collision``, ``collision_frame``, ``obstacle``). Nothing else ever changes an action.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CAMERA_RADIUS = 0.3


@dataclass(frozen=True)
class CollisionReport:
    """Where a clip's path was stopped: ``frame`` is the first blocked frame, ``obstacle`` what blocked it."""

    collided: bool
    frame: int = -1
    obstacle: str = ""


def obstacles_at(scene, positions: np.ndarray, radius: float = CAMERA_RADIUS) -> list[str]:
    """For each position ``[N, 3]``, the name of what the camera sphere would touch there ("" when free)."""
    pos = np.atleast_2d(np.asarray(positions, dtype=np.float64))
    names = [""] * len(pos)
    if scene.objects:
        dist, index = scene.signed_distance(pos)
        for i in np.flatnonzero(dist < radius):
            names[i] = scene.objects[int(index[i])].name
    for i in np.flatnonzero(pos[:, 2] < radius):
        names[i] = names[i] or "ground"
    return names


def resolve_collisions(scene, states: np.ndarray, radius: float = CAMERA_RADIUS) -> tuple[np.ndarray, CollisionReport]:
    """Apply the collision rule to a clip's states ``[F, 6]``; frame 0 (where the camera already is) is free."""
    out = np.array(states, dtype=np.float64, copy=True)
    names = obstacles_at(scene, out[1:, :3], radius)
    blocked = [i + 1 for i, name in enumerate(names) if name]
    if not blocked:
        return out, CollisionReport(collided=False)
    first = blocked[0]
    out[first:, :3] = out[first - 1, :3]
    return out, CollisionReport(collided=True, frame=first, obstacle=names[first - 1])
