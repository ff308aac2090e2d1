"""A privileged teacher for the navigation task: it knows the true pose, the goal and every obstacle.

:class:`GoalTeacher` is the ceiling the pixel agents are measured against and the source of their labels. It
plans on a 2D grid of the scene: cells whose point at eye height lies within :data:`CLEARANCE` of an object are
blocked (the collision rule stops the camera sphere there), and a distance field to the goal's ring (the cells
within the env's goal radius of the goal's footprint) is relaxed over the free cells. At a camera state it looks
ahead along the field's descent to the farthest point in a straight free line, turns toward it when the heading
is off by more than :data:`HEADING_TOLERANCE`, and walks forward otherwise. Pitch and height drift (which only a
student's mistakes cause) are corrected first.

It reads the world only through the Gymnasium API: ``env.get_wrapper_attr("scene")`` (the privileged part),
``goal_radius`` and ``actions``, and ``info["camera_state"]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from lv2_env.envs.levels import EYE_HEIGHT
from lv2_env.envs.rewards import GOAL_RADIUS
from lv2_env.signals.actions import DISCRETE_ACTIONS, CameraActions
from lv2_env.signals.camera import poses_from_states
from lv2_env.signals.collision import CAMERA_RADIUS, resolve_collisions
from lv2_env.worlds import Renderer

CELL = 0.25  # metres per grid cell
GRID_HALF = 40.0  # metres: the grid spans [-GRID_HALF, GRID_HALF]^2 (objects lie within 32 m of the origin)
CLEARANCE = CAMERA_RADIUS + 0.3  # metres kept from every surface: the camera sphere plus a margin for sway
HEADING_TOLERANCE = np.radians(20.0)  # a turn macro is 30 degrees: a smaller error is walked, not turned
LOOKAHEAD = 3.0  # metres along the planned path to aim at
PITCH_TOLERANCE = np.radians(8.0)
GRAZE_SEARCH = 1.5  # metres searched for a reachable cell around a start inside an obstacle's clearance
SEARCH_MODES = ("toward", "left", "left-keep")
VISIBILITY_SIZE = 64  # pixels per side of the render that decides whether the goal is in sight (a student's view)
MIN_GOAL_PIXELS = 3  # of that render: fewer and the goal does not count as seen
HEIGHT_TOLERANCE = 0.35  # metres from eye height

ACTION = {name: i for i, name in enumerate(DISCRETE_ACTIONS)}
# The actions the noisy teacher draws its mistakes from (walking and turning: what an agent on the ground does).
MOVES = tuple(ACTION[n] for n in ("forward", "back", "strafe_left", "strafe_right", "turn_left", "turn_right"))
PLAN_CACHE_SCENES = 64  # plans kept per process (~1 MB each): a benchmark's policies share them scene by scene
_PLANS: dict[tuple, "GoalPlan"] = {}
_NEIGHBOURS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


def _wrap(angle: float) -> float:
    return float((angle + np.pi) % (2 * np.pi) - np.pi)


def heading_to(dx: float, dy: float) -> float:
    """The yaw that faces the horizontal direction ``(dx, dy)`` (yaw 0 looks along +y, positive yaw turns left)."""
    return float(np.arctan2(-dx, dy))


@dataclass
class GoalPlan:
    """A scene's free cells and distance field (metres of path to the goal ring; inf where it cannot be reached)."""

    free: np.ndarray  # [N, N] bool
    distance: np.ndarray  # [N, N] float64

    @classmethod
    def build(cls, scene, goal_radius: float) -> "GoalPlan":
        n = int(round(2 * GRID_HALF / CELL))
        centres = -GRID_HALF + CELL * (np.arange(n) + 0.5)
        xs, ys = np.meshgrid(centres, centres)  # [N, N]: row = y, column = x
        points = np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, EYE_HEIGHT)], axis=1)
        gap, _ = scene.signed_distance(points)
        free = (gap > CLEARANCE).reshape(n, n)
        goal = scene.objects[scene.landmark]
        to_goal = np.hypot(xs - goal.center[0], ys - goal.center[1]) - goal.footprint_radius
        # The ring a little inside the goal radius, so a step that ends there counts after float rounding.
        ring = free & (to_goal <= max(goal_radius - 0.25, CLEARANCE + CELL))
        distance = np.where(ring, 0.0, np.inf)
        # Relax the field over the free cells (8 neighbours) until nothing changes: a vectorised Dijkstra.
        step = {(dy, dx): CELL * float(np.hypot(dy, dx)) for dy, dx in _NEIGHBOURS}
        for _ in range(4 * n):
            padded = np.pad(distance, 1, constant_values=np.inf)
            best = distance.copy()
            for (dy, dx), cost in step.items():
                best = np.minimum(best, padded[1 + dy:1 + dy + n, 1 + dx:1 + dx + n] + cost)
            best = np.where(free, best, np.inf)
            if np.array_equal(best, distance):
                break
            distance = best
        return cls(free=free, distance=distance)

    def cell(self, x: float, y: float) -> tuple[int, int]:
        n = self.free.shape[0]
        col = int(np.clip(np.floor((x + GRID_HALF) / CELL), 0, n - 1))
        row = int(np.clip(np.floor((y + GRID_HALF) / CELL), 0, n - 1))
        return row, col

    def centre(self, row: int, col: int) -> tuple[float, float]:
        return -GRID_HALF + CELL * (col + 0.5), -GRID_HALF + CELL * (row + 0.5)

    def path_from(self, x: float, y: float, metres: float) -> list[tuple[int, int]]:
        """Cells along the field's steepest descent from ``(x, y)``, about ``metres`` of them. A start in a blocked
        cell (a camera grazing an object) starts from the nearest reachable cell within :data:`GRAZE_SEARCH` metres."""
        row, col = self.cell(x, y)
        if not np.isfinite(self.distance[row, col]):
            reach = int(GRAZE_SEARCH / CELL)
            r0, c0 = max(0, row - reach), max(0, col - reach)
            window = self.distance[r0:row + reach + 1, c0:col + reach + 1]
            if not np.isfinite(window).any():
                return []
            rr, cc = np.nonzero(np.isfinite(window))
            k = int(np.argmin((rr + r0 - row) ** 2 + (cc + c0 - col) ** 2))
            row, col = int(rr[k] + r0), int(cc[k] + c0)
        cells = [(row, col)]
        n = self.free.shape[0]
        for _ in range(int(metres / CELL)):
            if self.distance[row, col] == 0.0:
                break
            options = [(self.distance[row + dy, col + dx], row + dy, col + dx) for dy, dx in _NEIGHBOURS
                       if 0 <= row + dy < n and 0 <= col + dx < n]
            _, row, col = min(options)
            cells.append((row, col))
        return cells

    def line_is_free(self, x0: float, y0: float, x1: float, y1: float) -> bool:
        samples = max(2, int(np.hypot(x1 - x0, y1 - y0) / (0.5 * CELL)) + 1)
        for t in np.linspace(0.0, 1.0, samples):
            if not self.free[self.cell(x0 + t * (x1 - x0), y0 + t * (y1 - y0))]:
                return False
        return True


