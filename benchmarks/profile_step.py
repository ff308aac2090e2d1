"""Where one LV2/World-v0 step spends its time: torch.profiler's top operators, with their input shapes.

    python benchmarks/profile_step.py                       # precision auto, the shipped model
    python benchmarks/profile_step.py --precision fp32 --rows 30

Profiles the third step of a seeded episode (the first two warm oneDNN's kernels up) and prints the step's parts
(``last_timings``) and the operators sorted by their own CPU time. To see what a CPU without native bf16 does
on one that has it, run with ``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2`` (torch and oneDNN then use
AVX2 kernels only, and bf16 is emulated as on such a CPU).
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import torch
from torch.profiler import ProfilerActivity, profile

import lv2_env  # noqa: F401
from model.precision import PRECISIONS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", choices=PRECISIONS, default="auto")
    parser.add_argument("--checkpoint", default=None, help="default: the shipped tiny model")
    parser.add_argument("--rows", type=int, default=20)
    args = parser.parse_args()
    env = gym.make("LV2/World-v0", checkpoint=args.checkpoint, goal_radius=None, precision=args.precision)
    env.reset(seed=0)
    env.step(1)
    env.step(1)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        env.step(1)
    print(f"capability {torch.backends.cpu.get_cpu_capability()}, precision {env.unwrapped.precision}, "
          f"{torch.get_num_threads()} threads; parts (s): "
          + ", ".join(f"{k} {v:.3f}" for k, v in env.get_wrapper_attr("last_timings").items()))
    print(prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=args.rows,
                                                             max_name_column_width=32, max_shapes_column_width=64))


if __name__ == "__main__":
    main()
