"""How long ``lv2 --help`` (and each verb's ``--help``) takes in a fresh process, and which heavy modules it loads.

    python benchmarks/cli_help.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

VERBS = ([], ["rollout"], ["play"], ["generate"], ["data", "procedural"], ["train"], ["eval"])
HEAVY = ("torch", "av", "pygame", "gymnasium", "numpy")
_LOADED = (
    "import sys; from agents.cli import build_parser\n"
    "try:\n    build_parser().parse_args(sys.argv[1:] + ['--help'])\nexcept SystemExit:\n    pass\n"
    "print(','.join(m for m in %r if m in sys.modules), file=sys.stderr)" % (HEAVY,)
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print("| command | median s | heavy modules loaded |")
    print("|---|---|---|")
    for verb in VERBS:
        seconds = []
        for _ in range(args.repeats):
            tick = time.perf_counter()
            subprocess.run([sys.executable, "-m", "agents.cli", *verb, "--help"], check=True, capture_output=True)
            seconds.append(time.perf_counter() - tick)
        loaded = subprocess.run([sys.executable, "-c", _LOADED, *verb], capture_output=True, text=True).stderr.strip()
        print(f"| lv2 {' '.join(verb + ['--help'])} | {statistics.median(seconds):.3f} | {loaded or 'none'} |")


if __name__ == "__main__":
    main()
