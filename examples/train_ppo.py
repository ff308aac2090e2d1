"""PPO (stable-baselines3, CNN policy) trained inside the generated world, then tested in the exact one.

    python examples/train_ppo.py                          # 256 steps of PPO, about 6 minutes on 2 CPU cores
    python examples/train_ppo.py --total-timesteps 4096   # longer

The agent sees 128x128 generated frames and is rewarded for walking toward the goal object named in the
scene's caption (progress in metres minus 0.01 per step, computed on the true camera path). After training,
the policy and a uniformly random one each play `eval-episodes` episodes of LV2/GroundTruth-v0 (the exact
render, which the agent never saw) and their mean returns are printed side by side.
"""

import argparse
from dataclasses import dataclass, fields

import gymnasium as gym
import numpy as np
from stable_baselines3 import PPO

import lv2_env  # noqa: F401


@dataclass
class Args:
    total_timesteps: int = 256
    n_steps: int = 64  # rollout length per PPO update
    episode_steps: int = 32  # 32 seconds of video per training episode
    eval_episodes: int = 5
    eval_steps: int = 20
    seed: int = 0


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in fields(Args):
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default)
    return Args(**vars(parser.parse_args()))


def mean_return(env: gym.Env, act, episodes: int, seed: int) -> float:
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(obs))
            total += reward
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


args = parse_args()

# 1. Train in the generated world.
world = gym.make("LV2/World-v0", max_episode_steps=args.episode_steps)
model = PPO("CnnPolicy", world, n_steps=args.n_steps, batch_size=32, n_epochs=4, learning_rate=3e-4,
            seed=args.seed, verbose=1)
model.learn(total_timesteps=args.total_timesteps, progress_bar=False)
world.close()

# 2. Test in the exact world, beside a random policy.
truth = gym.make("LV2/GroundTruth-v0", max_episode_steps=args.eval_steps)
rng = np.random.default_rng(args.seed)
trained = mean_return(truth, lambda obs: int(model.predict(obs, deterministic=True)[0]), args.eval_episodes, 10_000)
random = mean_return(truth, lambda obs: int(rng.integers(truth.action_space.n)), args.eval_episodes, 10_000)
print(f"mean return on LV2/GroundTruth-v0 over {args.eval_episodes} episodes: PPO {trained:+.2f}, random {random:+.2f}")
