"""Generated frames per second of LV2/World-v0 with the shipped model, everything included.

    python benchmarks/world_env.py                      # 300 steps single, then N = 1, 4, 8 batched
    python benchmarks/world_env.py --steps 30 --batch-steps 3 --batch-sizes 1 4

Single env: ``steps`` steps of a random discrete policy (controls from the scene, generation, VAE decoding,
reward); reports new frames per second of wall time over the whole loop, and the step time (median of the 5
steps around it) and resident memory at step 10 and at the last step. Batched: ``gymnasium.make_vec`` with N
worlds, frames per second over ``batch-steps`` steps after one warm-up step.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import gymnasium as gym
import numpy as np

import lv2_env  # noqa: F401


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def single(steps: int, checkpoint: str | None, seed: int) -> dict:
    env = gym.make("LV2/World-v0", checkpoint=checkpoint, goal_radius=None, max_episode_steps=steps + 1)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    new_frames = env.unwrapped.clip.new_frames
    times, memory = [], []
    start = time.perf_counter()
    for _ in range(steps):
        tick = time.perf_counter()
        env.step(int(rng.choice([1, 1, 1, 5, 6, 3, 4])))  # mostly forward, some turns and strafes
        times.append(time.perf_counter() - tick)
        memory.append(rss_mb())
    wall = time.perf_counter() - start
    at = lambda values, i: float(np.median(values[max(0, i - 2) : i + 3]))  # noqa: E731
    last = steps - 1
    return {
        "steps": steps,
        "generated_fps": steps * new_frames / wall,
        "step_seconds_at_10": at(times, 9),
        f"step_seconds_at_{steps}": at(times, last),
        "rss_mb_at_10": memory[9],
        f"rss_mb_at_{steps}": memory[last],
        "parts_at_last_step": env.get_wrapper_attr("last_timings"),
    }


def batched(n: int, steps: int, checkpoint: str | None, seed: int) -> dict:
    vec = gym.make_vec("LV2/World-v0", num_envs=n, checkpoint=checkpoint, goal_radius=None)
    vec.reset(seed=seed)
    actions = np.ones(n, dtype=np.int64)
    vec.step(actions)  # warm-up (first clip has no history)
    start = time.perf_counter()
    for _ in range(steps):
        vec.step(actions)
    wall = time.perf_counter() - start
    new_frames = vec.envs[0].clip.new_frames
    return {"num_envs": n, "steps": steps, "generated_fps": n * steps * new_frames / wall,
            "seconds_per_step": wall / steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-steps", type=int, default=5)
    parser.add_argument("--batch-sizes", type=int, nargs="*", default=[1, 4, 8])
    parser.add_argument("--checkpoint", default=None, help="default: the shipped tiny model")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.steps < 10:
        parser.error("--steps must be at least 10 (step 10 is a reference point)")
    import torch

    print(f"# {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}")
    result = single(args.steps, args.checkpoint, args.seed)
    print(json.dumps(result, indent=1))
    base = None
    for n in args.batch_sizes:
        row = batched(n, args.batch_steps, args.checkpoint, args.seed)
        base = base or row["generated_fps"]
        row["speed_up_vs_first"] = row["generated_fps"] / base
        print(json.dumps(row))


if __name__ == "__main__":
    main()
