"""Does a world started from a photograph stay a world? scikit-image's photographs through LV2/World-v0.

    python benchmarks/photo_worlds.py                      # coffee, chelsea, astronaut; a minute each
    python benchmarks/photo_worlds.py --photos coffee --seconds 30

For each photograph (resized to the model's size), with ``control_source="cache"`` and the prompt "a sunny meadow":
back at the photo after a 360-degree turn (PSNR of the last frame against the first, composited and with
compositing off), then ``lv2 eval``'s walk for ``--seconds`` one-second steps, measured at each step's last frame
with tests/test_photo_world.py's criterion: the largest shift of the mean colour from the photo's (grey levels;
the test allows 40) and the range of the gradient energy over the photo's (the test allows 0.25-4x).
"""

import argparse
import warnings

import gymnasium as gym
import numpy as np

import lv2_env  # noqa: F401  (registers LV2/)
from lv2_env import UNLIMITED_EPISODE_STEPS
from lv2_env.evaluation.rollouts import LOOP, WALK
from model.metrics import gradient_energy, psnr


def start(env, photo: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # resized to the model's size, with a warning
        _, info = env.reset(seed=0, options={"image": photo, "prompt": "a sunny meadow"})
    return info["frames"][-1]


def main() -> None:
    from skimage import data as photos  # the test extra

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", nargs="+", default=["coffee", "chelsea", "astronaut"])
    parser.add_argument("--seconds", type=int, default=60, help="one-second steps of the walk (default 60)")
    args = parser.parse_args()

    env = gym.make("LV2/World-v0", control_source="cache", goal_radius=None,
                   max_episode_steps=UNLIMITED_EPISODE_STEPS)
    print("| photo | back after a turn: composited / model only (dB) | largest colour shift | gradient energy "
          "min / max | at 1/3, 2/3, end |")
    print("|---|---|---|---|---|")
    for name in args.photos:
        photo = getattr(photos, name)()
        back = []
        for composite in (True, False):
            env.unwrapped.composite = composite
            first = start(env, photo)
            for action in LOOP:
                *_, info = env.step(action)
            back.append(psnr(info["frames"][-1], first))
        env.unwrapped.composite = True
        first = start(env, photo)
        reference = gradient_energy(first)
        ratios, shifts = [], []
        for k in range(args.seconds):
            *_, info = env.step(WALK[k % len(WALK)])
            frame = info["frames"][-1]
            ratios.append(gradient_energy(frame) / reference)
            shifts.append(float(np.abs(frame.mean((0, 1)) - first.mean((0, 1))).max()))
        thirds = [ratios[max(0, args.seconds * i // 3 - 1)] for i in (1, 2, 3)]
        print(f"| {name} | {back[0]:.2f} / {back[1]:.2f} | {max(shifts):.1f} | {min(ratios):.2f} / {max(ratios):.2f} "
              f"| {' / '.join(f'{r:.2f}' for r in thirds)} |", flush=True)


if __name__ == "__main__":
    main()