@dataclass
class GoalTeacher:
    """The privileged teacher: ``teacher(observation, info) -> action`` (a ``Discrete(11)`` index), with
    ``reset(info)``; :meth:`act` gives its action at any camera state of the current scene, :meth:`labels` at
    every state of a clip. ``noise`` > 0 replaces that share of its actions by a random walking or turning action
    drawn from ``seed`` (the "teacher with action noise" of the benchmark, and the behaviour that collects data).

    ``search``: what it does while the goal is out of sight. ``"toward"`` (default, the ceiling) turns toward it
    the shorter way, which only its privileged knowledge tells; ``"left"`` turns left until the goal shows in the
    frame (at least :data:`MIN_GOAL_PIXELS` of a :data:`VISIBILITY_SIZE`-pixel render) and only then follows its
    plan, which a student seeing the frame alone can learn to copy; ``"left-keep"`` searches the same way and,
    once the goal is in sight, walks on rather than turn it out of view (a turn the left search would undo: the
    left-right loop of ``"left"``)."""

    env: gym.Env
    noise: float = 0.0
    seed: int = 0
    search: str = "toward"
    _plan: GoalPlan | None = field(default=None, init=False)
    _rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.noise <= 1.0:
            raise ValueError(f"noise must be a probability in [0, 1], got {self.noise!r}")
        if self.search not in SEARCH_MODES:
            raise ValueError(f"search must be one of {list(SEARCH_MODES)}, got {self.search!r}")
        self.sight: Renderer | None = None  # the goal's visibility render, at VISIBILITY_SIZE pixels
        actions: CameraActions = self.env.get_wrapper_attr("actions")
        if actions.mode != "discrete":
            raise ValueError(f"the teacher acts with the discrete macros; make the env with action_mode='discrete', "
                             f"got {actions.mode!r}")
        self._rng = np.random.default_rng(self.seed)

    @property
    def goal_radius(self) -> float:
        radius = self.env.get_wrapper_attr("world").goal_radius
        return GOAL_RADIUS if radius is None else float(radius)

    def reset(self, info: dict[str, Any] | None = None, seed: int | None = None) -> None:
        """Plan for the env's current scene (after ``env.reset``); ``seed`` restarts the noise."""
        scene = self.env.get_wrapper_attr("scene")
        if scene is None:
            raise ValueError("the teacher needs a procedural scene (a world from a picture has no goal)")
        key = (scene.seed, scene.style.name, len(scene.objects), self.goal_radius)
        if key not in _PLANS:
            if len(_PLANS) >= PLAN_CACHE_SCENES:
                _PLANS.pop(next(iter(_PLANS)))
            _PLANS[key] = GoalPlan.build(scene, self.goal_radius)
        self._plan = _PLANS[key]
        intrinsics = self.env.get_wrapper_attr("intrinsics").scaled(VISIBILITY_SIZE, VISIBILITY_SIZE)
        self.sight = Renderer(scene, intrinsics)
        if seed is not None:
            self._rng = np.random.default_rng(seed)

    def __call__(self, observation, info: dict[str, Any]) -> int:
        if self._plan is None:
            self.reset(info)
        if self.noise > 0.0 and self._rng.random() < self.noise:
            return int(self._rng.choice(MOVES))
        return self.act(np.asarray(info["camera_state"], dtype=np.float64))

    def goal_masks(self, states: np.ndarray) -> np.ndarray:
        """The goal's pixels in the frame of each camera state ``[N, 6]``: bool ``[N, S, S]`` at
        :data:`VISIBILITY_SIZE` pixels (from the scene's object ids; what the pixel agents learn to segment)."""
        if self.sight is None:
            raise RuntimeError("call reset() after env.reset() before goal_masks()")
        scene = self.env.get_wrapper_attr("scene")
        ids = self.sight.render(poses_from_states(np.asarray(states, dtype=np.float64)), shade=False).object_id
        return ids == scene.landmark + 1

    def goal_in_sight(self, states: np.ndarray, masks: np.ndarray | None = None) -> np.ndarray:
        """Whether the goal shows in the frame of each camera state ``[N, 6]`` (at least :data:`MIN_GOAL_PIXELS`
        of its :meth:`goal_masks`, given or rendered)."""
        masks = self.goal_masks(states) if masks is None else masks
        return masks.sum(axis=(1, 2)) >= MIN_GOAL_PIXELS

    def labels(self, states: np.ndarray, in_sight: np.ndarray | None = None) -> list[int]:
        """The teacher's action at each camera state ``[N, 6]`` (``in_sight``: whether the goal shows at each,
        rendered once for all if None and ``search="left"``)."""
        states = np.asarray(states, dtype=np.float64)
        if self.search != "left":
            in_sight = [None] * len(states)
        elif in_sight is None:
            in_sight = self.goal_in_sight(states)
        return [self.act(state, None if seen is None else bool(seen)) for state, seen in zip(states, in_sight)]

    def act(self, state: np.ndarray, goal_in_sight: bool | None = None) -> int:
        """The teacher's action at camera state ``(x, y, z, yaw, pitch, roll)`` in the current scene
        (``goal_in_sight``: whether the goal shows there, for ``search="left"``; rendered if None)."""
        plan = self._plan
        if plan is None:
            raise RuntimeError("call reset() after env.reset() before act()")
        x, y, z, yaw, pitch = (float(v) for v in state[:5])
        if abs(pitch) > PITCH_TOLERANCE:
            return ACTION["look_down"] if pitch > 0 else ACTION["look_up"]
        if abs(z - EYE_HEIGHT) > HEIGHT_TOLERANCE:
            return ACTION["sink"] if z > EYE_HEIGHT else ACTION["rise"]
        if self.search != "toward":
            if goal_in_sight is None:
                goal_in_sight = bool(self.goal_in_sight(np.asarray(state)[None])[0])
            if not goal_in_sight:
                return ACTION["turn_left"]
        cells = plan.path_from(x, y, LOOKAHEAD)
        if len(cells) < 2:  # at the goal ring already, or nowhere to go: face the goal
            goal = self.env.get_wrapper_attr("scene")
            goal = goal.objects[goal.landmark]
            target = (float(goal.center[0]), float(goal.center[1]))
        else:
            target = plan.centre(*cells[1])
            for cell in reversed(cells[1:]):
                cx, cy = plan.centre(*cell)
                if plan.line_is_free(x, y, cx, cy):
                    target = (cx, cy)
                    break
        error = _wrap(heading_to(target[0] - x, target[1] - y) - yaw)
        scene = self.env.get_wrapper_attr("scene")
        actions: CameraActions = self.env.get_wrapper_attr("actions")
        state = np.asarray(state, dtype=np.float64)

        def forward_collides() -> bool:
            _, report = resolve_collisions(scene, actions.to_trajectory(ACTION["forward"]).states(state))
            return bool(report.collided)

        if abs(error) > HEADING_TOLERANCE:
            turn = ACTION["turn_left"] if error > 0 else ACTION["turn_right"]
            if self.search == "left-keep" and not forward_collides():
                # A turn that loses the goal from view would be undone by the left search (a loop a student
                # copies): walk on while the goal stays in sight, and turn once the plan is clear of it.
                after = actions.to_trajectory(turn).states(state)[-1]
                if not self.goal_in_sight(after[None])[0]:
                    return ACTION["forward"]
            return turn
        if forward_collides():  # walking would stop against something: turn toward the path instead
            return ACTION["turn_left"] if error >= 0 else ACTION["turn_right"]
        return ACTION["forward"]
