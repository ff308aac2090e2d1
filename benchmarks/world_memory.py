"""Does the world memory hold a world better than the last frame alone? Long walks in held-out scenes, each
generated three times (``conditioning="last_frame"``; ``"memory"`` without and with ``composite``), scored against
the exact render.

    python benchmarks/world_memory.py --seconds 60 --scenes 4 [--precision auto]
    python benchmarks/world_memory.py --timing [--steps 40]     # seconds per step and the memory's own cost
    python benchmarks/world_memory.py --fog-gains 1.1 1.25 1.5 --scene-index 8   # MAX_FOG_GAIN_SHOWN in fog walks

Per run: PSNR (frames 1..), SSIM (every 4th frame), sharpness (gradient energy over the truth's: PSNR rewards
blur, this does not), PSNR of the last minute, seconds per step and the memory's size. Baselines that need no
model: repeat frame 0, and the memory of frame 0 alone rendered along the path with its holes filled by OpenCV's
inpainting (``cv2.inpaint``, Telea).

The shipped model is trained on the memory's renders and refuses ``conditioning="last_frame"``; the last_frame run
here loads it with that record cleared (:func:`world_env`): the same cost as before the memory, and what the last
frame alone gives a model that was not trained on it.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from lv2_env.data.splits import SPLIT_SEEDS
from lv2_env.envs.world import WorldEnv
from lv2_env.evaluation.baselines import memory_inpaint
from lv2_env.evaluation.rollouts import WALK
from model.world_model import WorldModel
from lv2_env.conditioning.world_memory import WorldMemory
from model.metrics import psnr, sharpness_ratio, ssim
from model.precision import add_precision_argument

STYLES = ("sunny", "night", "fog", "snow", "dusk", "desert")
# World-v0's ways of conditioning a clip: (name, conditioning, composite).
MODES = (("last_frame", "last_frame", False), ("memory", "memory", False), ("memory+composite", "memory", True))


def world_env(conditioning: str, composite: bool, precision: str) -> WorldEnv:
    """The shipped model's world with this conditioning; for ``last_frame``, its memory training record cleared."""
    model = WorldModel.load(precision=precision)
    if conditioning == "last_frame":
        model.checkpoint.preset = dataclasses.replace(model.checkpoint.preset, trained_conditioning=None)
    return WorldEnv(goal_radius=None, conditioning=conditioning, composite=composite, model=model)


def walk(env: WorldEnv, scene_seed: int, style: str, steps: int) -> dict[str, np.ndarray]:
    """Generated and true frames of ``steps`` clips along the fixed walk, and the path's poses and depth."""
    _, info = env.reset(seed=0, options={"scene_seed": scene_seed, "style": style})
    generated, truth, poses, depth = [info["frames"][-1:]], [info["ground_truth_frames"][-1:]], [info["poses"]], [info["depth"]]
    seconds = []
    for k in range(steps):
        tick = time.perf_counter()
        _, _, _, _, info = env.step(WALK[k % len(WALK)])
        seconds.append(time.perf_counter() - tick)
        generated.append(info["frames"][1:])
        truth.append(info["ground_truth_frames"][1:])
        poses.append(info["poses"][1:])
        depth.append(info["depth"][1:])
    return {"generated": np.concatenate(generated), "truth": np.concatenate(truth), "poses": np.concatenate(poses),
            "depth": np.concatenate(depth), "seconds": float(np.mean(seconds))}


def scores(frames: np.ndarray, truth: np.ndarray, fps: int) -> dict[str, float]:
    minute = min(len(truth) - 1, 60 * fps)
    return {"psnr": psnr(frames[1:], truth[1:]), "ssim": ssim(frames[1::4], truth[1::4]),
            "sharpness": sharpness_ratio(frames[1:], truth[1:]),
            "psnr_last_minute": psnr(frames[-minute:], truth[-minute:])}


def timing(steps: int, precision: str) -> None:
    """World-v0's seconds per step with each conditioning (first and last 10 steps of one walk: the memory
    grows), and what adding a frame to the memory and rendering 17 poses from it cost."""
    scene = SPLIT_SEEDS["validation"][0]
    print("| conditioning | s per step, steps 1-10 | s per step, last 10 | surfels at the end | parts, last 10 (s) |")
    print("|---|---|---|---|---|")
    for mode, conditioning, composite in MODES:
        env = world_env(conditioning, composite, precision)
        env.reset(seed=0, options={"scene_seed": scene, "style": "sunny"})
        seconds, parts = [], []
        for k in range(steps):
            tick = time.perf_counter()
            info = env.step(WALK[k % len(WALK)])[-1]
            seconds.append(time.perf_counter() - tick)
            parts.append(env.last_timings)
        held = "" if env.memory is None else str(len(env.memory))
        last = {name: np.mean([p.get(name, 0.0) for p in parts[-10:]]) for name in parts[-1]}
        print(f"| {mode} | {np.mean(seconds[:10]):.2f} | {np.mean(seconds[-10:]):.2f} | {held} | "
              + ", ".join(f"{name} {value:.3f}" for name, value in last.items()) + " |", flush=True)
    memory, path = env.memory, env.world.path(1).poses
    tick = time.perf_counter()
    render = memory.render(path)
    print(f"render of {len(path)} poses from {len(memory)} surfels: {1000 * (time.perf_counter() - tick):.0f} ms "
          f"({render.covered.mean():.0%} of pixels covered); memory {memory.nbytes / 2**20:.1f} MiB (fixed)")
    fresh = WorldMemory(env.intrinsics)
    tick = time.perf_counter()
    fresh.add(info["frames"][-1], info["depth"][-1], info["poses"][-1])
    print(f"adding one frame to an empty memory: {1000 * (time.perf_counter() - tick):.1f} ms")


