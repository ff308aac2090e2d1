"""DAgger on the privileged teacher ("learning by cheating"): rounds in which the student drives, the teacher
labels every frame the student sees from the exact state, and the student is trained again on every round's
frames.

Before round 0, a perception collection: many scenes, one env step each, whose frames teach only where the goal
is (its mask, whether it is in view, its bearing and distance; no action labels), so the student has seen
thousands of scenes. Round 0 is behaviour cloning: the noisy teacher drives (``beta=1``). In round ``k > 0`` the student of round
``k - 1`` chooses a ``1 - beta_k`` share of the steps (a beta mixture in the first rounds, then the student
alone), so the frames are the states the student's own mistakes lead to, each labelled by the teacher
(:func:`agents.imitation.collect`). After each round the student is trained on all frames so far, starting from
the last round's weights (:func:`agents.imitation.train`), and measured on validation scenes it never saw
(``agent_val``):

* ``frames_next``: how well the round's student reads the *next* round's frames (new scenes, the states it
  visits itself), before it trains on them;
* ``frames_val``: the same on one fixed teacher-driven collection of validation scenes;
* ``success_val``: closed-loop success within 30 steps in ``LV2/GroundTruth-v0`` (the success-against-env-steps
  curve, one point per round).

Every stage is stored under ``out`` (``round_K/`` with its episodes, ``agent/``, ``round.json``) and skipped when
a resumed run finds it done; ``dagger.jsonl`` has one line per round. The frames may come from either world
(``env_id``); labels, scoring and the validation frames always come from the truth.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from agents.evaluation import MAX_STEPS, score_policy
from agents.imitation import (CollectConfig, PerceptionConfig, TrainConfig, collect, collect_perception, frame_metrics,
                              load_collection, train)
from agents.pixel import AgentConfig, PixelAgent, load_agent
from lv2_env.data.splits import split_scenes

TRUTH_ID = "LV2/GroundTruth-v0"
VALIDATION_SPLIT = "agent_val"


@dataclass(frozen=True)
class DaggerConfig:
    """One DAgger run: where its frames come from, its rounds and how each is trained."""

    env_id: str = TRUTH_ID  # the env whose frames the student learns from (and drives in)
    rounds: tuple[tuple[int, float], ...] = ((1500, 1.0), (1500, 0.5), (1500, 0.0))  # (env steps, beta)
    perception: PerceptionConfig = field(default_factory=PerceptionConfig)  # frames for perception, before round 0
    episode_steps: int = 15
    noise: float = 0.3  # the teacher's action noise when it drives
    frame_stride: int = 2  # train on every n-th stored frame (a clip's 16 frames are nearly alike)
    first_epochs: int = 8  # epochs of round 0 (a new network)
    later_epochs: int = 3  # epochs of later rounds (from the last round's weights, on all frames so far)
    final_epochs: int = 6  # epochs of the last round when it is not round 0 (more passes over all the frames)
    val_scenes: int = 30  # agent_val scenes scored closed-loop after each round
    val_frame_steps: int = 200  # env steps of the fixed validation collection
    agent: AgentConfig = field(default_factory=AgentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def make_env(env_id: str, **kwargs) -> gym.Env:
    import lv2_env  # noqa: F401  (registers the environments)
    from lv2_env import UNLIMITED_EPISODE_STEPS

    return gym.make(env_id, goal_observation=True, max_episode_steps=UNLIMITED_EPISODE_STEPS, **kwargs)


class EnvCache:
    """Envs made once per id by :func:`make_env`, with ``options[env_id]`` as their extra make arguments."""

    def __init__(self, options: dict[str, dict[str, Any]] | None = None) -> None:
        self.options = dict(options or {})
        self._envs: dict[str, gym.Env] = {}

    def __call__(self, env_id: str) -> gym.Env:
        if env_id not in self._envs:
            self._envs[env_id] = make_env(env_id, **self.options.get(env_id, {}))
        return self._envs[env_id]

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs = {}


def subsample(data: dict[str, np.ndarray], stride: int) -> dict[str, np.ndarray]:
    return {k: v[::stride] for k, v in data.items()}


class Dagger:
    """A DAgger run stored in ``out`` (see the module docstring); ``env_kwargs`` go to the learning env."""

    def __init__(self, out: str | Path, config: DaggerConfig, env_kwargs: dict[str, Any] | None = None,
                 progress: bool = True, log: Callable[[str], None] = print) -> None:
        self.out = Path(out)
        self.config = config
        self.progress = progress
        self.log = log
        self.env_kwargs = dict(env_kwargs or {})
        self.out.mkdir(parents=True, exist_ok=True)
        saved = self.out / "dagger_config.json"
        now = json.loads(json.dumps(config.to_json()))
        if saved.exists():
            before = json.loads(saved.read_text())
            # More rounds only add to what is stored; anything else must match.
            changed = sorted(k for k in set(before) | set(now) if k != "rounds" and before.get(k) != now.get(k))
            if changed or before["rounds"] != now["rounds"][:len(before["rounds"])]:
                raise ValueError(f"{saved} was written with other settings ({', '.join(changed) or 'rounds'} "
                                 "differ): resume with the same options, or give another --out")
        saved.write_text(json.dumps(now, indent=2) + "\n")
        self.env = EnvCache({config.env_id: self.env_kwargs})

    def close(self) -> None:
        self.env.close()

    def round_dir(self, k: int) -> Path:
        return self.out / f"round_{k}"

    def agent_dir(self, k: int) -> Path:
        return self.round_dir(k) / "agent"

    def run(self) -> list[dict[str, Any]]:
        """The perception frames, then every round not yet done; returns every round's record."""
        self.perception_frames()
        records = []
        student: PixelAgent | None = None
        for k in range(len(self.config.rounds)):
            records.append(self.run_round(k, student))
            student = load_agent(self.agent_dir(k))
        self.close()
        return records

    def perception_frames(self) -> Path:
        """The many-scene perception collection (:func:`agents.imitation.collect_perception`) in the learning env."""
        directory = self.out / "perception"
        if self.config.perception.scenes > 0 and not (directory / "collection.json").exists():
            self.log(f"[perception] {self.config.perception.scenes} scenes, one step each, in {self.config.env_id}")
            collect_perception(self.env(self.config.env_id), self.config.perception, directory, progress=self.progress)
        return directory

    def validation_frames(self) -> dict[str, np.ndarray]:
        directory = self.out / "val-frames"
        config = CollectConfig(env_steps=self.config.val_frame_steps, episode_steps=self.config.episode_steps,
                               noise=self.config.noise, split=VALIDATION_SPLIT, input_size=self.config.agent.input_size,
                               first_scene=self.config.val_scenes)  # other scenes than the closed-loop ones
        if not (directory / "collection.json").exists():
            collect(self.env(TRUTH_ID), config, directory, progress=self.progress)
        return load_collection(directory)

    def run_round(self, k: int, student: PixelAgent | None) -> dict[str, Any]:
        record_path = self.round_dir(k) / "round.json"
        if record_path.exists():
            return json.loads(record_path.read_text())
        started = time.perf_counter()
        steps, beta = self.config.rounds[k]
        first_scene = sum(s for s, _ in self.config.rounds[:k])  # every episode takes a step: no scene twice
        collect_config = CollectConfig(env_steps=steps, episode_steps=self.config.episode_steps,
                                       noise=self.config.noise, beta=beta if student is not None else 1.0,
                                       first_scene=first_scene, input_size=self.config.agent.input_size)
        self.log(f"[round {k}] {steps} env steps in {self.config.env_id}, beta {collect_config.beta}")
        summary = collect(self.env(self.config.env_id), collect_config, self.round_dir(k), student=student,
                          progress=self.progress)
        record: dict[str, Any] = {"round": k, "beta": collect_config.beta, "env_steps": summary["env_steps"],
                                  "episodes": summary["episodes"], "student_steps": summary["student_steps"]}
        if student is not None:
            record["frames_next"] = frame_metrics(student, load_collection(self.round_dir(k)))
        data = subsample(load_collection(*(self.round_dir(i) for i in range(k + 1))), self.config.frame_stride)
        if self.config.perception.scenes > 0:  # already thinned by its own frame stride
            perception = load_collection(self.perception_frames())
            data = {key: np.concatenate([data[key], perception[key]]) for key in data}
        epochs = self.config.first_epochs if student is None else self.config.later_epochs
        if student is not None and k == len(self.config.rounds) - 1:
            epochs = self.config.final_epochs
        self.log(f"[round {k}] training on {len(data['labels'])} frames, {epochs} epochs")
        recipe = {
            "method": "DAgger on the privileged teacher: the student drives, the teacher labels every frame from "
                      "the exact state; actions, goal mask, goal in view, bearing and distance supervised",
            "env_steps": self.config.perception.scenes + sum(s for s, _ in self.config.rounds[:k]) + summary["env_steps"],
            "scenes": self.config.perception.scenes + summary["episodes"] + sum(
                json.loads((self.round_dir(i) / "round.json").read_text())["episodes"] for i in range(k)),
            "rounds": k + 1,
            "frames": int(len(data["labels"])),
            "dagger": self.config.to_json(),
        }
        image_shape = tuple(self.env(self.config.env_id).observation_space["image"].shape)
        agent_config = replace(self.config.agent, trained_in=self.config.env_id, image_shape=image_shape, recipe=recipe)
        agent, history = train(data, replace(self.config.train, epochs=epochs), agent_config, init=student,
                               progress=self.progress)
        agent.net.config = agent.config = replace(agent_config, recipe={**recipe, "history": history})
        final = self.agent_dir(k)
        tmp = final.with_name("agent.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        agent.save(tmp)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        record["train"] = history[-1]
        record["frames_val"] = frame_metrics(agent, self.validation_frames())
        truth = self.env(TRUTH_ID)
        scores = score_policy(truth, agent.policy_for(truth), split_scenes(VALIDATION_SPLIT, self.config.val_scenes),
                              MAX_STEPS, desc=f"round {k} on {VALIDATION_SPLIT}", progress=self.progress)
        record.update({"total_env_steps": recipe["env_steps"], "total_scenes": recipe["scenes"],
                       "success_val": scores["success"], "return_val": scores["mean_return"],
                       "seconds": round(time.perf_counter() - started, 1)})
        record_path.write_text(json.dumps(record, indent=2) + "\n")
        with (self.out / "dagger.jsonl").open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        self.log(f"[round {k}] val success {scores['success']:.2f}, frame accuracy "
                 f"{record['frames_val']['accuracy']:.3f}, mask IoU {record['frames_val']['mask_iou']:.3f}")
        return record
