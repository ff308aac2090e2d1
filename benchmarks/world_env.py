"""Generated frames per second of LV2/World-v0 with the shipped model, everything included, per precision.

    python benchmarks/world_env.py                        # auto, fp32, bf16; then SubprocVecEnv 1, 2, 4 workers
    python benchmarks/world_env.py --steps 30 --precisions auto --workers 1 2
    python benchmarks/world_env.py --batch-sizes 1 4      # also gymnasium.make_vec batched worlds
    python benchmarks/world_env.py --device cuda --precisions auto --workers --batch-sizes 1 8 64   # a GPU

Prints the CPU (torch's capability and the bf16 flags of /proc/cpuinfo), the precision each run resolved to, the
torch threads, and for each precision: new frames per second over ``steps`` steps of a random discrete policy
(controls from the scene, generation, VAE decoding, reward; after one warm-up step), the median step and its
parts, and resident memory at step 10 and at the last step. Each precision runs in its own process, so one
run's probe, warm-up or memory does not colour the next. The SubprocVecEnv rows are env steps per second of
SB3's ``SubprocVecEnv`` (forkserver, each worker with its default share of the cores) over ``vec-steps``
steps after one warm-up step. Run it with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

ACTIONS = [1, 1, 1, 5, 6, 3, 4]  # mostly forward, some turns and strafes


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def cpu_description() -> str:
    import torch

    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    bf16 = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return (f"{model}, {os.cpu_count()} cores, torch {torch.__version__}, capability "
            f"{torch.backends.cpu.get_cpu_capability()}, flags {' '.join(bf16) or '-'}")


def _timed_steps(vec, num_envs: int, steps: int) -> float:
    """Wall seconds of ``steps`` vector steps of all-forward actions, after one warm-up step."""
    actions = np.ones(num_envs, dtype=np.int64)
    vec.step(actions)
    start = time.perf_counter()
    for _ in range(steps):
        vec.step(actions)
    return time.perf_counter() - start


def single(precision: str, steps: int, checkpoint: str | None, seed: int, world: dict) -> dict:
    import gymnasium as gym
    import torch

    import lv2_env  # noqa: F401

    from model.precision import bf16_speedup

    env = gym.make("LV2/World-v0", checkpoint=checkpoint, goal_radius=None, precision=precision,
                   max_episode_steps=steps + 2, **world)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    env.step(1)  # warm-up: oneDNN picks its kernels on the first clip
    new_frames = env.unwrapped.clip.new_frames
    times, memory, parts = [], [], []
    start = time.perf_counter()
    for _ in range(steps):
        tick = time.perf_counter()
        env.step(int(rng.choice(ACTIONS)))
        times.append(time.perf_counter() - tick)
        memory.append(rss_mb())
        parts.append(env.get_wrapper_attr("last_timings"))
    wall = time.perf_counter() - start
    probe = bf16_speedup()
    return {
        "precision_asked": precision,
        "precision": env.unwrapped.precision,
        **world,
        "control_encoder": env.unwrapped.model.control_encoder_name,
        "torch_threads": torch.get_num_threads(),
        "bf16_probe": {"matmul": round(probe.matmul, 3), "conv3d": round(probe.conv3d, 3)},
        "steps": steps,
        "generated_fps": round(steps * new_frames / wall, 2),
        "median_step_seconds": round(float(np.median(times)), 3),
        "median_parts_seconds": {k: round(float(np.median([p[k] for p in parts])), 3) for k in parts[0]},
        "rss_mb_at_10": round(memory[min(9, steps - 1)], 1),
        f"rss_mb_at_{steps}": round(memory[-1], 1),
    }


def batched(n: int, steps: int, checkpoint: str | None, seed: int, world: dict) -> dict:
    import gymnasium as gym

    import lv2_env  # noqa: F401

    vec = gym.make_vec("LV2/World-v0", num_envs=n, checkpoint=checkpoint, goal_radius=None, **world)
    vec.reset(seed=seed)
    wall = _timed_steps(vec, n, steps)
    new_frames = vec.envs[0].clip.new_frames
    return {"num_envs": n, "steps": steps, "precision": vec.precision, "torch_threads": vec.torch_threads,
            "generated_fps": round(n * steps * new_frames / wall, 2), "seconds_per_step": round(wall / steps, 3)}


def _make_world(checkpoint: str | None, world: dict):
    def make():
        import gymnasium as gym

        from lv2_env import UNLIMITED_EPISODE_STEPS  # (and registers LV2/)

        return gym.make("LV2/World-v0", checkpoint=checkpoint, goal_radius=None,
                        max_episode_steps=UNLIMITED_EPISODE_STEPS, **world)

    return make


def subproc(workers: int, steps: int, checkpoint: str | None, seed: int, world: dict) -> dict:
    from stable_baselines3.common.vec_env import SubprocVecEnv

    vec = SubprocVecEnv([_make_world(checkpoint, world) for _ in range(workers)], start_method="forkserver")
    try:
        vec.seed(seed)
        vec.reset()
        wall = _timed_steps(vec, workers, steps)
        threads = vec.get_attr("torch_threads")
        precision = vec.get_attr("precision")
    finally:
        vec.close()
    return {"subproc_workers": workers, "steps": steps, "worker_threads": threads, "precision": precision[0],
            "env_steps_per_second": round(workers * steps / wall, 3)}


def _in_subprocess(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args, "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="steps per precision after the warm-up (default 30)")
    parser.add_argument("--precisions", nargs="*", default=["auto", "fp32", "bf16"], choices=["auto", "fp32", "bf16"])
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4], help="SubprocVecEnv worker counts")
    parser.add_argument("--vec-steps", type=int, default=5, help="steps of each SubprocVecEnv run (default 5)")
    parser.add_argument("--batch-sizes", type=int, nargs="*", default=[], help="gymnasium.make_vec batch sizes")
    parser.add_argument("--checkpoint", default=None, help="default: the shipped tiny model")
    parser.add_argument("--decoder", choices=["full", "fast"], default="full")
    parser.add_argument("--control-encoder", choices=["full", "distilled"], default="full")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--control-source", choices=["scene", "cache"], default="scene",
                        help="cache: controls from the point cache of generated frames (a world from a picture)")
    parser.add_argument("--no-ground-truth-frames", action="store_true",
                        help="ground_truth_frames=False: skip shading the truth's render (what an agent's run uses)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one run, for the parent
    parser.add_argument("--only", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    world = {"decoder": args.decoder, "control_encoder": args.control_encoder, "device": args.device,
             "ground_truth_frames": not args.no_ground_truth_frames, "control_source": args.control_source}
    if args.json:  # a child run: one measurement, one JSON line
        kind, value = args.only.split("=")
        if kind == "precision":
            result = single(value, args.steps, args.checkpoint, args.seed, world)
        elif kind == "workers":
            result = subproc(int(value), args.vec_steps, args.checkpoint, args.seed, world)
        else:
            result = batched(int(value), args.vec_steps, args.checkpoint, args.seed, world)
        print(json.dumps(result))
        return

    print(f"# {time.strftime('%Y-%m-%d')}, {cpu_description()}")
    common = ["--steps", str(args.steps), "--vec-steps", str(args.vec_steps), "--seed", str(args.seed),
              "--decoder", args.decoder, "--control-encoder", args.control_encoder, "--device", args.device,
              "--control-source", args.control_source,
              *(["--no-ground-truth-frames"] if args.no_ground_truth_frames else [])]
    if args.checkpoint:
        common += ["--checkpoint", args.checkpoint]
    for precision in args.precisions:
        print(json.dumps(_in_subprocess([*common, "--only", f"precision={precision}"])), flush=True)
    base = None
    for workers in args.workers:
        row = _in_subprocess([*common, "--only", f"workers={workers}"])
        base = base or row["env_steps_per_second"]
        row["vs_first"] = round(row["env_steps_per_second"] / base, 2)
        print(json.dumps(row), flush=True)
    for n in args.batch_sizes:
        print(json.dumps(_in_subprocess([*common, "--only", f"batch={n}"])), flush=True)


if __name__ == "__main__":
    main()