def fog_gains(gains: list[float], scene_indices: list[int], seconds: int, precision: str) -> None:
    """The shipped world (memory + composite) on fog walks with each ``MAX_FOG_GAIN_SHOWN``: scene ``r`` is held-out
    seed ``eval[0] + 7919 r`` (lv2 eval's six are r = 0-5; its fog scene is r = 2)."""
    import lv2_env.conditioning.world_memory as world_memory

    env = world_env("memory", True, precision)
    steps = int(np.ceil(seconds / env.clip.duration))
    print(f"fog walks of {steps} clips, {env.precision}")
    print("| scene | MAX_FOG_GAIN_SHOWN | PSNR dB | SSIM | sharpness |")
    print("|---|---|---|---|---|")
    for r in scene_indices:
        scene = SPLIT_SEEDS["validation"][0] + 7919 * r
        for gain in gains:
            world_memory.MAX_FOG_GAIN_SHOWN = gain  # read at each render, so the env's memory follows it
            run = walk(env, scene, "fog", steps)
            s = scores(run["generated"], run["truth"], env.clip.fps)
            print(f"| {scene} | {gain:g} | {s['psnr']:.2f} | {s['ssim']:.3f} | {s['sharpness']:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--timing", action="store_true", help="time the steps instead of scoring the walks")
    parser.add_argument("--steps", type=int, default=40, help="with --timing: steps of the walk")
    parser.add_argument("--fog-gains", type=float, nargs="+", metavar="GAIN",
                        help="score fog walks (--seconds long) with each MAX_FOG_GAIN_SHOWN instead")
    parser.add_argument("--scene-index", type=int, nargs="+", default=[8],
                        help="with --fog-gains: held-out scenes r (seed eval[0] + 7919 r; default 8, not one of "
                             "lv2 eval's six)")
    add_precision_argument(parser)
    args = parser.parse_args()
    if args.timing:
        timing(args.steps, args.precision)
        return
    if args.fog_gains:
        if min(args.fog_gains) < 1.0:
            parser.error(f"--fog-gains are ratios of fog, at least 1, got {args.fog_gains}")
        fog_gains(args.fog_gains, args.scene_index, args.seconds, args.precision)
        return
    envs = {mode: world_env(conditioning, composite, args.precision) for mode, conditioning, composite in MODES}
    steps = int(np.ceil(args.seconds / envs["memory"].clip.duration))
    fps = envs["memory"].clip.fps
    print(f"{args.scenes} held-out scenes, {steps} clips ({steps * envs['memory'].clip.duration:.0f} s) each, "
          f"{envs['memory'].precision}")
    print("| scene | style | method | PSNR dB | SSIM | sharpness | PSNR last minute dB | s per step |")
    print("|---|---|---|---|---|---|---|---|")
    totals: dict[str, list[dict[str, float]]] = {}
    for r in range(args.scenes):
        scene, style = SPLIT_SEEDS["validation"][0] + 7919 * r, STYLES[r % len(STYLES)]
        runs = {mode: walk(env, scene, style, steps) for mode, env in envs.items()}
        truth = runs["memory"]["truth"]
        rows = {mode: {**scores(run["generated"], truth, fps), "seconds": run["seconds"]} for mode, run in runs.items()}
        rows["repeat"] = scores(np.repeat(truth[:1], len(truth), axis=0), truth, fps)
        rows["memory+inpaint"] = scores(memory_inpaint(truth[0], runs["memory"]["depth"][0], runs["memory"]["poses"],
                                                                envs["memory"].intrinsics), truth, fps)
        for method, s in rows.items():
            totals.setdefault(method, []).append(s)
            print(f"| {scene} | {style} | {method} | {s['psnr']:.2f} | {s['ssim']:.3f} | {s['sharpness']:.2f} | "
                  f"{s['psnr_last_minute']:.2f} | {s.get('seconds', float('nan')):.2f} |", flush=True)
    print("\nmeans over scenes:")
    for method, rows in totals.items():
        mean = {k: float(np.mean([r[k] for r in rows if k in r])) if any(k in r for r in rows) else float("nan")
                for k in ("psnr", "ssim", "sharpness", "psnr_last_minute", "seconds")}
        print(f"| {method} | {mean['psnr']:.2f} | {mean['ssim']:.3f} | {mean['sharpness']:.2f} | "
              f"{mean['psnr_last_minute']:.2f} | {mean['seconds']:.2f} |")
    memory = envs["memory"].unwrapped.memory
    print(f"world memory: {len(memory)} surfels held of {memory.capacity}, {memory.nbytes / 2**20:.1f} MiB (fixed)")


if __name__ == "__main__":
    main()
