"""Run a policy in an environment for a given number of seconds and record it: an MP4 plus a JSON side file.

The side file holds, for every frame of the video, its camera state ``(x, y, z, yaw, pitch, roll)``, its 4x4
camera-to-world pose, the caption, the prompt it was generated with, and the reward of the step that produced
it; and for every step the reward, collision, goal distance, wall time, the env's own timing of its parts
(``last_timings`` of a generated world) and the process's resident memory; its header says the precision and
torch threads a generated world computed with. ``agents.scripted.ReplayPolicy`` reads it back.

Nothing is lost when the process is killed (:class:`SideFile`): while the rollout runs, every clip's records are
appended to a JSON Lines journal beside the side file (``out.jsonl`` for ``out.json``), and the side file itself,
one JSON object, is written when the rollout ends. A killed rollout leaves the journal; :func:`read_side_file`
(and so ``--policy file``) reads either. Appending costs a constant ~8 KB per clip, where rewriting the whole
JSON after every clip grows quadratically: for a 5-minute rollout (300 clips, 4,801 frames) the side file is
3.3 MB, and rewriting it after every clip took 25 s in all (489 MB written; the last rewrite 0.17 s), against
0.05 s for the 300 appends and 0.19 s for the one final write (measured on a shared 2-core CPU).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from lv2_env.media.video import Mp4Writer

Policy = Callable[[Any, dict], Any]
JOURNAL_SUFFIX = ".jsonl"


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


def journal_path(side_path: str | Path) -> Path:
    """The journal beside a side file: ``out.json`` -> ``out.jsonl``; any other name gets ``.jsonl`` appended."""
    side_path = Path(side_path)
    if side_path.suffix == ".json":
        return side_path.with_suffix(JOURNAL_SUFFIX)
    return side_path.with_name(side_path.name + JOURNAL_SUFFIX)


class SideFile:
    """A JSON side file written so that killing the process loses no finished clip.

    While it is open its records go to a JSON Lines journal (:func:`journal_path`), one line per :meth:`add`,
    each handed to the OS as it is written (a SIGKILL or the OOM killer loses none of them; a power cut may):

    * line 1: ``{"header": {...}}``, what describes the whole run;
    * then one line per clip: ``{"frames": [frame records], "step": {step record}}`` (no ``step`` on the line
      of the reset's first frame).

    :meth:`close` writes the side file, ``{**header, "frames": [...], "steps": [...], **summary}``, through a
    temporary file and ``os.replace``, and only then removes the journal: at every moment one of the two holds
    every finished clip. A side file of the same name left by an earlier run is removed when this one opens, so
    that it cannot pass for this run's. :func:`read_side_file` reads the side file or the journal.
    """

    def __init__(self, path: str | Path, header: dict[str, Any]) -> None:
        self.path = Path(path)
        self.journal = journal_path(self.path)
        self.header = dict(header)
        self.frames: list[dict] = []
        self.steps: list[dict] = []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)
        self._handle = self.journal.open("w", encoding="utf-8")
        self._append({"header": self.header})

    @property
    def closed(self) -> bool:
        return self._handle.closed

    def add(self, frames: list[dict], step: dict | None = None) -> None:
        """Append one clip: its frame records and, after a step, the step's record."""
        if self.closed:
            raise ValueError(f"cannot add to {str(self.path)!r}: expected an open side file, got a closed one")
        self.frames.extend(frames)
        record: dict[str, Any] = {"frames": frames}
        if step is not None:
            self.steps.append(step)
            record["step"] = step
        self._append(record)

    def _append(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps(record) + "\n")
        self._handle.flush()  # to the OS now: what a killed process had written stays

    def close(self, summary: dict[str, Any] | None = None) -> Path:
        """Write the side file (``summary`` adds its last fields) and remove the journal. Idempotent."""
        if self.closed:
            return self.path
        self._handle.close()
        whole = {**self.header, "frames": self.frames, "steps": self.steps, **(summary or {})}
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps(whole, indent=1))
        os.replace(temporary, self.path)
        self.journal.unlink(missing_ok=True)
        return self.path


