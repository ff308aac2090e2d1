"""Seconds per generated clip of the ``tiny`` preset, by phase, and peak memory, per precision.

    python benchmarks/generator_clip.py                 # auto, fp32 and bf16, each in its own process
    python benchmarks/generator_clip.py --checkpoint DIR # a trained checkpoint instead of fresh weights

Phases: control encoding (both control videos and the I2V conditioning video through the VAE encoder, plus
history latents and the prompt), denoising (all steps; per step = total / steps), VAE decoding. Speed does not
depend on the weights' values, so fresh weights measure the architecture; memory is the process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

import numpy as np
import torch


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 / 2**20


def measure(precision: str, clips: int, steps: int | None, checkpoint: str | None) -> dict:
    from model.checkpoint import build_from_preset, load_checkpoint
    from model.pipeline import SamplingOptions

    ckpt = load_checkpoint(checkpoint) if checkpoint else build_from_preset("tiny", vocabulary=["a", "field"])
    preset = ckpt.preset
    from model.precision import precision_name, resolve_precision

    autocast = resolve_precision(precision)
    generator = ckpt.generator(options=SamplingOptions.from_preset(preset.sampling, steps=steps), autocast=autocast)
    rng = np.random.default_rng(0)
    f, h, w = preset.frames, preset.height, preset.width
    generator.reset(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    rows, rss = [], []
    for _ in range(clips):
        controls = {m: rng.integers(0, 255, (f, h, w, 3), dtype=np.uint8) for m in ("dense", "sparse")}
        start = time.perf_counter()
        generator.generate_clip(controls, "a field")
        rows.append({**generator.last_timings, "total": time.perf_counter() - start})
        rss.append(_rss_mb())
    steady = rows[1:] if len(rows) > 1 else rows  # the first clip has no history and warms up the kernels
    mean = {k: float(np.mean([r[k] for r in steady])) for k in steady[0]}
    return {
        "precision": f"{precision}->{precision_name(autocast)}" if precision == "auto" else precision,
        "preset": preset.name,
        "size": f"{h}x{w}",
        "frames": f,
        "steps": generator.options.steps,
        "clips": clips,
        **mean,
        "per_step": mean["denoising"] / generator.options.steps,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_after_clip_2_mb": rss[min(1, len(rss) - 1)],
        "rss_after_last_clip_mb": rss[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "all"], default="all",
                        help="all (default): auto, fp32 and bf16, each in its own process")
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument("--steps", type=int, default=None, help="default: the preset's")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON line (used for the child processes)")
    args = parser.parse_args()

    if args.precision != "all":
        result = measure(args.precision, args.clips, args.steps, args.checkpoint)
        print(json.dumps(result) if args.json else result)
        return
    results = []
    for precision in ("auto", "fp32", "bf16"):
        cmd = [sys.executable, __file__, "--precision", precision, "--clips", str(args.clips), "--json"]
        if args.steps is not None:
            cmd += ["--steps", str(args.steps)]
        if args.checkpoint:
            cmd += ["--checkpoint", args.checkpoint]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    r0 = results[0]
    print(f"torch {torch.__version__}, capability {torch.backends.cpu.get_cpu_capability()}, "
          f"{torch.get_num_threads()} threads, {platform.machine()}; preset {r0['preset']} "
          f"{r0['size']}, {r0['frames']}-frame clips, {r0['steps']} steps, mean of clips 2..{r0['clips']}")
    print(f"{'precision':>10} {'encode s':>9} {'denoise s':>10} {'per step s':>11} {'decode s':>9} {'clip s':>7} "
          f"{'peak RSS MB':>12} {'RSS clip 2 -> last':>19}")
    for r in results:
        print(f"{r['precision']:>10} {r['control_encoding']:9.3f} {r['denoising']:10.3f} {r['per_step']:11.4f} "
              f"{r['decoding']:9.3f} {r['total']:7.3f} {r['peak_rss_mb']:12.0f} "
              f"{r['rss_after_clip_2_mb']:8.0f} -> {r['rss_after_last_clip_mb']:.0f}")


if __name__ == "__main__":
    main()
