"""Scripted camera paths: orbit, dolly, random walk, and replay of a recorded path.

A policy is a callable ``policy(observation, info) -> action`` with a ``reset(info)`` method. Each scripted
policy describes the motion it wants for the next clip as a relative path ``[F, 6]`` (forward, right, up, yaw,
pitch, roll with respect to the clip's first frame; see :mod:`lv2_env.signals.camera`), and :class:`ActionEncoder`
turns that path into an action of whatever mode the environment was made with. Policies see the world only
through the Gymnasium API: the observation, ``info`` and the environment's ``actions`` attribute (the action
definition, read with ``env.get_wrapper_attr("actions")``).
"""

from __future__ import annotations

import csv
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.rollout import JOURNAL_SUFFIX, journal_path, read_side_file
from lv2_env.signals.actions import DISCRETE_ACTIONS, CameraActions
from lv2_env.signals.camera import STATE_FIELDS, apply_motion, relative_motion, state_from_pose

POLICIES = ("orbit", "dolly", "random", "file")


class ActionEncoder:
    """Turns a wanted relative path ``[F, 6]`` into an action of the environment's mode.

    * trajectory: the path itself, limited to the action space;
    * continuous: the motion of the path's last frame, limited to the action space;
    * discrete: the macro closest to the wanted motion plus what earlier macros left undone (error diffusion),
      so that over many clips the camera follows the path as closely as the macros allow.
    """

    def __init__(self, actions: CameraActions) -> None:
        self.actions = actions
        self.space = actions.space
        self._residual = np.zeros(6)
        bounds = actions.limits.per_clip(actions.clip)
        self._scale = 1.0 / np.maximum(bounds, 1e-9)
        self._macros = np.stack([actions.macro_delta(i) for i in range(len(DISCRETE_ACTIONS))])  # [11, 6]

    def reset(self) -> None:
        self._residual = np.zeros(6)

    def encode(self, path: np.ndarray):
        path = np.asarray(path, dtype=np.float64)
        if self.actions.mode == "trajectory":
            path = path - path[0]
            return np.clip(path, self.space.low, self.space.high).astype(np.float32)
        if self.actions.mode == "continuous":
            return np.clip(path[-1] - path[0], self.space.low, self.space.high).astype(np.float32)
        wanted = self._residual + (path[-1] - path[0])
        errors = np.linalg.norm((wanted[None, :] - self._macros) * self._scale, axis=1)
        index = int(np.argmin(errors))
        self._residual = wanted - self._macros[index]
        return index


def _constant_velocity_path(velocity: np.ndarray, actions: CameraActions) -> np.ndarray:
    """Relative path ``[F, 6]`` of a constant velocity (per second) held for one clip."""
    times = np.arange(actions.clip.frames)[:, None] / actions.clip.fps  # [F, 1]
    return times * np.asarray(velocity, dtype=np.float64)[None, :]


@dataclass
class ScriptedPolicy(ABC):
    """Base class: subclasses say what path they want for the next clip in :meth:`path`."""

    actions: CameraActions
    encoder: ActionEncoder = field(init=False)

    def __post_init__(self) -> None:
        self.encoder = ActionEncoder(self.actions)

    @classmethod
    def for_env(cls, env: gym.Env, **kwargs) -> "ScriptedPolicy":
        return cls(actions=env.get_wrapper_attr("actions"), **kwargs)

    def reset(self, info: dict[str, Any] | None = None) -> None:
        self.encoder.reset()

    @abstractmethod
    def path(self, observation, info: dict[str, Any]) -> np.ndarray:
        """The wanted relative path ``[F, 6]`` of the next clip."""

    def __call__(self, observation, info: dict[str, Any]):
        return self.encoder.encode(self.path(observation, info))


