"""A walk through a generated world beside the exact render of the same camera path, as an animated GIF.

    python examples/generated_vs_truth.py --scene-seed 1100003 --seconds 4 --out docs/images/generated_vs_truth.gif

Left: LV2/World-v0's frames; right: the ray-traced truth (``info["ground_truth_frames"]``). README.md's picture
is this command's output (scene 1100003, of the frozen test split, in its own style).
"""

import argparse

import gymnasium as gym
import imageio.v3 as iio
import numpy as np

import lv2_env  # noqa: F401  (registers LV2/)

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--scene-seed", type=int, default=1_100_003)
parser.add_argument("--seconds", type=int, default=4, help="one-second steps")
parser.add_argument("--actions", default="1,1,5,1,6,1", help="discrete actions, cycled (1 forward, 5/6 turn)")
parser.add_argument("--every", type=int, default=2, help="keep every n-th frame (a smaller file)")
parser.add_argument("--out", default="generated_vs_truth.gif")
args = parser.parse_args()
actions = [int(a) for a in args.actions.split(",")]

env = gym.make("LV2/World-v0", goal_radius=None)
obs, info = env.reset(seed=0, options={"scene_seed": args.scene_seed})
generated, truth = [info["frames"][-1:]], [info["ground_truth_frames"][-1:]]
for second in range(args.seconds):
    obs, reward, terminated, truncated, info = env.step(actions[second % len(actions)])
    generated.append(info["frames"][1:])
    truth.append(info["ground_truth_frames"][1:])

generated, truth = np.concatenate(generated), np.concatenate(truth)
gap = np.full((len(truth), truth.shape[1], 4, 3), 255, np.uint8)
frames = np.concatenate([generated, gap, truth], axis=2)[:: args.every]
fps = env.unwrapped.clip.fps / args.every
iio.imwrite(args.out, frames, duration=1000 / fps, loop=0)
print(f"wrote {args.out}: {len(frames)} frames of {frames.shape[2]}x{frames.shape[1]} (generated | truth)")
