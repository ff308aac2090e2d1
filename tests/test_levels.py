"""Task levels: reset options for the start distance, the goal in view and the number of distractors."""

import gymnasium as gym
import numpy as np
import pytest

import lv2_env  # noqa: F401
from lv2_env.envs.levels import TASK_LEVELS, level_from_options
from lv2_env.signals.camera import poses_from_states


def _truth():
    return gym.make("LV2/GroundTruth-v0", goal_observation=True, height=64, width=64)


def _goal_pixels(env) -> int:
    world = env.unwrapped.world
    ids = world.renderer.render(poses_from_states(world.state[None]), shade=False).object_id
    return int((ids == env.unwrapped.scene.landmark + 1).sum())


def test_the_default_level_is_the_v0_start():
    env = _truth()
    plain, _ = env.reset(seed=7, options={"scene_seed": 11})
    hard, info = env.reset(seed=7, options={"scene_seed": 11, "level": "hard"})
    np.testing.assert_array_equal(plain["image"], hard["image"])
    np.testing.assert_array_equal(info["camera_state"][:3], [0.0, 0.0, 1.6])


@pytest.mark.parametrize("seed", range(4))
def test_easy_starts_near_the_goal_facing_it_among_few_objects(seed):
    env = _truth()
    _, info = env.reset(seed=seed, options={"scene_seed": 100 + seed, "level": "easy"})
    low, high = TASK_LEVELS["easy"].start_distance
    assert low - 1e-6 <= info["goal_distance"] <= high + 1e-6
    assert len(env.unwrapped.scene.objects) == TASK_LEVELS["easy"].distractors + 1
    assert _goal_pixels(env) >= 6  # in view, not hidden behind another object


def test_knobs_override_the_level_and_the_goal_can_start_out_of_view():
    env = _truth()
    _, info = env.reset(seed=3, options={"scene_seed": 5, "level": "easy", "goal_in_view": False, "distractors": 30})
    assert _goal_pixels(env) < 6 and len(env.unwrapped.scene.objects) == 31
    _, info = env.reset(seed=3, options={"scene_seed": 5, "start_distance": (10.0, 12.0)})
    assert 10.0 - 1e-6 <= info["goal_distance"] <= 12.0 + 1e-6


@pytest.mark.parametrize("options, message", [
    ({"level": "nightmare"}, r"level.*one of \['easy', 'medium', 'hard'\]"),
    ({"start_distance": 5.0}, r"start_distance.*\(min, max\)"),
    ({"start_distance": (8.0, 3.0)}, "0 < min <= max"),
    ({"goal_in_view": "yes"}, "goal_in_view"),
    ({"distractors": -1}, r"distractors.*\[0, 199\]"),
])
def test_bad_level_options_are_refused_naming_what_was_expected(options, message):
    with pytest.raises(ValueError, match=message):
        level_from_options(options)
    with pytest.raises(ValueError, match=message):
        _truth().reset(seed=0, options=options)
