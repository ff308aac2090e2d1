"""Start a world from your own picture: depth from the shipped depth network, a point cache for the controls.

    python examples/world_from_image.py PICTURE.png --prompt "a snowy field with a red pillar" --out from_image.mp4
    python examples/world_from_image.py coffee.png --seconds 60 --then "" --strip strip.png   # a picture per 20 s

Without a picture, the first frame of a procedural scene is used (so the script runs as written). The world
walks forward and turns; halfway through, the prompt changes ("a field at night ..."), a world event.
"""

import argparse

import gymnasium as gym
import numpy as np

import lv2_env  # noqa: F401
from lv2_env.media.video import Mp4Writer

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("image", nargs="?", default=None, help="start picture (any size; resized with a warning)")
parser.add_argument("--prompt", default="a sunny meadow with a red pillar")
parser.add_argument("--then", default="a field at night with a red pillar",
                    help="the prompt for the second half ('' keeps the first)")
parser.add_argument("--seconds", type=int, default=8)
parser.add_argument("--out", default="from_image.mp4")
parser.add_argument("--strip", default=None, help="also write a PNG of the frames at 0, 1/3, 2/3 and the end")
args = parser.parse_args()

image = args.image
if image is None:  # no picture given: take one from the exact render of a procedural scene
    truth = gym.make("LV2/GroundTruth-v0")
    image = truth.reset(seed=3)[0]

env = gym.make("LV2/World-v0", control_source="cache", goal_radius=None)
obs, info = env.reset(seed=0, options={"image": image, "prompt": args.prompt})
strip = [obs]
with Mp4Writer(args.out, fps=16) as video:
    video.write(obs)
    for second in range(args.seconds):
        if second == args.seconds // 2 and args.then:
            env.unwrapped.set_prompt(args.then)
        action = 1 if second % 3 else 5  # forward, now and then a turn to the left
        obs, reward, terminated, truncated, info = env.step(action)
        video.write(info["frames"][1:])
        if 3 * (second + 1) // args.seconds != 3 * second // args.seconds:  # at 1/3, 2/3 and the end
            strip.append(info["frames"][-1])
if args.strip:
    from PIL import Image

    Image.fromarray(np.concatenate(strip, axis=1)).save(args.strip)
    print(f"wrote {args.strip}: the world at 0, 1/3, 2/3 and {args.seconds} s")
print(f"wrote {args.out}: {1 + 16 * args.seconds} frames; mean depth of the last control frame "
      f"{float(np.mean(info['depth'][-1])):.1f} m")
