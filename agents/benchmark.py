"""``lv2 bench agents``: can an agent learn in the generated world, and does the generated world rank policies
as the true one does?

Stages, each stored under ``--out`` and skipped when a resumed run finds it done:

1. **Learn in the truth**: a DAgger run (:mod:`agents.dagger`) on frames of ``LV2/GroundTruth-v0``; each round's
   student is a pixel policy (``truth-trained-round{k}``; the last is ``truth-trained``).
2. **Learn in the world**: the same rounds on frames of ``LV2/World-v0`` (labels from the exact state, as in the
   truth), ``world-trained-round{k}`` and ``world-trained``; ``world_rounds`` may stop it earlier (it is the
   slow part). The *transfer ratio* compares ``world-trained`` with the truth-trained student of the same env-step
   budget, both scored in the truth.
3. **Score in the truth** on the frozen test split (``agent_test``, 60 scenes, six styles), at every task level
   (:mod:`lv2_env.envs.levels`): the privileged teacher, the teacher with 25% and 50% action noise, a uniformly
   random policy, the scripted dolly, and every pixel policy.
4. **Score in the world** on the first ``evaluator_scenes`` test scenes, from the same starts: the pixel
   policies' success in each env, Spearman and Pearson correlation and the mean absolute success gap *over the
   pixel policies alone*. Policies that never look at the frames (teacher, noisy teacher, random, dolly) move
   exactly as in the truth, because World-v0's camera path, collisions, reward and termination come from the
   scene, not from the frames: they cannot differ, so they are listed apart, not run in the world (unless
   ``world_blind``) and not counted in the evaluator's figures.
5. **Report**: ``agents.json``, ``agents.md`` (the tables) and ``agents.png`` (success in the world against
   success in the truth).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from agents.dagger import Dagger, DaggerConfig, EnvCache
from agents.evaluation import MAX_STEPS, Episode, RandomPolicy, pearson, score_policy, spearman, summarise
from agents.imitation import PerceptionConfig, TrainConfig
from agents.pixel import load_agent
from agents.scripted import DollyPolicy
from agents.teacher import GoalTeacher
from lv2_env.data.splits import AGENT_TEST_SCENES, split_scenes
from lv2_env.envs.levels import DEFAULT_LEVEL, TASK_LEVELS

TRUTH_ID, WORLD_ID = "LV2/GroundTruth-v0", "LV2/World-v0"
TEST_SPLIT = "agent_test"
ADDITIVE = ("evaluator_scenes", "world_blind", "world_rounds")  # settings a resumed run may raise
# World-v0's options in the world run: it shades the truth of the same path beside its frames (a few ms a step), so
# every world episode says what the agent was shown (phantom share, goal colour error: agents.evaluation).
WORLD_OPTIONS: dict[str, Any] = {}
FAST_WORLD_OPTIONS = {"control_encoder": "distilled", "decoder": "fast"}  # docs/performance.md: their cost


@dataclass(frozen=True)
class BenchConfig:
    """Everything that decides the benchmark's figures (saved in ``bench_config.json``; a resumed run must match)."""

    dagger: DaggerConfig = field(default_factory=DaggerConfig)
    world_rounds: int | None = None  # DAgger rounds run in the world (None: all of dagger.rounds; 0: none)
    world_fast: bool = False  # World-v0's fast options for the world run and the world scoring
    test_scenes: int = AGENT_TEST_SCENES
    evaluator_scenes: int = 24
    levels: tuple[str, ...] = (DEFAULT_LEVEL, "medium", "easy")  # scored in the truth; the first is the aims' level
    evaluator_levels: tuple[str, ...] = (DEFAULT_LEVEL,)  # levels the pixel policies also run in the world
    max_steps: int = MAX_STEPS
    world_blind: bool = False
    quick: bool = False

    def __post_init__(self) -> None:
        unknown = [level for level in self.levels if level not in TASK_LEVELS]
        if unknown or not self.levels:
            raise ValueError(f"levels must be among {list(TASK_LEVELS)}, got {list(self.levels)}")
        if not set(self.evaluator_levels) <= set(self.levels):
            raise ValueError(f"evaluator_levels must be among the levels {list(self.levels)}, "
                             f"got {list(self.evaluator_levels)}")
        if self.world_rounds is not None and not 0 <= self.world_rounds <= len(self.dagger.rounds):
            raise ValueError(f"world_rounds must be in [0, {len(self.dagger.rounds)}], got {self.world_rounds}")

    @classmethod
    def quick_run(cls) -> "BenchConfig":
        """Tiny budgets on a few scenes: checks the pipeline end to end, not the figures."""
        dagger = DaggerConfig(rounds=((3, 1.0), (3, 0.0)), perception=PerceptionConfig(scenes=2), episode_steps=3,
                              val_scenes=1, val_frame_steps=2, first_epochs=1, later_epochs=1,
                              train=TrainConfig(batch_size=32))
        return cls(dagger=dagger, test_scenes=2, evaluator_scenes=2, levels=(DEFAULT_LEVEL, "easy"),
                   evaluator_levels=(DEFAULT_LEVEL, "easy"), max_steps=2, quick=True)

    @property
    def rounds_in_world(self) -> int:
        return len(self.dagger.rounds) if self.world_rounds is None else self.world_rounds

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PolicySpec:
    name: str
    kind: str  # "privileged", "blind" or "pixel": what it looks at
    trained_in: str = ""  # the env whose frames it learned from, or "" (not trained on frames)
    round: int = -1  # the DAgger round of a pixel policy
    env_steps: int = 0  # env steps it learned from (pixel policies)