def _json_or_none(line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def read_side_file(path: str | Path) -> dict[str, Any]:
    """A side file as one dict ``{**header, "frames": [...], "steps": [...], ...}``.

    Reads the JSON object a run writes when it ends (``finished`` says whether it got to its end), or the JSON
    Lines journal a killed run leaves (:class:`SideFile`): every complete clip, a last line cut mid-write left
    out, marked ``"finished": False``. Side files of earlier versions (one JSON object without ``finished``)
    read as they are. Raises ValueError for anything else.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    first = _json_or_none(lines[0]) if lines else None
    if isinstance(first, dict) and set(first) == {"header"}:
        return _read_journal(path, first["header"], lines[1:])
    try:
        side = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: expected a side file (a JSON object, or a journal of JSON lines starting with "
                         f"{{\"header\": ...}}), got unreadable JSON ({err})") from None
    if not isinstance(side, dict):
        raise ValueError(f"{path}: expected a side file (a JSON object), got a JSON {type(side).__name__}")
    return side


def _read_journal(path: Path, header: dict[str, Any], clip_lines: list[str]) -> dict[str, Any]:
    """The side file a journal describes; its last line may be cut (the process was killed while writing it)."""
    side: dict[str, Any] = {**header, "frames": [], "steps": [], "finished": False}
    for number, line in enumerate(clip_lines, start=2):
        record = _json_or_none(line)
        if not isinstance(record, dict) or not isinstance(record.get("frames"), list):
            if number == len(clip_lines) + 1:
                break  # the line being written when the process died
            raise ValueError(f"{path}:{number}: expected a clip of the journal, a JSON object with frames, "
                             f"got {line[:80]!r}")
        side["frames"].extend(record["frames"])
        if "step" in record:
            side["steps"].append(record["step"])
    return side


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
    Each clip goes to the video first, then to the side file's journal (:class:`SideFile`). After a kill the
    video therefore decodes every frame the journal describes but those of the MP4's last fragment, still open
    (:class:`~lv2_env.media.video.Mp4Writer`: each keyframe starts a fragment, at most ``fps`` frames apart), and
    at most the next clip more: ``described - fps <= decoded <= described + clip_frames - 2``. (When x264 puts
    its keyframes every ``fps`` frames from frame 0, as in most ground-truth rollouts, the open fragment is the
    last described frame alone.) An exception (Ctrl-C) still writes the side file, with ``"finished": false``
    and ``stopped_by`` naming it.
    """
    video_path = Path(video_path)
    side_path = Path(side_path) if side_path is not None else video_path.with_suffix(".json")
    video_path.parent.mkdir(parents=True, exist_ok=True)
    fps = int(env.metadata.get("render_fps", 16))
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
    side = SideFile(side_path, header)
    stopped_by: str | None = None
    try:
        with Mp4Writer(video_path, fps=fps) as writer:
            writer.write(info["frames"][-1])
            side.add([_frame_record(0, fps, info["camera_pose"], info["camera_state"], info, 0, 0.0)])
            bar = tqdm(range(steps), desc=f"rollout {video_path.name}", unit="clip", disable=not progress)
            for step in bar:
                tick = time.perf_counter()
                action = policy(observation, info)
                observation, reward, terminated, truncated, info = env.step(action)
                writer.write(info["frames"][1:])
                first = len(side.frames)
                frames = [_frame_record(first + i, fps, pose, state, info, step + 1, float(reward))
                          for i, (pose, state) in enumerate(zip(info["poses"][1:], info["states"][1:]))]
                side.add(frames, {
                    "step": step + 1,
                    "action": np.asarray(action).tolist(),
                    "reward": float(reward),
                    "collision": bool(info["collision"]),
                    "obstacle": info["obstacle"],
                    "goal_distance": float(info["goal_distance"]),
                    "seconds": time.perf_counter() - tick,
                    "timings": _env_timings(env),
                    "rss_mb": round(resident_memory_mb(), 1),
                })
                bar.set_postfix(reward=f"{reward:+.2f}", goal=f"{info['goal_distance']:.1f}m")
                if terminated or truncated:
                    break
    except BaseException as error:
        stopped_by = type(error).__name__
        raise
    finally:
        wall = time.perf_counter() - started
        side.close({"wall_seconds": wall, "finished": stopped_by is None,
                    **({"stopped_by": stopped_by} if stopped_by else {})})
    return RolloutSummary(
        video=video_path,
        side_file=side_path,
        frames=len(side.frames),
        steps=len(side.steps),
        seconds_of_video=(len(side.frames) - 1) / fps,
        wall_seconds=wall,
        total_reward=float(sum(s["reward"] for s in side.steps)),
        collisions=sum(s["collision"] for s in side.steps),
    )
