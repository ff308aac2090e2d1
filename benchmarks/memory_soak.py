"""Does the world memory stay flat over 30 minutes? The memory alone, fed as World-v0 feeds it, for a long walk.

    python benchmarks/memory_soak.py --minutes 30 [--scene-seed N --style sunny]

Each one-second step of the evaluation walk (lv2_env.evaluation.rollouts.WALK, cycled) moves the camera through a
held-out scene, renders the path's last frame exactly (the ray caster), renders the memory from that pose with
its depth (what World-v0's conditioning costs for one frame; a clip renders 17) and adds the frame to the memory,
as World-v0 adds each clip's last frame. Every minute it prints the process's resident memory, the surfels held
and the seconds per step. No model runs: the generator's own memory is fixed (its history buffer has a fixed
number of frames), so what could grow over minutes is this.
"""

from __future__ import annotations

import argparse
import time

from agents.rollout import resident_memory_mb
from lv2_env.envs.ground_truth import GroundTruthEnv
from lv2_env.evaluation.rollouts import VALIDATION_SCENE_SEED, WALK
from lv2_env.conditioning.world_memory import WorldMemory


def soak(minutes: int, scene_seed: int, style: str) -> tuple[list[dict[str, float]], int]:
    """One row a minute (minute, resident MB, surfels held, memory MiB, seconds per step of that minute) and the
    memory's capacity in surfels."""
    env = GroundTruthEnv(goal_radius=None)
    _, info = env.reset(seed=0, options={"scene_seed": scene_seed, "style": style})
    world = env.world
    memory = WorldMemory(env.intrinsics)
    memory.add(info["frames"][-1], info["depth"][-1], info["poses"][-1], protected=True)
    steps_per_minute = int(round(60 / env.clip.duration))
    rows, tick = [], time.perf_counter()
    for k in range(minutes * steps_per_minute):
        path = world.path(WALK[k % len(WALK)])
        out = world.renderer.render(path.poses[-1:])
        memory.render(path.poses[-1:], out.depth)
        memory.add(out.rgb[0], out.depth[0], path.poses[-1])
        world.advance(path)
        if (k + 1) % steps_per_minute == 0:
            now = time.perf_counter()
            rows.append({"minute": (k + 1) // steps_per_minute, "rss_mb": resident_memory_mb(),
                         "surfels": len(memory), "memory_mib": memory.nbytes / 2**20,
                         "seconds_per_step": (now - tick) / steps_per_minute})
            tick = now
            print("| {minute} | {rss_mb:.1f} | {surfels} | {memory_mib:.1f} | {seconds_per_step:.3f} |".format(**rows[-1]),
                  flush=True)
    return rows, memory.capacity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--scene-seed", type=int, default=VALIDATION_SCENE_SEED)
    parser.add_argument("--style", default="sunny")
    args = parser.parse_args()
    if args.minutes < 1:
        parser.error(f"--minutes must be at least 1, got {args.minutes}")
    print(f"world memory soak: {args.minutes} minutes of the evaluation walk, scene {args.scene_seed} ({args.style})")
    print("| minute | resident MB | surfels held | memory MiB | s per step |")
    print("|---|---|---|---|---|")
    rows, capacity = soak(args.minutes, args.scene_seed, args.style)
    first, last = rows[0], rows[-1]
    change = 100.0 * (last["rss_mb"] - first["rss_mb"]) / first["rss_mb"]
    print(f"resident memory: minute 1 {first['rss_mb']:.1f} MB, minute {last['minute']} {last['rss_mb']:.1f} MB "
          f"({change:+.1f}%); surfels {first['surfels']} -> {last['surfels']} of {capacity}; "
          f"peak step time {max(r['seconds_per_step'] for r in rows):.3f} s")
    print("aim (issue 13): resident memory after 30 minutes within 5% of minute 1: "
          + ("met" if abs(change) <= 5.0 and last["minute"] >= 30 else "not met" if abs(change) > 5.0 else "run 30 minutes"))


if __name__ == "__main__":
    main()