@dataclass
class OrbitPolicy(ScriptedPolicy):
    """Circle a point ``radius`` metres ahead, facing it: strafe right while turning left.

    An object in the way stops the camera (the collision rule); the orbit then reverses direction.
    """

    radius: float = 6.0
    degrees_per_second: float = 14.0
    _direction: float = field(default=1.0, init=False)

    def reset(self, info=None):
        super().reset(info)
        self._direction = 1.0

    def path(self, observation, info):
        if info.get("collision"):
            self._direction = -self._direction
        omega = self._direction * np.radians(self.degrees_per_second)
        return _constant_velocity_path(np.array([0.0, omega * self.radius, 0.0, omega, 0.0, 0.0]), self.actions)


@dataclass
class DollyPolicy(ScriptedPolicy):
    """Move forward at ``speed`` m/s with a slow sideways sway of the heading; turn away after a collision."""

    speed: float = 1.5
    sway_degrees: float = 8.0
    sway_period: float = 8.0
    _time: float = field(default=0.0, init=False)

    def reset(self, info=None):
        super().reset(info)
        self._time = 0.0

    def path(self, observation, info):
        duration = self.actions.clip.duration
        yaw_rate = np.radians(self.sway_degrees) * 2 * np.pi / self.sway_period * np.cos(2 * np.pi * self._time / self.sway_period)
        self._time += duration
        if info.get("collision"):
            return _constant_velocity_path(np.array([0.0, 0.0, 0.0, 0.7, 0.0, 0.0]), self.actions)
        return _constant_velocity_path(np.array([self.speed, 0.0, 0.0, yaw_rate, 0.0, 0.0]), self.actions)


@dataclass
class RandomWalkPolicy(ScriptedPolicy):
    """A smooth random walk: forward speed and turn rate follow slow random processes; pitch relaxes to level.

    All randomness comes from ``seed``. After a collision it turns on the spot for one clip.
    """

    seed: int = 0
    speed: float = 1.2
    _rng: np.random.Generator = field(init=False)
    _turn: float = field(default=0.0, init=False)
    _pitch_rate: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._rng = np.random.default_rng(self.seed)

    def reset(self, info=None):
        super().reset(info)
        self._rng = np.random.default_rng(self.seed)
        self._turn = 0.0
        self._pitch_rate = 0.0

    def path(self, observation, info):
        # Ornstein-Uhlenbeck turn rate (rad/s) and a pitch rate that pulls the view back toward level.
        self._turn = 0.7 * self._turn + 0.3 * self._rng.normal(0.0, 0.5)
        pitch = float(info.get("camera_state", np.zeros(6))[4])
        self._pitch_rate = float(np.clip(-0.8 * pitch + self._rng.normal(0.0, 0.08), -0.3, 0.3))
        if info.get("collision"):
            return _constant_velocity_path(np.array([0.0, 0.0, 0.0, 0.7 * np.sign(self._turn or 1.0), 0.0, 0.0]), self.actions)
        forward = self.speed * (0.6 + 0.4 * self._rng.random())
        return _constant_velocity_path(np.array([forward, 0.0, 0.0, self._turn, self._pitch_rate, 0.0]), self.actions)


