"""Levels of the navigation task, as RL suites offer them (MiniWorld's room sizes, Procgen's easy and hard):
how far the goal starts, whether it is in view, how many other objects stand in the scene.

Chosen at reset, by name or knob by knob (a knob given beside a level overrides the level's)::

    env.reset(seed=0, options={"level": "easy"})
    env.reset(seed=0, options={"start_distance": (3.0, 8.0), "goal_in_view": True, "distractors": 10})

``hard`` is the v0 task and the default: the camera at the origin facing a random way, the goal 8-20 m off,
20-100 other objects. A start ``start_distance`` metres from the goal's footprint is drawn free of obstacles
(and, with ``goal_in_view``, facing the goal with at least :data:`MIN_VISIBLE_PIXELS` of it showing in a 64-pixel
render, so it is not hidden behind another object), from the env's ``np_random``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lv2_env.signals.camera import Intrinsics, pose_from_state
from lv2_env.signals.collision import CAMERA_RADIUS, obstacles_at
from lv2_env.worlds import Renderer, Scene
from lv2_env.worlds.scene import NUM_OBJECTS_RANGE

LEVEL_OPTIONS = frozenset({"level", "start_distance", "goal_in_view", "distractors"})
MIN_VISIBLE_PIXELS = 6  # of a 64-pixel render: the goal counts as in view at the start
START_TRIES = 64
EYE_HEIGHT = 1.6  # metres: where every start stands the camera


@dataclass(frozen=True)
class TaskLevel:
    """``start_distance``: (min, max) metres from the goal's footprint, or None (the origin); ``goal_in_view``:
    start facing the goal (True), facing away from it (False) or any way (None); ``distractors``: other objects
    in the scene, or None (the scene's own 20-100)."""

    start_distance: tuple[float, float] | None = None
    goal_in_view: bool | None = None
    distractors: int | None = None


TASK_LEVELS = {
    "easy": TaskLevel(start_distance=(3.0, 8.0), goal_in_view=True, distractors=10),
    "medium": TaskLevel(start_distance=(6.0, 12.0), goal_in_view=True, distractors=None),
    "hard": TaskLevel(),
}
DEFAULT_LEVEL = "hard"


def level_from_options(options: dict[str, Any]) -> TaskLevel:
    """The :class:`TaskLevel` that reset ``options`` ask for; bad values raise ``ValueError`` naming them."""
    name = options.get("level", DEFAULT_LEVEL)
    if name not in TASK_LEVELS:
        raise ValueError(f"options['level'] must be one of {list(TASK_LEVELS)}, got {name!r}")
    level = TASK_LEVELS[name]
    distance = options.get("start_distance", level.start_distance)
    if distance is not None:
        try:
            low, high = (float(v) for v in distance)
        except (TypeError, ValueError):
            raise ValueError(f"options['start_distance'] must be (min, max) metres, got {distance!r}") from None
        if not 0.0 < low <= high <= 40.0:
            raise ValueError(f"options['start_distance'] must satisfy 0 < min <= max <= 40 m, got {distance!r}")
        distance = (low, high)
    in_view = options.get("goal_in_view", level.goal_in_view)
    if in_view is not None and not isinstance(in_view, (bool, np.bool_)):
        raise ValueError(f"options['goal_in_view'] must be True, False or None, got {in_view!r}")
    distractors = options.get("distractors", level.distractors)
    if distractors is not None:
        high = NUM_OBJECTS_RANGE[1] - 1
        if isinstance(distractors, bool) or not isinstance(distractors, (int, np.integer)) or not 0 <= distractors <= high:
            raise ValueError(f"options['distractors'] must be an integer in [0, {high}] or None, got {distractors!r}")
        distractors = int(distractors)
    return TaskLevel(distance, None if in_view is None else bool(in_view), distractors)


def _facing(state: np.ndarray, target: np.ndarray) -> float:
    """The yaw that looks from ``state`` at ``target`` (yaw 0 looks along +y, positive yaw turns left)."""
    return float(np.arctan2(-(target[0] - state[0]), target[1] - state[1]))


def level_start(scene: Scene, level: TaskLevel, intrinsics: Intrinsics, np_random: np.random.Generator) -> np.ndarray:
    """A start state ``(x, y, z, yaw, pitch, roll)`` for ``level`` in ``scene``: the origin facing a random way
    when the level sets no distance and no view, else a free point at the level's distance. ``ValueError`` if
    no such start is found in :data:`START_TRIES` draws."""
    goal = scene.objects[scene.landmark]
    if level.start_distance is None and level.goal_in_view is None:
        return np.array([0.0, 0.0, EYE_HEIGHT, float(np_random.uniform(-np.pi, np.pi)), 0.0, 0.0])
    sight = Renderer(scene, intrinsics.scaled(64, 64)) if level.goal_in_view is not None else None
    for _ in range(START_TRIES):
        if level.start_distance is None:
            state = np.zeros(6)
        else:
            angle = float(np_random.uniform(-np.pi, np.pi))
            reach = goal.footprint_radius + float(np_random.uniform(*level.start_distance))
            state = np.array([goal.center[0] + reach * np.cos(angle), goal.center[1] + reach * np.sin(angle),
                              0.0, 0.0, 0.0, 0.0])
        state[2] = EYE_HEIGHT
        if obstacles_at(scene, state[None, :3], CAMERA_RADIUS + 0.3)[0]:
            continue
        facing = _facing(state, goal.center)
        if level.goal_in_view is None:
            state[3] = float(np_random.uniform(-np.pi, np.pi))
            return state
        # In view: within a third of the field of view of the goal; out of view: at least 90 degrees away.
        offset = np_random.uniform(-0.2, 0.2) if level.goal_in_view else np_random.uniform(np.pi / 2, 3 * np.pi / 2)
        state[3] = float((facing + offset + np.pi) % (2 * np.pi) - np.pi)
        shown = int((sight.render(pose_from_state(state)[None], shade=False).object_id == scene.landmark + 1).sum())
        if (shown >= MIN_VISIBLE_PIXELS) == level.goal_in_view:
            return state
    raise ValueError(f"no start found for {level} in scene {scene.seed} after {START_TRIES} tries")
