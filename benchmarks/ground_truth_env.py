"""Wall time of LV2/GroundTruth-v0 steps, split into rendering, control signals and the rest.

    python benchmarks/ground_truth_env.py --steps 30 --size 128
"""

from __future__ import annotations

import argparse
import platform
import time

import gymnasium as gym
import numpy as np
import torch

import lv2_env  # noqa: F401
import lv2_env.envs.ground_truth as gt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--clip-frames", type=int, default=17)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    timings = {"render": 0.0, "control": 0.0}

    def timed(name, fn):
        def wrapper(*a, **k):
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                timings[name] += time.perf_counter() - start

        return wrapper

    gt.compute_control_signals = timed("control", gt.compute_control_signals)
    env = gym.make("LV2/GroundTruth-v0", height=args.size, width=args.size, clip_frames=args.clip_frames,
                   action_mode="continuous", goal_radius=None, max_episode_steps=args.steps + 1)
    env.reset(seed=args.seed)
    renderer = env.unwrapped.renderer
    renderer.render = timed("render", renderer.render)
    rng = np.random.default_rng(args.seed)
    env.step(np.zeros(6, np.float32))  # warm-up
    timings.update(render=0.0, control=0.0)
    start = time.perf_counter()
    for _ in range(args.steps):
        action = (env.action_space.high * rng.uniform(-0.5, 1.0, 6)).astype(np.float32)
        env.step(action)
    total = time.perf_counter() - start
    frames = args.steps * (args.clip_frames - 1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}; "
          f"{args.steps} steps of {args.clip_frames}-frame clips at {args.size}x{args.size}")
    print(f"per step: {1000 * total / args.steps:7.1f} ms   (render {1000 * timings['render'] / args.steps:.1f} ms, "
          f"control signals {1000 * timings['control'] / args.steps:.1f} ms, "
          f"other {1000 * (total - timings['render'] - timings['control']) / args.steps:.1f} ms)")
    print(f"new frames per second of wall time: {frames / total:.0f}")


if __name__ == "__main__":
    main()
