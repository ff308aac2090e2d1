"""``lv2 bench agents``: can an agent learn in the generated world, and does the generated world rank policies
as the true one does?

Stages, each stored under ``--out`` and skipped when a resumed run finds it done:

1. **Collect** the same budget of env steps twice with the noisy teacher (:mod:`agents.imitation`): once in
   ``LV2/GroundTruth-v0``, once in ``LV2/World-v0``. The behaviour is blind to the images, so both visit the same
   camera states with the same labels; only the pictures differ.
2. **Train** a pixel agent on each, same recipe: *truth-trained* and *world-trained*, plus the world-trained
   agent's early checkpoint (a weaker policy for the evaluator).
3. **Score in the truth** on the frozen test split (``agent_test``, 60 scenes, six styles): the teacher, the
   teacher with 25% and 50% action noise, a uniformly random policy, the scripted dolly, and the pixel agents.
4. **Score in the world** on the first ``evaluator_scenes`` test scenes, from the same starts: success in each
   env, Spearman and Pearson correlation across policies, mean absolute success gap. Policies that never look at
   the frames (teacher, noisy teacher, random, dolly) move exactly as in the truth, because World-v0's camera
   path, collisions, reward and termination come from the scene, not from the frames; unless ``world_blind``,
   their world runs are not generated and their world success is their truth success (marked
   ``"world_run": false``). The correlation over the pixel policies alone is reported beside the one over all.
5. **Report**: ``agents.json``, ``agents.md`` (the table) and ``agents.png`` (success in the world against
   success in the truth).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from agents.evaluation import MAX_STEPS, Episode, RandomPolicy, pearson, score_policy, spearman, summarise
from agents.imitation import CollectConfig, TrainConfig, collect, load_collection, train
from agents.pixel import AgentConfig, load_agent
from agents.scripted import DollyPolicy
from agents.teacher import GoalTeacher
from lv2_env import UNLIMITED_EPISODE_STEPS
from lv2_env.data.splits import AGENT_TEST_SCENES, split_scenes

TRUTH_ID, WORLD_ID = "LV2/GroundTruth-v0", "LV2/World-v0"
TEST_SPLIT = "agent_test"
ADDITIVE = ("evaluator_scenes", "world_blind")  # settings a resumed run may raise


@dataclass(frozen=True)
class BenchConfig:
    """Everything that decides the benchmark's figures (saved in ``bench_config.json``; a resumed run must match)."""

    collect: CollectConfig = field(default_factory=CollectConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    early_epoch: int = 1  # the world-trained checkpoint kept as a weaker policy
    test_scenes: int = AGENT_TEST_SCENES
    evaluator_scenes: int = 24
    max_steps: int = MAX_STEPS
    world_blind: bool = False
    quick: bool = False

    @classmethod
    def quick_run(cls) -> "BenchConfig":
        """Tiny budgets on a few scenes: checks the pipeline end to end, not the figures."""
        return cls(collect=CollectConfig(env_steps=3, episode_steps=3), train=TrainConfig(epochs=1, batch_size=32),
                   early_epoch=1, test_scenes=2, evaluator_scenes=2, max_steps=2, quick=True)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PolicySpec:
    name: str
    kind: str  # "privileged", "blind" or "pixel": what it looks at
    trained_in: str  # the env whose frames it learned from, or "" (not trained on frames)


def policy_specs(config: BenchConfig) -> list[PolicySpec]:
    return [
        PolicySpec("teacher", "privileged", ""),
        PolicySpec("teacher-noise-0.25", "privileged", ""),
        PolicySpec("teacher-noise-0.5", "privileged", ""),
        PolicySpec("random", "blind", ""),
        PolicySpec("scripted-dolly", "blind", ""),
        PolicySpec("truth-trained", "pixel", TRUTH_ID),
        PolicySpec("world-trained", "pixel", WORLD_ID),
        PolicySpec(f"world-trained-epoch{config.early_epoch}", "pixel", WORLD_ID),
    ]


def make_policy(spec: PolicySpec, env: gym.Env, agents_dir: Path):
    if spec.name == "teacher":
        return GoalTeacher(env)
    if spec.name.startswith("teacher-noise-"):
        return GoalTeacher(env, noise=float(spec.name.rsplit("-", 1)[1]))
    if spec.name == "random":
        return RandomPolicy(env.action_space.n)
    if spec.name == "scripted-dolly":
        return _Reseeded(DollyPolicy.for_env(env))
    return load_agent(agents_dir / spec.name, env=env).policy_for(env)


class _Reseeded:
    """A scripted policy with the benchmark's ``reset(info, seed=...)``."""

    def __init__(self, policy) -> None:
        self.policy = policy

    def reset(self, info=None, seed=None) -> None:
        self.policy.reset(info)

    def __call__(self, observation, info):
        return self.policy(observation, info)


def make_env(env_id: str, **kwargs) -> gym.Env:
    import lv2_env  # noqa: F401  (registers the environments)

    return gym.make(env_id, goal_observation=True, max_episode_steps=UNLIMITED_EPISODE_STEPS, **kwargs)


class Bench:
    """One benchmark directory: its config, its stages and the report."""

    def __init__(self, out: str | Path, config: BenchConfig, progress: bool = True,
                 log: Callable[[str], None] = print) -> None:
        self.out = Path(out)
        self.config = config
        self.progress = progress
        self.log = log
        self.out.mkdir(parents=True, exist_ok=True)
        saved = self.out / "bench_config.json"
        now = json.loads(json.dumps(config.to_json()))
        if saved.exists():
            before = json.loads(saved.read_text())
            # More evaluator scenes or world runs only add episodes to what is stored: those may change on resume.
            changed = sorted(k for k in set(before) | set(now) if k not in ADDITIVE and before.get(k) != now.get(k))
            if changed:
                raise ValueError(f"{saved} was written with other settings ({', '.join(changed)} differ): "
                                 "resume with the same options, or give another --out")
        saved.write_text(json.dumps(now, indent=2) + "\n")
        self._envs: dict[str, gym.Env] = {}

    # ------------------------------------------------------------------ envs

    def env(self, env_id: str) -> gym.Env:
        if env_id not in self._envs:
            # The agents never read the truth's pixels, so the world skips shading them (a faster step).
            options = {"ground_truth_frames": False} if env_id == WORLD_ID else {}
            self._envs[env_id] = make_env(env_id, **options)
        return self._envs[env_id]

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs = {}

    # ------------------------------------------------------------------ stages

    def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        for env_id, name in ((TRUTH_ID, "collect-truth"), (WORLD_ID, "collect-world")):
            self.stage_collect(env_id, name)
        for name, source in (("truth-trained", "collect-truth"), ("world-trained", "collect-world")):
            self.stage_train(name, source)
        specs = policy_specs(self.config)
        test = split_scenes(TEST_SPLIT, self.config.test_scenes)
        truth = {s.name: self.stage_score(s, TRUTH_ID, test) for s in specs}
        evaluator = test[:self.config.evaluator_scenes]
        world = {}
        for spec in specs:
            if spec.kind == "pixel" or self.config.world_blind:
                world[spec.name] = self.stage_score(spec, WORLD_ID, evaluator)
        report = self.report(specs, truth, world, time.perf_counter() - started)
        self.close()
        return report

    def stage_collect(self, env_id: str, name: str) -> dict[str, Any]:
        directory = self.out / name
        summary_path = directory / "collection.json"
        if summary_path.exists():
            summary = json.loads(summary_path.read_text())
            if summary["config"] == asdict(self.config.collect) and summary["env_steps"] >= self.config.collect.env_steps:
                return summary
        self.log(f"[{name}] {self.config.collect.env_steps} env steps of the noisy teacher in {env_id}")
        return collect(self.env(env_id), self.config.collect, directory, progress=self.progress)

    def stage_train(self, name: str, source: str) -> None:
        final = self.out / "agents" / name
        if (final / "agent.safetensors").exists():
            return
        collection = json.loads((self.out / source / "collection.json").read_text())
        env_id = TRUTH_ID if source == "collect-truth" else WORLD_ID
        data = load_collection(self.out / source)
        self.log(f"[train {name}] {len(data['labels'])} labelled frames from {collection['env_steps']} env steps "
                 f"of {env_id}")
        recipe = {
            "method": "behaviour cloning with noise injection (DART): every frame of every clip labelled by the "
                      "privileged teacher at its exact camera state",
            "command": "lv2 bench agents" + (" --quick" if self.config.quick else ""),
            "env_steps": collection["env_steps"], "frames": int(len(data["labels"])), "episodes": collection["episodes"],
            "collect": asdict(self.config.collect), "train": asdict(self.config.train),
        }
        agent_config = AgentConfig(input_size=self.config.collect.input_size, trained_in=env_id, recipe=recipe)
        early = self.out / "agents" / f"{name}-epoch{self.config.early_epoch}"

        def checkpoint(epoch, agent):
            if epoch == self.config.early_epoch:
                agent.net.config = dataclasses.replace(agent_config, recipe={**recipe, "epochs_trained": epoch})
                agent.config = agent.net.config
                agent.save(early)

        agent, history = train(data, self.config.train, agent_config, checkpoint=checkpoint, progress=self.progress)
        agent.net.config = dataclasses.replace(agent_config, recipe={**recipe, "history": history})
        agent.config = agent.net.config
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        agent.save(tmp)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        self.log(f"[train {name}] last epoch: {history[-1]}")

    def stage_score(self, spec: PolicySpec, env_id: str, scenes: list[tuple[int, str]]) -> dict[str, Any]:
        where = "truth" if env_id == TRUTH_ID else "world"
        journal = self.out / f"score-{where}" / f"{spec.name}.jsonl"
        journal.parent.mkdir(parents=True, exist_ok=True)
        done = [Episode.from_dict(json.loads(line)) for line in _lines(journal)]
        done = done[:len(scenes)]
        if len(done) == len(scenes):
            return summarise(done)
        env = self.env(env_id)
        policy = make_policy(spec, env, self.out / "agents")

        def record(episode: Episode) -> None:
            with journal.open("a") as handle:
                handle.write(json.dumps(episode.as_dict()) + "\n")

        return score_policy(env, policy, scenes, self.config.max_steps, on_episode=record, done=done,
                            desc=f"{spec.name} in {where}", progress=self.progress)

    # ------------------------------------------------------------------ report

    def report(self, specs: list[PolicySpec], truth: dict, world: dict, seconds: float) -> dict[str, Any]:
        n_eval = self.config.evaluator_scenes
        rows = []
        for spec in specs:
            eval_truth = summarise_first(truth[spec.name], n_eval)
            world_run = spec.name in world
            eval_world = world[spec.name] if world_run else eval_truth
            rows.append({
                "name": spec.name, "kind": spec.kind, "trained_in": spec.trained_in,
                "success_truth": truth[spec.name]["success"], "return_truth": truth[spec.name]["mean_return"],
                "steps_truth": truth[spec.name]["mean_steps"],
                "evaluator_success_truth": eval_truth["success"], "evaluator_return_truth": eval_truth["mean_return"],
                "success_world": eval_world["success"], "return_world": eval_world["mean_return"],
                "world_run": world_run,
            })
        by_name = {r["name"]: r for r in rows}
        t = np.array([r["evaluator_success_truth"] for r in rows])
        w = np.array([r["success_world"] for r in rows])
        pixel = np.array([r["kind"] == "pixel" for r in rows])
        truth_trained = by_name["truth-trained"]["success_truth"]
        report = {
            "split": TEST_SPLIT,
            "scenes": [s for s, _ in split_scenes(TEST_SPLIT, self.config.test_scenes)],
            "evaluator_scenes": n_eval,
            "max_steps": self.config.max_steps,
            "transfer_ratio": (by_name["world-trained"]["success_truth"] / truth_trained) if truth_trained > 0
            else float("nan"),
            "spearman": spearman(w, t), "pearson": pearson(w, t),
            "mean_abs_gap": float(np.mean(np.abs(w - t))),
            "spearman_pixel": spearman(w[pixel], t[pixel]), "pearson_pixel": pearson(w[pixel], t[pixel]),
            "mean_abs_gap_pixel": float(np.mean(np.abs(w[pixel] - t[pixel]))),
            "world_blind_run": self.config.world_blind,
            "policies": rows,
            "config": self.config.to_json(),
            "seconds_this_run": round(seconds, 1),
            "collections": {name: json.loads((self.out / name / "collection.json").read_text())
                            for name in ("collect-truth", "collect-world")},
        }
        (self.out / "agents.json").write_text(json.dumps(report, indent=2, default=_jsonable) + "\n")
        (self.out / "agents.md").write_text(markdown_table(report))
        plot_evaluator(report, self.out / "agents.png")
        return report


def summarise_first(summary: dict[str, Any], n: int) -> dict[str, Any]:
    """The summary of a scored run's first ``n`` episodes (the evaluator's scenes are the test split's first)."""
    episodes = [Episode.from_dict(e) for e in summary["per_episode"][:n]]
    return summarise(episodes)


def markdown_table(report: dict[str, Any]) -> str:
    lines = [
        f"Test split `{report['split']}`: {len(report['scenes'])} scenes (success within {report['max_steps']} "
        f"steps, in LV2/GroundTruth-v0); the evaluator's columns on its first {report['evaluator_scenes']} scenes.",
        "",
        "| policy | looks at | trained in | success (truth) | return (truth) | evaluator: truth | evaluator: world |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["policies"]:
        world = f"{r['success_world']:.2f}" + ("" if r["world_run"] else " (=)")
        lines.append(f"| {r['name']} | {r['kind']} | {r['trained_in'] or '-'} | {r['success_truth']:.2f} | "
                     f"{r['return_truth']:+.2f} | {r['evaluator_success_truth']:.2f} | {world} |")
    lines += [
        "",
        f"Transfer ratio (world-trained / truth-trained success, both in the truth): {report['transfer_ratio']:.2f}. "
        f"Evaluator over all {len(report['policies'])} policies: Spearman {report['spearman']:.2f}, Pearson "
        f"{report['pearson']:.2f}, mean absolute success gap {report['mean_abs_gap']:.3f}; over the pixel policies "
        f"alone: Spearman {report['spearman_pixel']:.2f}, Pearson {report['pearson_pixel']:.2f}, gap "
        f"{report['mean_abs_gap_pixel']:.3f}.",
    ]
    if not report["world_blind_run"]:
        lines.append("(=): a policy that never looks at the frames moves in LV2/World-v0 exactly as in the truth (the "
                     "path, collisions and reward come from the scene), so its world run was not generated.")
    return "\n".join(lines) + "\n"


def plot_evaluator(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="perfect evaluator")
    colours = {"privileged": "tab:blue", "blind": "tab:grey", "pixel": "tab:red"}
    for r in report["policies"]:
        marker = "o" if r["world_run"] else "x"
        ax.scatter(r["evaluator_success_truth"], r["success_world"], color=colours[r["kind"]], marker=marker)
        ax.annotate(r["name"], (r["evaluator_success_truth"], r["success_world"]), fontsize=7,
                    xytext=(4, -8), textcoords="offset points")
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("success in LV2/GroundTruth-v0")
    ax.set_ylabel("success in LV2/World-v0")
    ax.set_title(f"{report['evaluator_scenes']} test scenes: Spearman {report['spearman']:.2f}, "
                 f"gap {report['mean_abs_gap']:.2f}", fontsize=9)
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    good = []
    for line in lines:
        try:
            json.loads(line)
        except json.JSONDecodeError:
            break  # a kill mid-line: the episode runs again
        good.append(line)
    return good


def _jsonable(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
