"""Camera actions: what an agent sends to ``step`` and the per-frame camera path it becomes.

A step generates one clip of ``F = 4k + 1`` frames at 16 fps. Consecutive clips share one frame (the last frame
of a clip is the first of the next, as in LongVie 2), so a step advances ``F - 1`` frames. Every action mode is
turned into a :class:`CameraTrajectory`: the relative motion of each of the ``F`` frames with respect to the
clip's first frame, in the ``(forward, right, up, yaw, pitch, roll)`` convention of :mod:`lv2_env.signals.camera`.

Action modes (the ``action_mode`` argument of the environments):

* ``"discrete"``: ``Discrete(11)``, keyboard-like macros (see :data:`DISCRETE_ACTIONS`), each a constant
  velocity held for the clip.
* ``"continuous"``: ``Box(6)``, the change of ``(forward, right, up, yaw, pitch, roll)`` over the clip, in
  metres and radians, within ``±`` :class:`MotionLimits` times the clip's duration.
* ``"trajectory"``: ``Box((F, 6))``, the explicit relative motion of every frame. Row 0 is the shared first
  frame and must be zero; row ``f`` is bounded like a continuous action.

Discrete and continuous actions are interpolated *linearly in time* (constant velocity): the path is smooth
inside a clip, and repeating an action continues the motion without stopping at clip boundaries, which an
ease-in/ease-out profile would not do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from lv2_env.signals.camera import MOTION_FIELDS, apply_motion, poses_from_states

ACTION_MODES = ("discrete", "continuous", "trajectory")

DISCRETE_ACTIONS = (
    "noop",
    "forward",
    "back",
    "strafe_left",
    "strafe_right",
    "turn_left",
    "turn_right",
    "look_up",
    "look_down",
    "rise",
    "sink",
)

# Velocities of the discrete macros per second of video: (forward m, right m, up m, yaw rad, pitch rad, roll rad).
_MACRO_VELOCITY = {
    "noop": (0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    "forward": (1.5, 0.0, 0.0, 0.0, 0.0, 0.0),
    "back": (-1.5, 0.0, 0.0, 0.0, 0.0, 0.0),
    "strafe_left": (0.0, -1.0, 0.0, 0.0, 0.0, 0.0),
    "strafe_right": (0.0, 1.0, 0.0, 0.0, 0.0, 0.0),
    "turn_left": (0.0, 0.0, 0.0, np.pi / 6, 0.0, 0.0),
    "turn_right": (0.0, 0.0, 0.0, -np.pi / 6, 0.0, 0.0),
    "look_up": (0.0, 0.0, 0.0, 0.0, np.pi / 12, 0.0),
    "look_down": (0.0, 0.0, 0.0, 0.0, -np.pi / 12, 0.0),
    "rise": (0.0, 0.0, 0.75, 0.0, 0.0, 0.0),
    "sink": (0.0, 0.0, -0.75, 0.0, 0.0, 0.0),
}


@dataclass(frozen=True)
class ClipSpec:
    """Length and frame rate of one generated clip."""

    frames: int = 17
    fps: int = 16

    def __post_init__(self) -> None:
        if not isinstance(self.frames, (int, np.integer)) or self.frames < 5 or (self.frames - 1) % 4 != 0:
            raise ValueError(f"clip frames must be 4k+1 with k >= 1 (5, 9, 13, 17, ...), got {self.frames!r}")
        if not isinstance(self.fps, (int, np.integer)) or self.fps < 1:
            raise ValueError(f"fps must be a positive integer, got {self.fps!r}")

    @property
    def new_frames(self) -> int:
        """Frames a step adds: the first frame of a clip is the last frame of the previous one."""
        return self.frames - 1

    @property
    def duration(self) -> float:
        """Seconds of video one step advances."""
        return self.new_frames / self.fps


@dataclass(frozen=True)
class MotionLimits:
    """Largest change per second of video along ``(forward, right, up, yaw, pitch, roll)``, metres and radians."""

    per_second: tuple[float, float, float, float, float, float] = (2.0, 2.0, 1.0, 0.8, 0.4, 0.4)

    def per_clip(self, clip: ClipSpec) -> np.ndarray:
        return np.asarray(self.per_second, dtype=np.float64) * clip.duration


@dataclass(frozen=True)
class CameraTrajectory:
    """Relative motion ``[F, 6]`` of each frame of a clip with respect to its first frame (row 0 is zero)."""

    relative: np.ndarray

    def states(self, start_state: np.ndarray) -> np.ndarray:
        """Absolute camera states ``[F, 6]`` when the clip starts at ``start_state``."""
        return apply_motion(start_state, self.relative)

    def poses(self, start_state: np.ndarray) -> np.ndarray:
        """Camera-to-world poses ``[F, 4, 4]`` when the clip starts at ``start_state``."""
        return poses_from_states(self.states(start_state))


def _linear_path(delta: np.ndarray, frames: int) -> np.ndarray:
    fractions = np.linspace(0.0, 1.0, frames)[:, None]  # [F, 1]
    return fractions * np.asarray(delta, dtype=np.float64)[None, :]  # [F, 6]


@dataclass(frozen=True)
class CameraActions:
    """The action space of one mode, and the conversion of its actions into camera trajectories."""

    mode: str = "discrete"
    clip: ClipSpec = field(default_factory=ClipSpec)
    limits: MotionLimits = field(default_factory=MotionLimits)

    def __post_init__(self) -> None:
        if self.mode not in ACTION_MODES:
            raise ValueError(f"unknown action_mode {self.mode!r}; expected one of {list(ACTION_MODES)}")

    @property
    def space(self) -> gym.spaces.Space:
        bound = self.limits.per_clip(self.clip).astype(np.float32)
        if self.mode == "discrete":
            return gym.spaces.Discrete(len(DISCRETE_ACTIONS))
        if self.mode == "continuous":
            return gym.spaces.Box(-bound, bound, dtype=np.float32)
        high = np.repeat(bound[None, :], self.clip.frames, axis=0)
        high[0] = 0.0  # the shared first frame does not move
        return gym.spaces.Box(-high, high, dtype=np.float32)

    def to_trajectory(self, action) -> CameraTrajectory:
        """Validate ``action`` and expand it into the clip's per-frame path; bad actions raise ``ValueError``."""
        if self.mode == "discrete":
            return CameraTrajectory(_linear_path(self.macro_delta(self._discrete_index(action)), self.clip.frames))
        values = self._finite_array(action)
        if self.mode == "continuous":
            self._check_box(values, (6,))
            return CameraTrajectory(_linear_path(values, self.clip.frames))
        self._check_box(values, (self.clip.frames, 6))
        return CameraTrajectory(values.copy())

    def macro_delta(self, index: int) -> np.ndarray:
        """Relative motion over one clip of the discrete macro ``index``."""
        return np.asarray(_MACRO_VELOCITY[DISCRETE_ACTIONS[index]]) * self.clip.duration

    def _discrete_index(self, action) -> int:
        arr = np.asarray(action)
        if arr.ndim != 0 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(
                f"discrete action must be an integer in [0, {len(DISCRETE_ACTIONS) - 1}], "
                f"got {action!r} (dtype {arr.dtype}, shape {arr.shape})"
            )
        index = int(arr)
        if not 0 <= index < len(DISCRETE_ACTIONS):
            raise ValueError(f"discrete action must be in [0, {len(DISCRETE_ACTIONS) - 1}], got {index}")
        return index

    def _finite_array(self, action) -> np.ndarray:
        try:
            values = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{self.mode} action must be an array of numbers, got {action!r}") from err
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{self.mode} action must be finite, got NaN or inf in {values.tolist()}")
        return values

    def _check_box(self, values: np.ndarray, shape: tuple[int, ...]) -> None:
        if values.shape != shape:
            raise ValueError(f"{self.mode} action must have shape {shape}, got shape {values.shape}")
        space = self.space
        # The Box is float32: compare against its bounds with float32 slack so a sampled action always passes.
        tol = 1e-6 * np.maximum(1.0, np.abs(space.high))
        over = (values < space.low - tol) | (values > space.high + tol)
        if np.any(over):
            idx = tuple(int(i) for i in np.argwhere(over)[0])
            field_name = MOTION_FIELDS[idx[-1]]
            where = f"frame {idx[0]} " if len(idx) == 2 else ""
            raise ValueError(
                f"{self.mode} action {where}{field_name} must be in [{space.low[idx]:.4g}, {space.high[idx]:.4g}], "
                f"got {values[idx]:.6g}"
            )
