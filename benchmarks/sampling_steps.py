"""Quality and time of the shipped model against its number of Euler sampling steps, on held-out clips.

    lv2 data procedural --out /tmp/eval --split validation --sequences 8  # 32 held-out clips
    python benchmarks/sampling_steps.py --data /tmp/eval --clips 16 --steps 10 8 6 4 3

For each step count: mean PSNR and SSIM of the generated frames against the truth, sharpness (the generated
frames' spatial-gradient energy over the truth's: PSNR rewards blur, this falls when frames turn to blobs) and
the mean denoising seconds per clip. The same clips, noise seed and first frames for every step count; history
off (each clip on its own), as ``lv2 eval`` scores single clips. The last line names the fewest steps within
``--tolerance`` dB (default 0.3) of the first step count given.
"""

from __future__ import annotations

import argparse
import time
import numpy as np

from lv2_env.evaluation.clips import CLIP_FIELDS, spread_indices
from model.metrics import gradient_energy, psnr, ssim
from lv2_env.conditioning.warp import render_clip
from model.pipeline import SamplingOptions
from model.precision import PRECISIONS
from model.clips import ClipDataset, control_videos
from model.world_model import DECODERS, WorldModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="held-out clips (`lv2 data procedural --split validation`)")
    parser.add_argument("--checkpoint", default=None, help="default: the shipped tiny model")
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 8, 6, 4, 3])
    parser.add_argument("--tolerance", type=float, default=0.3, help="dB below the first step count (default 0.3)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto")
    parser.add_argument("--decoder", choices=DECODERS, default="full", help="fast: the model's vae-fast/")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    model = WorldModel.load(args.checkpoint, preset=None, precision=args.precision, decoder=args.decoder)
    checkpoint, preset, autocast = model.checkpoint, model.preset, model.autocast
    dataset = ClipDataset(args.data, fields=CLIP_FIELDS,
                          expect={"height": preset.height, "width": preset.width, "frames": preset.frames})
    clips = [dataset[i] for i in spread_indices(len(dataset), args.clips)]
    print(f"{model.directory} ({args.decoder} decoder): {len(clips)} held-out clips of {args.data}, "
          f"{model.precision}, seed {args.seed}")
    print("| steps | PSNR dB | SSIM | sharpness (gradient energy / truth's) | denoising s per clip |")
    print("|---|---|---|---|---|")
    rows = []
    for steps in args.steps:
        generator = checkpoint.generator(options=SamplingOptions.from_preset(preset.sampling, steps=steps), seed=args.seed,
                                         autocast=autocast, history_latent_frames=0)
        scores, similarity, energy, truth_energy, seconds = [], [], [], [], []
        for clip in clips:
            generator.reset(clip["rgb"][0])
            controls = control_videos(clip)
            rendered = render_clip(clip) if generator.condition == "rendered" else None
            tick = time.perf_counter()
            frames = generator.generate_clip(controls, str(clip["caption"]), rendered=rendered)
            seconds.append(generator.last_timings.get("denoising", time.perf_counter() - tick))
            truth = clip["rgb"]
            scores.append(psnr(frames[1:], truth[1:]))
            similarity.append(ssim(frames[1:], truth[1:]))
            energy.append(gradient_energy(frames[1:]))
            truth_energy.append(gradient_energy(truth[1:]))
        row = (steps, float(np.mean(scores)), float(np.mean(similarity)), float(np.sum(energy) / np.sum(truth_energy)),
               float(np.mean(seconds)))
        rows.append(row)
        print(f"| {row[0]} | {row[1]:.2f} | {row[2]:.3f} | {row[3]:.2f} | {row[4]:.3f} |", flush=True)
    reference = rows[0][1]
    within = [r[0] for r in rows if r[1] >= reference - args.tolerance]
    print(f"fewest steps within {args.tolerance} dB of {rows[0][0]} steps ({reference:.2f} dB): {min(within)}")


if __name__ == "__main__":
    main()
