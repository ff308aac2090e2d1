"""Time the ray caster on clips like the environment renders: one warm-up, then the median and min of repeats.

Usage: python benchmarks/render.py [--frames 17] [--size 128] [--repeats 5] [--objects 100] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch

from lv2_env.signals.camera import Intrinsics, apply_motion, poses_from_states
from lv2_env.worlds import Renderer, generate_scene


def walk_clip(frames: int, yaw: float) -> np.ndarray:
    """Poses ``[frames, 4, 4]`` of a walk from the spawn point: 0.25 m forward and a slight turn per frame."""
    start = np.array([0.0, 0.0, 1.6, yaw, -0.05, 0.0])
    steps = np.arange(frames)[:, None] * np.array([0.25, 0.0, 0.0, 0.02, 0.0, 0.0])  # [F, 6]
    return poses_from_states(apply_motion(start, steps))


def time_render(renderer: Renderer, poses: np.ndarray, repeats: int) -> list[float]:
    renderer.render(poses)  # warm-up: first-call allocations and kernel dispatch caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        renderer.render(poses)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--size", type=int, default=128, help="square image side in pixels")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--objects", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fov", type=float, default=90.0, help="horizontal field of view in degrees")
    args = parser.parse_args()

    intrinsics = Intrinsics.from_fov(args.fov, args.size, args.size)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}; "
        f"{args.frames} frames of {args.size}x{args.size}, fov {args.fov:g}, {args.objects} objects, "
        f"{args.repeats} repeats after 1 warm-up"
    )
    print(f"{'seed':>4} {'style':>7} {'objects':>7} {'hit px':>7} {'median ms':>10} {'min ms':>8} {'ms/frame':>9}")
    medians = []
    for seed in args.seeds:
        scene = generate_scene(seed, num_objects=args.objects)
        renderer = Renderer(scene, intrinsics)
        lm = scene.objects[scene.landmark].center
        poses = walk_clip(args.frames, yaw=float(np.arctan2(-lm[0], lm[1])))  # face the landmark
        times = time_render(renderer, poses, args.repeats)
        hit = float((renderer.render(poses).object_id > 0).mean())
        med = statistics.median(times)
        medians.append(med)
        print(
            f"{seed:>4} {scene.style.name:>7} {len(scene.objects):>7} {hit:>7.1%} {1e3 * med:>10.1f} "
            f"{1e3 * min(times):>8.1f} {1e3 * med / args.frames:>9.2f}"
        )
    print(f"mean of medians: {1e3 * statistics.mean(medians):.1f} ms per clip")


if __name__ == "__main__":
    main()
