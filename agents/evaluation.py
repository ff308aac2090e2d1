"""Scoring policies on the navigation task: success within a step limit, return, steps, from fixed starts.

A policy is a ``policy(observation, info) -> action`` callable with ``reset(info, seed=...)``; each scene's episode
starts with ``env.reset(seed=scene_seed, options={"scene_seed": ..., "style": ...})``, so the same scene list gives
the same starts in ``LV2/World-v0`` and ``LV2/GroundTruth-v0``, and a policy's own randomness restarts from the
scene's seed. In a generated world (whose ``info`` carries the truth's render of the same path) an episode also
says what the agent was shown: the phantom share and the goal's colour error of the clips' last frames
(:mod:`lv2_env.evaluation.phantoms`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from lv2_env.envs.levels import DEFAULT_LEVEL
from lv2_env.evaluation.phantoms import goal_colour_error, phantom_counts

MAX_STEPS = 30  # the task: reach the goal within 30 steps (30 seconds of video)


@dataclass(frozen=True)
class Episode:
    scene_seed: int
    style: str
    success: bool
    episode_return: float
    steps: int
    final_distance: float
    collisions: int
    phantom_share: float | None = None  # generated worlds: of the open ground and sky, the share drawn with phantoms
    goal_colour_error: float | None = None  # generated worlds: the goal's colour error where it is in view (NaN: never)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "Episode":
        """The inverse of :meth:`as_dict`."""
        fields = {k: v for k, v in record.items() if k != "return"}
        return cls(**fields, episode_return=float(record["return"]))

    def as_dict(self) -> dict[str, Any]:
        record = {"scene_seed": self.scene_seed, "style": self.style, "success": self.success,
                  "return": self.episode_return, "steps": self.steps,  # unrounded: a resumed report is the same
                  "final_distance": self.final_distance, "collisions": self.collisions}
        if self.phantom_share is not None:
            record.update(phantom_share=self.phantom_share, goal_colour_error=self.goal_colour_error)
        return record


class ShownFrames:
    """What a generated world showed an agent, against the truth of the same path: each clip's last frame."""

    def __init__(self, goal_id: int) -> None:
        self.goal_id = goal_id
        self.phantom = self.open = 0
        self.goal_errors: list[float] = []

    def add(self, info: dict[str, Any]) -> None:
        frame, truth, ids = info["frames"][-1], info["ground_truth_frames"][-1], info["ground_truth_object_ids"][-1]
        phantom, open_total = phantom_counts(frame, truth, ids)
        self.phantom, self.open = self.phantom + phantom, self.open + open_total
        error = goal_colour_error(frame[None], truth[None], ids[None], self.goal_id)
        if np.isfinite(error):
            self.goal_errors.append(error)

    def scores(self) -> dict[str, float]:
        return {"phantom_share": self.phantom / self.open if self.open else float("nan"),
                "goal_colour_error": float(np.mean(self.goal_errors)) if self.goal_errors else float("nan")}


def run_episode(env: gym.Env, policy, scene_seed: int, style: str, max_steps: int = MAX_STEPS,
                level: str = DEFAULT_LEVEL) -> Episode:
    """One episode from the scene's fixed start at the task ``level`` (:mod:`lv2_env.envs.levels`), until the
    goal is reached or ``max_steps`` steps."""
    options = {"scene_seed": scene_seed, "style": style, "level": level}
    observation, info = env.reset(seed=scene_seed, options=options)
    policy.reset(info, seed=scene_seed)
    total, collisions, success, steps = 0.0, 0, False, 0
    shown = None
    for steps in range(1, max_steps + 1):
        observation, reward, terminated, truncated, info = env.step(policy(observation, info))
        if info.get("ground_truth_frames") is not None and info.get("ground_truth_object_ids") is not None:
            shown = shown or ShownFrames(env.get_wrapper_attr("scene").landmark + 1)
            shown.add(info)
        total += float(reward)
        collisions += bool(info["collision"])
        if terminated:
            success = True
            break
        if truncated:
            break
    return Episode(scene_seed, style, success, total, steps, float(info["goal_distance"]), collisions,
                   **(shown.scores() if shown is not None else {}))


def score_policy(env: gym.Env, policy, scenes: list[tuple[int, str]], max_steps: int = MAX_STEPS,
                 on_episode: Callable[[Episode], None] | None = None, done: list[Episode] | None = None,
                 desc: str = "", progress: bool = True, level: str = DEFAULT_LEVEL) -> dict[str, Any]:
    """Run ``policy`` on every scene at ``level`` (skipping the first ``len(done)``, already run); the summary with
    ``success`` (share of scenes reached), ``mean_return``, ``mean_steps`` and every episode."""
    episodes = list(done or [])
    started = time.perf_counter()
    for scene_seed, style in tqdm(scenes[len(episodes):], desc=desc, unit="episode", disable=not progress,
                                  initial=len(episodes), total=len(scenes)):
        episode = run_episode(env, policy, scene_seed, style, max_steps, level)
        episodes.append(episode)
        if on_episode is not None:
            on_episode(episode)
    return summarise(episodes, seconds=time.perf_counter() - started)


def summarise(episodes: list[Episode], seconds: float | None = None) -> dict[str, Any]:
    summary = {
        "episodes": len(episodes),
        "success": float(np.mean([e.success for e in episodes])) if episodes else float("nan"),
        "mean_return": float(np.mean([e.episode_return for e in episodes])) if episodes else float("nan"),
        "mean_steps": float(np.mean([e.steps for e in episodes])) if episodes else float("nan"),
        "per_episode": [e.as_dict() for e in episodes],
    }
    shown = [e for e in episodes if e.phantom_share is not None]
    if shown:
        summary["phantom_share"] = float(np.nanmean([e.phantom_share for e in shown]))
        errors = [e.goal_colour_error for e in shown if np.isfinite(e.goal_colour_error)]
        summary["goal_colour_error"] = float(np.mean(errors)) if errors else float("nan")
    if seconds is not None:
        summary["seconds_this_run"] = round(seconds, 1)
    return summary


def ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their mean rank (what Spearman's correlation ranks with)."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    ranked = np.empty(len(values))
    ranked[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        tied = values == value
        ranked[tied] = ranked[tied].mean()
    return ranked


def pearson(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def spearman(a, b) -> float:
    return pearson(ranks(a), ranks(b))


class RandomPolicy:
    """Uniform over the discrete actions, from a seeded stream (restarted per scene)."""

    def __init__(self, num_actions: int) -> None:
        self.num_actions = num_actions
        self._rng = np.random.default_rng(0)

    def reset(self, info=None, seed: int | None = None) -> None:
        self._rng = np.random.default_rng(seed)

    def __call__(self, observation, info) -> int:
        return int(self._rng.integers(self.num_actions))
