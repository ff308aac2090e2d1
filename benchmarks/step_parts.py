"""Where one LV2/World-v0 step goes against what the machine can do: seconds, GFLOP and the fraction of peak, per part.

    python benchmarks/step_parts.py                         # the defaults (precision auto, the shipped model)
    python benchmarks/step_parts.py --precision fp32 --steps 8
    python benchmarks/step_parts.py --control-encoder distilled --sampling-steps 1

1. Peak: the machine's measured matmul rate in the step's precision (2048x2048, best of 5), the yardstick.
2. Seconds: the median of each part of ``steps`` seeded steps (``env.get_wrapper_attr("last_timings")``) after
   two warm-up steps, and of the whole ``env.step``; "other" is the step less its timed parts.
3. GFLOP: one more step under ``torch.utils.flop_counter.FlopCounterMode``, which counts matmuls and convolutions
   (2 per multiply-add) by the module that ran them: the VAE encoder (control videos and history) or the
   distilled control encoder, the DiT, the VAE decoder. Parts with no module (ray casting, tracks,
   the memory's render) are counted as "-": their arithmetic is not matmul work.

Prints one markdown table (paste it into BENCHMARKS.md with the date and machine) and, with ``--json``, the
figures as JSON. Run it with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass

import gymnasium as gym
import torch
from torch.utils.flop_counter import FlopCounterMode

import lv2_env  # noqa: F401
from model.precision import PRECISIONS

ACTIONS = [1, 1, 5, 1, 6, 3, 1, 4]  # mostly forward, some turns and strafes

# Part of a step (``last_timings`` key) -> the modules whose arithmetic it runs. FlopCounterMode names a module
# called on its own by its class (``WanEncoder3d``), its children by their path below it.
PART_MODULES = {
    "control_encoding": ("WanEncoder3d", "ControlEncoder"),
    "denoising": ("LongVieTransformer",),
    "decoding": ("WanDecoder3d",),
}


@dataclass
class Args:
    precision: str = "auto"
    steps: int = 6
    checkpoint: str | None = None
    control_encoder: str = "full"
    sampling_steps: int | None = None
    decoder: str = "full"
    json: bool = False


def matmul_peak_gflops(autocast: torch.dtype | None, size: int = 2048, repeats: int = 5) -> float:
    """Best-of-``repeats`` GFLOP/s of one ``size`` x ``size`` matmul in the step's precision."""
    dtype = autocast or torch.float32
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        tick = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - tick)
    return 2 * size**3 / best / 1e9


def module_flops(counter: FlopCounterMode) -> dict[str, float]:
    """GFLOP per part of :data:`PART_MODULES`, from the counter's totals of the modules called on their own."""
    out = {part: 0.0 for part in PART_MODULES}
    for name, ops in counter.get_flop_counts().items():
        for part, roots in PART_MODULES.items():
            if name in roots:
                out[part] += sum(ops.values()) / 1e9
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", choices=PRECISIONS, default="auto")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--checkpoint", default=None, help="default: the shipped tiny model")
    parser.add_argument("--control-encoder", choices=["full", "distilled"], default="full")
    parser.add_argument("--sampling-steps", type=int, default=None, help="denoising steps (default: the model's)")
    parser.add_argument("--decoder", choices=["full", "fast"], default="full")
    parser.add_argument("--json", action="store_true")
    args = Args(**vars(parser.parse_args()))

    env = gym.make("LV2/World-v0", checkpoint=args.checkpoint, goal_radius=None, precision=args.precision,
                   control_encoder=args.control_encoder, sampling_steps=args.sampling_steps,
                   decoder=args.decoder)
    world = env.unwrapped
    autocast = world.model.autocast

    # 1. The yardstick.
    peak = matmul_peak_gflops(autocast)

    # 2. Seconds per part.
    env.reset(seed=0)
    env.step(1)
    env.step(1)
    parts: dict[str, list[float]] = {}
    totals = []
    for i in range(args.steps):
        tick = time.perf_counter()
        env.step(ACTIONS[i % len(ACTIONS)])
        totals.append(time.perf_counter() - tick)
        for name, seconds in env.get_wrapper_attr("last_timings").items():
            parts.setdefault(name, []).append(seconds)
    seconds = {name: statistics.median(v) for name, v in parts.items()}
    step_seconds = statistics.median(totals)
    seconds["other"] = max(0.0, step_seconds - sum(seconds.values()))

    # 3. Arithmetic per part, one step.
    counter = FlopCounterMode(display=False)
    with counter:
        env.step(1)
    gflop = module_flops(counter)
    total_gflop = counter.get_total_flops() / 1e9

    rows = []
    for name, s in seconds.items():
        g = gflop.get(name)
        rows.append({"part": name, "seconds": s, "gflop": g, "gflops": g / s if g else None,
                     "fraction_of_peak": g / s / peak if g else None})
    result = {
        "precision": world.precision, "threads": torch.get_num_threads(),
        "capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
        "control_encoder": world.model.control_encoder_name, "decoder": args.decoder,
        "sampling_steps": world.model.sampling_options().steps,
        "peak_matmul_gflops": peak, "step_seconds": step_seconds, "steps_per_second": 1 / step_seconds,
        "total_gflop": total_gflop, "fraction_of_peak": total_gflop / step_seconds / peak, "parts": rows,
    }
    print(f"# {world.precision}, {result['threads']} threads, capability {result['capability']}, torch "
          f"{result['torch']}, control encoder {result['control_encoder']}, "
          f"{world.model.sampling_options().steps} denoising steps, {args.decoder} decoder; matmul peak {peak:.0f} GFLOP/s; "
          f"median of {args.steps} steps")
    print("| part | seconds | GFLOP | GFLOP/s | fraction of peak |")
    print("|---|---|---|---|---|")
    for row in rows:
        counted = ("-", "-", "-") if not row["gflop"] else (
            f"{row['gflop']:.1f}", f"{row['gflops']:.0f}", f"{row['fraction_of_peak']:.2f}")
        print(f"| {row['part']} | {row['seconds']:.3f} | " + " | ".join(counted) + " |")
    print(f"| **step** | **{step_seconds:.3f}** ({1 / step_seconds:.2f} steps/s) | {total_gflop:.1f} | "
          f"{total_gflop / step_seconds:.0f} | {result['fraction_of_peak']:.2f} |")
    if args.json:
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
