"""What ``precision="auto"`` decides on this CPU, in fresh processes (the probe runs once per process).

    python benchmarks/bf16_probe.py --runs 8
"""

from __future__ import annotations

import argparse
import subprocess
import sys

# torch is imported before the clock starts: the figure is the probe's own cost.
CHILD = ("import time, torch; from model.precision import bf16_speedup; t = time.perf_counter(); "
         "p = bf16_speedup(); ms = (time.perf_counter() - t) * 1000; "
         "print(p.describe(), '->', 'bf16' if p.faster else 'fp32', f'in {ms:.0f} ms')")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=8)
    args = parser.parse_args()
    for _ in range(args.runs):
        print(subprocess.run([sys.executable, "-c", CHILD], check=True, capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