def load_states(path: str | Path) -> np.ndarray:
    """Per-frame camera states ``[N, 6]`` from a pose file.

    Accepted: the JSON side file written by ``lv2 rollout`` or ``lv2 play`` (``frames[i].state``), or the
    ``.jsonl`` journal a killed run leaves instead (:func:`agents.rollout.read_side_file`: its last line may be
    cut), a CSV with the columns ``x, y, z, yaw, pitch, roll``, or a ``.npy`` array of states ``[N, 6]`` or
    camera-to-world poses ``[N, 4, 4]``.
    """
    path = Path(path)
    if not path.exists():
        journal = journal_path(path)
        hint = f" (its run did not finish; its journal {str(journal)!r} does: pass that)" if journal.exists() else ""
        raise ValueError(f"pose file {str(path)!r} does not exist{hint}")
    if path.suffix in (".json", JOURNAL_SUFFIX):
        data = read_side_file(path)
        try:
            states = np.array([frame["state"] for frame in data["frames"]], dtype=np.float64)
        except (KeyError, TypeError) as err:
            raise ValueError(f"{path}: expected a JSON object with frames[i].state, as `lv2 rollout` writes") from err
    elif path.suffix == ".csv":
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        missing = [name for name in STATE_FIELDS if rows and name not in rows[0]]
        if not rows or missing:
            raise ValueError(f"{path}: expected CSV columns {list(STATE_FIELDS)}, missing {missing or 'all rows'}")
        states = np.array([[float(row[name]) for name in STATE_FIELDS] for row in rows])
    elif path.suffix == ".npy":
        array = np.load(path)
        if array.ndim == 3 and array.shape[1:] == (4, 4):
            states = np.stack([state_from_pose(p) for p in array])
        elif array.ndim == 2 and array.shape[1] == 6:
            states = array.astype(np.float64)
        else:
            raise ValueError(f"{path}: expected states [N, 6] or poses [N, 4, 4], got shape {array.shape}")
    else:
        raise ValueError(f"pose file must be .json, .csv or .npy (or a killed run's .jsonl journal), got {str(path)!r}")
    if len(states) < 2 or not np.all(np.isfinite(states)):
        raise ValueError(f"{path}: expected at least 2 finite states, got {len(states)}")
    # Angles read back from matrices wrap at +-pi; a replayed turn must not spin the other way round.
    states[:, 3:] = np.unwrap(states[:, 3:], axis=0)
    return states


@dataclass
class ReplayPolicy(ScriptedPolicy):
    """Follow recorded per-frame states, clip by clip; it holds still once the recording ends.

    The recording is taken relative to its first state, so it replays from wherever the camera starts; with the
    recorded start pose (``options["start_pose"]``) and ``action_mode="trajectory"`` it is reproduced exactly.
    """

    states: np.ndarray = field(default_factory=lambda: np.zeros((1, 6)))
    _cursor: int = field(default=0, init=False)
    _origin: np.ndarray | None = field(default=None, init=False)

    def reset(self, info=None):
        super().reset(info)
        self._cursor = 0
        self._origin = None if info is None else np.asarray(info["camera_state"], dtype=np.float64)

    def path(self, observation, info):
        frames = self.actions.clip.frames
        index = np.minimum(self._cursor + np.arange(frames), len(self.states) - 1)
        self._cursor += frames - 1
        recorded = self.states[index]  # [F, 6]
        # The wanted states, moved from the recording's start onto the camera's start pose.
        origin = self._origin if self._origin is not None else self.states[0]
        wanted = _move_recording(self.states[0], origin, recorded)
        return relative_motion(np.asarray(info["camera_state"], dtype=np.float64), wanted)


def _move_recording(recorded_start: np.ndarray, start: np.ndarray, recorded: np.ndarray) -> np.ndarray:
    """Recorded states re-expressed so that ``recorded_start`` maps onto ``start`` (same relative motion)."""
    return apply_motion(start, relative_motion(recorded_start, recorded))


def make_policy(name: str, env: gym.Env, seed: int = 0, pose_file: str | None = None) -> ScriptedPolicy:
    """A scripted policy by name: ``orbit``, ``dolly``, ``random`` or ``file`` (which needs ``pose_file``)."""
    if name == "orbit":
        return OrbitPolicy.for_env(env)
    if name == "dolly":
        return DollyPolicy.for_env(env)
    if name == "random":
        return RandomWalkPolicy.for_env(env, seed=seed)
    if name == "file":
        if pose_file is None:
            raise ValueError("policy 'file' needs a pose file (--pose-file PATH)")
        return ReplayPolicy.for_env(env, states=load_states(pose_file))
    raise ValueError(f"unknown policy {name!r}; expected one of {list(POLICIES)}")
