"""The batched world: one generator call for N worlds, Gymnasium's next-step autoreset."""

import gymnasium as gym
import numpy as np
import pytest

import lv2_env  # noqa: F401


def _vec(checkpoint, n, **kwargs):
    return gym.make_vec("LV2/World-v0", num_envs=n, checkpoint=str(checkpoint), preset="test", **kwargs)


def test_batched_worlds_match_the_same_worlds_stepped_alone(world_checkpoint):
    actions = [np.array([1, 6]), np.array([5, 1]), np.array([1, 1])]
    vec = _vec(world_checkpoint, 2, precision="fp32")
    obs, info = vec.reset(seed=5)
    batched = [obs] + [vec.step(a)[0] for a in actions]
    for i in range(2):
        env = gym.make("LV2/World-v0", checkpoint=str(world_checkpoint), preset="test", precision="fp32")
        alone = [env.reset(seed=5 + i)[0]] + [env.step(int(a[i]))[0] for a in actions]
        for b, a in zip(batched, alone):
            # Batched matmuls round differently from single ones; allow a grey level here and there.
            diff = np.abs(b[i].astype(int) - a.astype(int))
            assert diff.max() <= 2 and diff.mean() < 0.05


def test_spaces_and_next_step_autoreset(world_checkpoint):
    vec = _vec(world_checkpoint, 3, max_episode_steps=2)
    assert vec.observation_space.shape == (3, 32, 32, 3) and vec.action_space.shape == (3,)
    obs, info = vec.reset(seed=0)
    assert obs.shape == (3, 32, 32, 3) and list(info["clip_index"]) == [0, 0, 0]
    vec.step(vec.action_space.sample())
    obs, reward, terminated, truncated, info = vec.step(np.array([1, 2, 3]))
    assert truncated.all() and list(info["clip_index"]) == [2, 2, 2]
    obs, reward, terminated, truncated, info = vec.step(np.array([1, 2, 3]))  # the autoreset step
    assert not truncated.any() and np.all(reward == 0) and list(info["clip_index"]) == [0, 0, 0]
    obs, reward, terminated, truncated, info = vec.step(np.array([1, 2, 3]))
    assert list(info["clip_index"]) == [1, 1, 1]
    assert vec.call("set_prompt", "a snowy field") == (None, None, None)
    obs, *_, info = vec.step(np.array([0, 0, 0]))
    assert list(info["prompt"]) == ["a snowy field"] * 3


def test_bad_input(world_checkpoint):
    vec = _vec(world_checkpoint, 2)
    vec.reset(seed=0)
    with pytest.raises(ValueError, match="expected 2 actions"):
        vec.step(np.array([1, 2, 3]))
    with pytest.raises(ValueError):
        vec.step(np.array([1, 99]))
    with pytest.raises(ValueError, match="expected 2 seeds"):
        vec.reset(seed=[1, 2, 3])


def test_every_sub_env_steps_on_its_own(world_checkpoint):
    """Each world of the vector env is a whole World-v0: ``vec.envs[i].step`` generates its clip alone (a batch of
    one in the shared generator), equal to a separate env's, and leaves the other worlds as they were."""
    vec = _vec(world_checkpoint, 2, precision="fp32")
    vec.reset(seed=5)
    untouched = vec.envs[1].generator.last_frame.copy()
    obs, reward, terminated, truncated, info = vec.envs[0].step(1)
    alone = gym.make("LV2/World-v0", checkpoint=str(world_checkpoint), preset="test", precision="fp32")
    alone.reset(seed=5)
    expected = alone.step(1)[0]
    diff = np.abs(obs.astype(int) - expected.astype(int))
    assert obs.shape == vec.single_observation_space.shape and diff.max() <= 2 and diff.mean() < 0.05
    assert info["clip_index"] == 1 and vec.envs[1].clip_index == 0
    assert np.array_equal(vec.envs[1].generator.last_frame, untouched)
    obs, *_ = vec.envs[1].step(5)
    assert obs.shape == vec.single_observation_space.shape and vec.envs[1].clip_index == 1
