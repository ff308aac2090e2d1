"""How right is a depth network, metrically, on rendered frames and on the world model's own frames?

    lv2 data procedural --out data/eval --split validation --sequences 25
    lv2 data generated-frames --out data/generated-eval --split validation --sequences 15
    python benchmarks/depth_networks.py model/shipped/depth runs/depth/final/depth \\
        --rendered data/eval --generated data/generated-eval

For each depth network directory, on held-out frames spread evenly over each data directory: the share of pixels
within 1.25x of the true depth and the AbsRel, both unscaled (a point cache takes the depth as metres), and the
median-scaled share (structure only). A world from a picture estimates depth on the start picture (a rendered frame
here) and, with ``PointCache(key_frames=True)``, on the model's frames.
"""

import argparse

import torch

from model.clips import ClipDataset
from model.depth import TinyDepthEstimator
from model.training.depth_stage import evaluate_estimator, held_out_frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("networks", nargs="+", help="depth network directories (config.json + model.safetensors)")
    parser.add_argument("--rendered", required=True,
                        help="held-out procedural clips (lv2 data procedural --split validation)")
    parser.add_argument("--generated", default=None,
                        help="held-out generated clips (lv2 data generated-frames --split validation)")
    parser.add_argument("--frames", type=int, default=256, help="frames drawn from each directory (default 256)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    sets = {"rendered": args.rendered, "generated": args.generated}
    frames = {name: held_out_frames(ClipDataset(path, ("rgb", "depth")), args.frames)
              for name, path in sets.items() if path}
    print("| depth network | " + " | ".join(f"{name}: within 1.25x / AbsRel / within 1.25x median-scaled"
                                            for name in frames) + " |")
    print("|---|" + "---|" * len(frames))
    for directory in args.networks:
        estimator = TinyDepthEstimator.from_pretrained(directory)
        cells = []
        for rgb, depth in frames.values():
            m = evaluate_estimator(estimator, rgb, depth)
            cells.append(f"{m['delta1_unscaled']:.3f} / {m['abs_rel_unscaled']:.3f} / {m['delta1']:.3f}")
        print(f"| {directory} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
