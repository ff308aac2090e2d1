"""Steer the generated world with the keyboard (the same as `lv2 play`).

    python examples/play.py                 # the shipped tiny model, a random procedural scene
    python examples/play.py --compare       # generated (left) beside the exact render (right)

W/A/S/D move, arrows turn and look, R/F rise and sink, Enter types a new prompt, V records, N starts a new world.
"""

import argparse

import gymnasium as gym

import lv2_env  # noqa: F401  (registers LV2/World-v0)
from lv2_env import UNLIMITED_EPISODE_STEPS
from agents.play import KeyboardPlayer

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--compare", action="store_true")
parser.add_argument("--seed", type=int, default=None)
parser.add_argument("--max-steps", type=int, default=None, help="stop after this many clips")
args = parser.parse_args()

env = gym.make("LV2/World-v0", goal_radius=None, max_episode_steps=UNLIMITED_EPISODE_STEPS)
KeyboardPlayer(env, compare=args.compare, seed=args.seed).run(max_steps=args.max_steps)
