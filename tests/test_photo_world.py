"""A world started from a real photograph (scikit-image's, which ship with it), on the shipped model."""

import warnings

import gymnasium as gym
import numpy as np
import pytest

import lv2_env  # noqa: F401  (registers LV2/)
from lv2_env import UNLIMITED_EPISODE_STEPS
from model.metrics import gradient_energy, psnr

photos = pytest.importorskip("skimage.data")
TURN_LEFT, FORWARD = 5, 1
WALK = (1, 1, 1, 5, 1, 1, 4, 1, 1, 6, 6, 1, 1, 3, 1, 1, 7, 8, 1, 1)  # lv2 eval's walk
MAX_COLOUR_SHIFT = 40.0  # grey levels: a frame's mean colour this far from the picture's is another world
GRADIENT_RANGE = (0.25, 4.0)  # a frame's gradient energy over the picture's: below is a smear, above is noise


@pytest.fixture(scope="module")
def world():
    return gym.make("LV2/World-v0", control_source="cache", goal_radius=None, max_episode_steps=UNLIMITED_EPISODE_STEPS)


def _start(world, picture):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # resized to the model's 128x128, with a warning
        _, info = world.reset(seed=0, options={"image": picture, "prompt": "a sunny meadow"})
    return info["frames"][-1]


def test_a_photo_world_comes_back_to_the_photo_after_a_turn(world):
    start = _start(world, photos.chelsea())
    for _ in range(12):  # 12 one-second turns of 30 degrees
        *_, info = world.step(TURN_LEFT)
    assert psnr(info["frames"][-1], start) >= 25.0  # the aim (46 dB on 2026-12-05, composited)


@pytest.mark.parametrize("photo", [
    "coffee",
    # Measured 2026-12-05: its colours drift 68 grey levels within the minute (astronaut's 59, and its detail
    # fades to 0.16x): a strict xfail, so the day it holds the test says so.
    pytest.param("chelsea", marks=pytest.mark.xfail(strict=True, reason="issue 27, not met for every photo: "
                                                    "chelsea's world drifts in colour (docs/results.md)")),
])
def test_a_photo_world_stays_a_world_for_a_minute(world, photo):
    start = _start(world, getattr(photos, photo)())
    reference = gradient_energy(start)
    for k in range(60):
        *_, info = world.step(WALK[k % len(WALK)])
        frame = info["frames"][-1]
        shift = float(np.abs(frame.mean((0, 1)) - start.mean((0, 1))).max())
        ratio = gradient_energy(frame) / reference
        assert shift <= MAX_COLOUR_SHIFT and GRADIENT_RANGE[0] <= ratio <= GRADIENT_RANGE[1], (k, shift, ratio)
