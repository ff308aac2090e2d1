"""Five minutes of generated world along a scripted camera path: 300 clips, 4,801 frames at 16 fps.

    python examples/five_minute_rollout.py --policy random --out five_minutes.mp4

Writes the MP4 and a side file (same name, .json) with every frame's pose and prompt and every step's time
and resident memory, then prints how the step time and memory moved from the first minute to the last.
"""

import argparse
import json

import gymnasium as gym
import numpy as np

import lv2_env  # noqa: F401
from agents.rollout import run_rollout
from agents.scripted import make_policy

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--policy", choices=["orbit", "dolly", "random"], default="random")
parser.add_argument("--minutes", type=float, default=5.0)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--out", default="five_minutes.mp4")
args = parser.parse_args()

steps = int(round(args.minutes * 60))  # one step = 16 new frames = 1 second of video
env = gym.make("LV2/World-v0", action_mode="continuous", goal_radius=None, max_episode_steps=steps)
summary = run_rollout(env, make_policy(args.policy, env, seed=args.seed), steps, args.out, seed=args.seed)
env.close()

log = json.loads(summary.side_file.read_text())["steps"]
first, last = log[: min(60, len(log))], log[-min(60, len(log)) :]
for name, part in (("first minute", first), ("last minute", last)):
    print(f"{name}: {np.median([s['seconds'] for s in part]):.2f} s per step, "
          f"{np.median([s['rss_mb'] for s in part]):.0f} MB resident")
print(f"wrote {summary.video} ({summary.frames} frames) in {summary.wall_seconds / 60:.1f} minutes")
