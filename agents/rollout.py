"""Run a policy in an environment for a given number of seconds and record it: an MP4 plus a JSON side file.

The side file holds, for every frame of the video, its camera state ``(x, y, z, yaw, pitch, roll)``, its 4x4
camera-to-world pose, the caption, the prompt it was generated with, and the reward of the step that produced
it; and for every step the reward, collision, goal distance, wall time, the env's own timing of its parts
(``last_timings`` of a generated world) and the process's resident memory; its header says the precision and
torch threads a generated world computed with. ``agents.scripted.ReplayPolicy`` reads it back.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from lv2_env.media.video import Mp4Writer

Policy = Callable[[Any, dict], Any]


@dataclass(frozen=True)
class RolloutSummary:
    video: Path
    side_file: Path
    frames: int
    steps: int
    seconds_of_video: float
    wall_seconds: float
    total_reward: float
    collisions: int


def steps_for_seconds(seconds: float, clip_frames: int, fps: int) -> int:
    """Steps needed for ``seconds`` of video when each step adds ``clip_frames - 1`` frames."""
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds!r}")
    return max(1, math.ceil(seconds * fps / (clip_frames - 1)))


def _frame_record(index: int, fps: int, pose: np.ndarray, state: np.ndarray, info: dict, step: int, reward: float) -> dict:
    return {
        "index": index,
        "time": index / fps,
        "step": step,
        "state": [float(v) for v in state],
        "pose": np.asarray(pose, dtype=float).round(6).tolist(),
        "caption": info["caption"],
        "prompt": info.get("prompt", info["caption"]),
        "reward": reward,
    }


def resident_memory_mb() -> float:
    """This process's resident set size in MB (Linux /proc; NaN elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def _env_attribute(env: gym.Env, name: str) -> Any:
    """An attribute of the env or its wrappers (``precision``, ``torch_threads``), None where it has none."""
    try:
        return env.get_wrapper_attr(name)
    except AttributeError:
        return None


def _env_timings(env: gym.Env) -> dict[str, float]:
    try:
        return {k: round(float(v), 4) for k, v in env.get_wrapper_attr("last_timings").items()}
    except AttributeError:  # the ground truth has no parts worth timing
        return {}


def run_rollout(
    env: gym.Env,
    policy: Policy,
    steps: int,
    video_path: str | Path,
    side_path: str | Path | None = None,
    seed: int | None = None,
    options: dict | None = None,
    metadata: dict | None = None,
    progress: bool = True,
) -> RolloutSummary:
    """Reset ``env``, run ``policy`` for ``steps`` clips, write every frame to ``video_path`` and the side file.

    The episode must last ``steps`` steps: make the environment without termination (``goal_radius=None``)
    and with ``max_episode_steps >= steps``; an episode that ends early stops the rollout with what it wrote.
    """
    video_path = Path(video_path)
    side_path = Path(side_path) if side_path is not None else video_path.with_suffix(".json")
    video_path.parent.mkdir(parents=True, exist_ok=True)
    fps = int(env.metadata.get("render_fps", 16))
    frames_log: list[dict] = []
    steps_log: list[dict] = []
    started = time.perf_counter()

    observation, info = env.reset(seed=seed, options=options)
    if hasattr(policy, "reset"):
        policy.reset(info)
    header = {
        "caption": info["caption"],
        "style": info.get("style"),
        "scene_seed": info.get("scene_seed"),
        "goal": info.get("goal"),
        "fps": fps,
        "seed": seed,
        "precision": _env_attribute(env, "precision"),  # what a generated world computes in
        "torch_threads": _env_attribute(env, "torch_threads"),
        **(metadata or {}),
    }
    with Mp4Writer(video_path, fps=fps) as writer:
        writer.write(info["frames"][-1])
        frames_log.append(_frame_record(0, fps, info["camera_pose"], info["camera_state"], info, 0, 0.0))
        bar = tqdm(range(steps), desc=f"rollout {video_path.name}", unit="clip", disable=not progress)
        for step in bar:
            tick = time.perf_counter()
            action = policy(observation, info)
            observation, reward, terminated, truncated, info = env.step(action)
            new_frames = info["frames"][1:]
            writer.write(new_frames)
            for pose, state in zip(info["poses"][1:], info["states"][1:]):
                index = len(frames_log)
                frames_log.append(_frame_record(index, fps, pose, state, info, step + 1, float(reward)))
            steps_log.append(
                {
                    "step": step + 1,
                    "action": np.asarray(action).tolist(),
                    "reward": float(reward),
                    "collision": bool(info["collision"]),
                    "obstacle": info["obstacle"],
                    "goal_distance": float(info["goal_distance"]),
                    "seconds": time.perf_counter() - tick,
                    "timings": _env_timings(env),
                    "rss_mb": round(resident_memory_mb(), 1),
                }
            )
            bar.set_postfix(reward=f"{reward:+.2f}", goal=f"{info['goal_distance']:.1f}m")
            if terminated or truncated:
                break
    wall = time.perf_counter() - started
    side = {**header, "frames": frames_log, "steps": steps_log, "wall_seconds": wall}
    side_path.write_text(json.dumps(side, indent=1))
    return RolloutSummary(
        video=video_path,
        side_file=side_path,
        frames=len(frames_log),
        steps=len(steps_log),
        seconds_of_video=(len(frames_log) - 1) / fps,
        wall_seconds=wall,
        total_reward=float(sum(s["reward"] for s in steps_log)),
        collisions=sum(s["collision"] for s in steps_log),
    )

