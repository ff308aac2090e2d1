"""PPO's learning curve on the goal task in LV2/GroundTruth-v0 (64x64, goal observation): a reference for what
plain RL reaches in a fixed CPU time, beside the imitation recipe of `lv2 bench agents`.

    python benchmarks/ppo_ground_truth.py --minutes 60 --out bench/ppo
    python benchmarks/ppo_ground_truth.py --minutes 60 --init truth-trained --learning-rate 1e-4 --out bench/ppo-ft

SB3 PPO with ``MultiInputPolicy`` (NatureCNN on the frame, the goal's colour and kind one-hot; with ``--init`` the
pixel agent's network, started from that shipped agent's imitation weights: ``agents.sb3.sb3_model``), 2 envs in one
process, episodes of at most 30 steps, the env's reward (metres of progress minus 0.01 per step). Every
``eval_every`` env steps the deterministic policy plays the first ``eval_scenes`` validation scenes (agent_val) and
its success within 30 steps is written to ``curve.csv``; ``curve.png`` plots it against env steps and minutes.
"""

import argparse
import csv
import time
from dataclasses import dataclass, fields
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

import lv2_env  # noqa: F401
from lv2_env import UNLIMITED_EPISODE_STEPS
from agents.evaluation import MAX_STEPS, score_policy
from agents.sb3 import sb3_model
from lv2_env.data.splits import split_scenes


@dataclass
class Args:
    minutes: float = 60.0  # wall-clock training budget
    size: int = 64
    n_envs: int = 2
    eval_every: int = 2048  # env steps between evaluations
    eval_scenes: int = 12
    seed: int = 0
    init: str = ""  # a pixel agent (shipped name or directory) to fine-tune; empty: NatureCNN from scratch
    learning_rate: float = 3e-4
    threads: int = 0  # torch threads; 0 keeps torch's default
    out: str = "bench/ppo"


class SB3Policy:
    """An SB3 model as the benchmark's ``policy(observation, info)``."""

    def __init__(self, model: PPO) -> None:
        self.model = model

    def reset(self, info=None, seed=None) -> None:
        pass

    def __call__(self, observation, info) -> int:
        return int(self.model.predict(observation, deterministic=True)[0])


class Curve(BaseCallback):
    def __init__(self, args: Args, eval_env: gym.Env, writer) -> None:
        super().__init__()
        self.args, self.eval_env, self.writer = args, eval_env, writer
        self.started = time.perf_counter()
        self.next_eval = 0
        self.scenes = split_scenes("agent_val", args.eval_scenes)

    def evaluate(self) -> None:
        result = score_policy(self.eval_env, SB3Policy(self.model), self.scenes, progress=False)
        minutes = (time.perf_counter() - self.started) / 60
        self.writer.writerow([self.num_timesteps, round(minutes, 2), result["success"], round(result["mean_return"], 3)])
        print(f"{self.num_timesteps} steps, {minutes:.1f} min: success {result['success']:.2f}, "
              f"return {result['mean_return']:+.2f}", flush=True)

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_eval:
            self.next_eval += self.args.eval_every
            self.evaluate()
        return (time.perf_counter() - self.started) / 60 < self.args.minutes

    def _on_training_end(self) -> None:
        self.evaluate()  # the policy the budget ended with (the evaluations' time counts in the budget)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in fields(Args):
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default)
    args = Args(**vars(parser.parse_args()))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kwargs = dict(goal_observation=True, height=args.size, width=args.size)
    train_env = make_vec_env("LV2/GroundTruth-v0", n_envs=args.n_envs, seed=args.seed,
                             env_kwargs=kwargs, wrapper_class=gym.wrappers.TimeLimit,
                             wrapper_kwargs={"max_episode_steps": MAX_STEPS})
    eval_env = gym.make("LV2/GroundTruth-v0", max_episode_steps=UNLIMITED_EPISODE_STEPS, **kwargs)
    if args.threads:
        torch.set_num_threads(args.threads)
    ppo_kwargs = dict(n_steps=256, batch_size=128, n_epochs=4, learning_rate=args.learning_rate, ent_coef=0.01,
                      seed=args.seed, verbose=0)
    model = sb3_model(args.init, train_env, **ppo_kwargs) if args.init else PPO("MultiInputPolicy", train_env,
                                                                                   **ppo_kwargs)
    with (out / "curve.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["env_steps", "minutes", "success", "mean_return"])
        model.learn(total_timesteps=10**9, callback=Curve(args, eval_env, writer))
    rows = np.atleast_1d(np.genfromtxt(out / "curve.csv", delimiter=",", names=True))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(rows["env_steps"], rows["success"], marker="o")
    ax.set_xlabel("env steps")
    ax.set_ylabel(f"success, {args.eval_scenes} validation scenes")
    ax.set_ylim(-0.05, 1.05)
    start = f"from {args.init}" if args.init else "from scratch"
    ax.set_title(f"PPO {start} in LV2/GroundTruth-v0 {args.size}x{args.size}, {rows['minutes'][-1]:.0f} min",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "curve.png", dpi=110)
    print(f"wrote {out / 'curve.csv'} and {out / 'curve.png'}")


if __name__ == "__main__":
    main()