def pixel_name(trained_in: str, k: int, last: int) -> str:
    where = "truth" if trained_in == TRUTH_ID else "world"
    return f"{where}-trained" if k == last else f"{where}-trained-round{k}"


def policy_specs(config: BenchConfig) -> list[PolicySpec]:
    specs = [PolicySpec("teacher", "privileged"), PolicySpec("teacher-noise-0.25", "privileged"),
             PolicySpec("teacher-noise-0.5", "privileged"), PolicySpec("random", "blind"),
             PolicySpec("scripted-dolly", "blind")]
    budgets = (config.dagger.perception.scenes + np.cumsum([steps for steps, _ in config.dagger.rounds])).tolist()
    for env_id, rounds in ((TRUTH_ID, len(config.dagger.rounds)), (WORLD_ID, config.rounds_in_world)):
        for k in range(rounds):
            specs.append(PolicySpec(pixel_name(env_id, k, rounds - 1), "pixel", env_id, k, int(budgets[k])))
    return specs


class _Reseeded:
    """A scripted policy with the benchmark's ``reset(info, seed=...)``."""

    def __init__(self, policy) -> None:
        self.policy = policy

    def reset(self, info=None, seed=None) -> None:
        self.policy.reset(info)

    def __call__(self, observation, info):
        return self.policy(observation, info)


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
            # More evaluator scenes, world rounds or world runs only add to what is stored: those may change.
            changed = sorted(k for k in set(before) | set(now) if k not in ADDITIVE and before.get(k) != now.get(k))
            if changed:
                raise ValueError(f"{saved} was written with other settings ({', '.join(changed)} differ): "
                                 "resume with the same options, or give another --out")
        saved.write_text(json.dumps(now, indent=2) + "\n")
        self.env = EnvCache({WORLD_ID: self.world_options})

    # ------------------------------------------------------------------ envs

    @property
    def world_options(self) -> dict[str, Any]:
        return {**WORLD_OPTIONS, **(FAST_WORLD_OPTIONS if self.config.world_fast else {})}

    def close(self) -> None:
        self.env.close()

    def dagger_dir(self, env_id: str) -> Path:
        return self.out / ("truth-dagger" if env_id == TRUTH_ID else "world-dagger")

    def agent_dir(self, spec: PolicySpec) -> Path:
        return self.dagger_dir(spec.trained_in) / f"round_{spec.round}" / "agent"

    def make_policy(self, spec: PolicySpec, env: gym.Env):
        if spec.name == "teacher":
            return GoalTeacher(env)
        if spec.name.startswith("teacher-noise-"):
            return GoalTeacher(env, noise=float(spec.name.rsplit("-", 1)[1]))
        if spec.name == "random":
            return RandomPolicy(env.action_space.n)
        if spec.name == "scripted-dolly":
            return _Reseeded(DollyPolicy.for_env(env))
        return load_agent(self.agent_dir(spec), env=env).policy_for(env)

    # ------------------------------------------------------------------ stages

    def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        self.stage_learn(TRUTH_ID, len(self.config.dagger.rounds))
        self.stage_learn(WORLD_ID, self.config.rounds_in_world)
        specs = policy_specs(self.config)
        test = split_scenes(TEST_SPLIT, self.config.test_scenes)
        evaluator = test[:self.config.evaluator_scenes]
        truth, world = {}, {}
        for level in self.config.levels:
            truth[level] = {s.name: self.stage_score(s, TRUTH_ID, test, level) for s in specs}
            world[level] = {s.name: self.stage_score(s, WORLD_ID, evaluator, level) for s in specs
                            if (s.kind == "pixel" or self.config.world_blind) and level in self.config.evaluator_levels}
        report = self.report(specs, truth, world, time.perf_counter() - started)
        self.close()
        return report

    def stage_learn(self, env_id: str, rounds: int) -> None:
        if rounds == 0:
            return
        config = replace(self.config.dagger, env_id=env_id, rounds=self.config.dagger.rounds[:rounds])
        self.log(f"[learn in {env_id}] {rounds} DAgger rounds")
        dagger = Dagger(self.dagger_dir(env_id), config, env_kwargs=self.world_options if env_id == WORLD_ID else {},
                        progress=self.progress, log=self.log)
        dagger.run()

    def stage_score(self, spec: PolicySpec, env_id: str, scenes: list[tuple[int, str]], level: str) -> dict[str, Any]:
        where = "truth" if env_id == TRUTH_ID else "world"
        journal = self.out / f"score-{where}" / level / f"{spec.name}.jsonl"
        journal.parent.mkdir(parents=True, exist_ok=True)
        done = [Episode.from_dict(json.loads(line)) for line in _lines(journal)][:len(scenes)]
        if len(done) == len(scenes):
            return summarise(done)
        env = self.env(env_id)
        policy = self.make_policy(spec, env)

        def record(episode: Episode) -> None:
            with journal.open("a") as handle:
                handle.write(json.dumps(episode.as_dict()) + "\n")

        return score_policy(env, policy, scenes, self.config.max_steps, on_episode=record, done=done,
                            desc=f"{spec.name} in {where} ({level})", progress=self.progress, level=level)

    # ------------------------------------------------------------------ report

    def level_report(self, specs: list[PolicySpec], truth: dict, world: dict) -> dict[str, Any]:
        n_eval = self.config.evaluator_scenes
        rows = []
        for spec in specs:
            eval_truth = summarise_first(truth[spec.name], n_eval)
            world_run = spec.name in world
            eval_world = world[spec.name] if world_run else eval_truth
            if spec.kind == "pixel" and not world_run:  # a level the evaluator did not run: nothing to say
                eval_world = {"success": float("nan"), "mean_return": float("nan")}
            rows.append({
                "name": spec.name, "kind": spec.kind, "trained_in": spec.trained_in, "env_steps": spec.env_steps,
                "success_truth": truth[spec.name]["success"], "return_truth": truth[spec.name]["mean_return"],
                "steps_truth": truth[spec.name]["mean_steps"],
                "evaluator_success_truth": eval_truth["success"], "evaluator_return_truth": eval_truth["mean_return"],
                "success_world": eval_world["success"], "return_world": eval_world["mean_return"],
                "world_run": world_run,
                # What the generated world showed the policy (pixel policies' world runs; NaN where not measured).
                "phantom_share_world": eval_world.get("phantom_share", float("nan")) if world_run else float("nan"),
                "goal_colour_error_world": eval_world.get("goal_colour_error", float("nan")) if world_run
                else float("nan"),
            })
        pixel = [r for r in rows if r["kind"] == "pixel" and r["world_run"]]
        t = np.array([r["evaluator_success_truth"] for r in pixel])
        w = np.array([r["success_world"] for r in pixel])
        by_name = {r["name"]: r for r in rows}
        world_trained = by_name.get("world-trained")
        transfer = float("nan")
        if world_trained is not None:
            # The truth-trained student of the same env-step budget, both scored in the truth.
            peer = next(r for r in rows if r["trained_in"] == TRUTH_ID and r["env_steps"] == world_trained["env_steps"])
            if peer["success_truth"] > 0:
                transfer = world_trained["success_truth"] / peer["success_truth"]
        return {
            "transfer_ratio": transfer,
            "transfer_peer": None if world_trained is None else peer["name"],
            "spearman": spearman(w, t), "pearson": pearson(w, t),
            "mean_abs_gap": float(np.mean(np.abs(w - t))) if len(pixel) else float("nan"),
            "pixel_policies": len(pixel),
            "policies": rows,
        }

    def report(self, specs: list[PolicySpec], truth: dict, world: dict, seconds: float) -> dict[str, Any]:
        levels = {level: self.level_report(specs, truth[level], world[level]) for level in self.config.levels}
        main = levels[self.config.levels[0]]
        report = {
            "split": TEST_SPLIT,
            "scenes": [s for s, _ in split_scenes(TEST_SPLIT, self.config.test_scenes)],
            "evaluator_scenes": self.config.evaluator_scenes,
            "max_steps": self.config.max_steps,
            "level": self.config.levels[0],
            **main,
            "levels": {level: {k: v for k, v in r.items() if k != "policies"} | {
                "success_truth": {p["name"]: p["success_truth"] for p in r["policies"]},
                "success_world": {p["name"]: p["success_world"] for p in r["policies"] if p["world_run"]}}
                for level, r in levels.items()},
            "world_blind_run": self.config.world_blind,
            "world_options": self.world_options,
            "config": self.config.to_json(),
            "seconds_this_run": round(seconds, 1),
            "dagger": {where: _jsonl(self.dagger_dir(env_id) / "dagger.jsonl")
                       for where, env_id in (("truth", TRUTH_ID), ("world", WORLD_ID))},
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
        f"Test split `{report['split']}`: {len(report['scenes'])} scenes, level `{report['level']}` (success within "
        f"{report['max_steps']} steps, in LV2/GroundTruth-v0); the evaluator's columns on its first "
        f"{report['evaluator_scenes']} scenes.",
        "",
        "| policy | looks at | trained in | env steps | success (truth) | return (truth) | evaluator: truth | "
        "evaluator: world | world: phantom share / goal colour error |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["policies"]:
        world = f"{r['success_world']:.2f}" + ("" if r["world_run"] else " (=)")
        phantom, goal = r.get("phantom_share_world", float("nan")), r.get("goal_colour_error_world", float("nan"))
        shown = "-" if not np.isfinite(phantom) else f"{100 * phantom:.1f}% / " + (
            f"{goal:.1f}" if np.isfinite(goal) else "-")
        lines.append(f"| {r['name']} | {r['kind']} | {r['trained_in'] or '-'} | {r['env_steps'] or '-'} | "
                     f"{r['success_truth']:.2f} | {r['return_truth']:+.2f} | {r['evaluator_success_truth']:.2f} | "
                     f"{world} | {shown} |")
    lines += [
        "",
        f"Transfer ratio (world-trained / {report['transfer_peer'] or 'truth-trained'} success, the same env steps, "
        f"both in the truth): {report['transfer_ratio']:.2f}. Evaluator over the {report['pixel_policies']} pixel "
        f"policies: Spearman {report['spearman']:.2f}, Pearson {report['pearson']:.2f}, mean absolute success gap "
        f"{report['mean_abs_gap']:.3f}.",
        "(=): a policy that never looks at the frames moves in LV2/World-v0 exactly as in the truth (the path, "
        "collisions and reward come from the scene): its world run is not generated and it is not counted.",
        "",
        "Per level (success in the truth on all test scenes):",
        "",
        "| level | " + " | ".join(report["levels"][report["level"]]["success_truth"]) + " | transfer | Spearman | gap |",
        "|---|" + "---|" * (len(report["levels"][report["level"]]["success_truth"]) + 3),
    ]
    for level, r in report["levels"].items():
        lines.append(f"| {level} | " + " | ".join(f"{v:.2f}" for v in r["success_truth"].values())
                     + f" | {r['transfer_ratio']:.2f} | {r['spearman']:.2f} | {r['mean_abs_gap']:.3f} |")
    return "\n".join(lines) + "\n"


def plot_evaluator(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="perfect evaluator")
    colours = {TRUTH_ID: "tab:blue", WORLD_ID: "tab:red"}
    for r in report["policies"]:
        if not r["world_run"]:
            continue
        ax.scatter(r["evaluator_success_truth"], r["success_world"], color=colours[r["trained_in"]])
        ax.annotate(r["name"], (r["evaluator_success_truth"], r["success_world"]), fontsize=7,
                    xytext=(4, -8), textcoords="offset points")
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("success in LV2/GroundTruth-v0")
    ax.set_ylabel("success in LV2/World-v0")
    ax.set_title(f"{report['pixel_policies']} pixel policies, {report['evaluator_scenes']} test scenes: "
                 f"Spearman {report['spearman']:.2f}, gap {report['mean_abs_gap']:.2f}", fontsize=9)
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    good = []
    for line in path.read_text().splitlines():
        try:
            json.loads(line)
        except json.JSONDecodeError:
            break  # a kill mid-line: the episode runs again
        good.append(line)
    return good


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _lines(path)]


def _jsonable(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
