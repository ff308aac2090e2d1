"""LV2/World-v0 on a small randomly initialised checkpoint (32x32, 5-frame clips): the API, not the quality."""

import warnings

import gymnasium as gym
import numpy as np
import pytest

import lv2_env  # noqa: F401  (registers LV2/)
from lv2_env.envs.world import WorldEnv


@pytest.fixture(scope="module")
def checkpoint(world_checkpoint):
    return world_checkpoint


def _make(checkpoint, **kwargs):
    return gym.make("LV2/World-v0", checkpoint=str(checkpoint), preset="test", **kwargs)


def test_env_checkers_pass(checkpoint):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = _make(checkpoint)
    check_env(env.unwrapped, skip_render_check=True)  # includes determinism of seeded resets and steps
    sb3_check_env(_make(checkpoint, action_mode="continuous").unwrapped)


def test_each_step_generates_a_clip_that_continues_the_last(checkpoint):
    env = _make(checkpoint, obs_mode="clip")
    obs, info = env.reset(seed=3)
    first = info["frames"][-1]
    obs, reward, terminated, truncated, info = env.step(1)
    assert obs.shape == (4, 32, 32, 3) and obs.dtype == np.uint8
    assert np.array_equal(info["frames"][0], first)  # the shared frame
    assert np.array_equal(obs, info["frames"][1:])
    assert info["ground_truth_frames"].shape == (5, 32, 32, 3)
    assert info["clip_index"] == 1 and info["prompt"] == info["caption"]
    assert {"denoising", "decoding", "controls"} <= set(env.get_wrapper_attr("last_timings"))
    assert np.isfinite(reward) and not truncated
    # The generated frames are not the render: the model, not the ray caster, made them.
    assert not np.array_equal(info["frames"][1:], info["ground_truth_frames"][1:])
    obs2, *_ , info2 = env.step(5)
    assert np.array_equal(info2["frames"][0], info["frames"][-1]) and info2["clip_index"] == 2


def test_skipping_the_truths_pixels_changes_nothing_the_model_sees(checkpoint):
    """ground_truth_frames=False skips shading the scene's render: the same generated episode, no truth frames."""
    def episode(**kwargs):
        env = _make(checkpoint, **kwargs)
        _, info = env.reset(seed=5)
        infos = [info] + [env.step(a)[-1] for a in (1, 4, 2)]
        return infos

    shaded, unshaded = episode(), episode(ground_truth_frames=False)
    for a, b in zip(shaded, unshaded):
        assert np.array_equal(a["frames"], b["frames"]) and np.array_equal(a["depth"], b["depth"])
        assert np.array_equal(a["ground_truth_object_ids"], b["ground_truth_object_ids"])
        assert a["ground_truth_frames"] is not None and b["ground_truth_frames"] is None


def test_same_seed_same_episode_other_seed_other_noise(checkpoint):
    def episode(seed):
        env = _make(checkpoint)
        env.reset(seed=seed)
        return np.stack([env.step(a)[0] for a in (1, 6, 1)])

    assert np.array_equal(episode(7), episode(7))
    assert not np.array_equal(episode(7), episode(8))


def test_prompt_changes_between_steps_and_unknown_words_are_named(checkpoint):
    env = _make(checkpoint)
    env.reset(seed=0)
    env.unwrapped.set_prompt("a snowy field")
    _, _, _, _, info = env.step(0)
    assert info["prompt"] == "a snowy field"
    with pytest.warns(UserWarning, match="'blizzard'"):
        env.unwrapped.set_prompt("now a blizzard")
    with pytest.raises(ValueError, match="string"):
        env.unwrapped.set_prompt(3)


def test_world_from_an_image_uses_the_point_cache(checkpoint):
    env = _make(checkpoint, control_source="cache")
    picture = np.random.default_rng(0).integers(0, 255, (48, 40, 3), dtype=np.uint8)
    with pytest.warns(UserWarning, match="resized"):
        obs, info = env.reset(seed=0, options={"image": picture, "prompt": "a red pillar"})
    assert obs.shape == (32, 32, 3) and info["prompt"] == "a red pillar" and info["goal"] == ""
    _, reward, terminated, _, info = env.step(1)
    assert reward == 0.0 and not terminated
    assert info["ground_truth_frames"] is None and info["control_source"] == "cache"
    assert info["depth"].shape == (5, 32, 32) and np.all(info["depth"] > 0)
    assert len(env.unwrapped.point_cache) == 1  # the start frame alone: nothing else enters by default
    assert "depth_estimation" in env.unwrapped.last_timings
    env.unwrapped.point_cache.key_frames = True  # a cache that takes key frames keeps the clip's last frame too
    env.step(1)
    assert len(env.unwrapped.point_cache) == 2
    assert info["depth_holes"].shape == (5, 32, 32) and not info["depth_holes"][0].any()


def test_a_blank_picture_starts_on_the_ground_plane(checkpoint):
    env = _make(checkpoint, control_source="cache")
    with pytest.warns(UserWarning, match="blank"):
        _, info = env.reset(seed=0, options={"image": np.full((32, 32, 3), 128, np.uint8)})
    depth = info["depth"][0]
    # Level at eye height: sky (the far plane) above the horizon, ground nearer and nearer below it.
    assert np.all(depth[:12] == 150.0) and np.all(np.diff(depth[20:, 16]) < 0) and depth[-1].max() < 10.0
    _, _, _, _, info = env.step(1)
    assert np.all(np.isfinite(info["depth"])) and np.all(info["depth"] > 0)


def test_image_from_a_path(checkpoint, tmp_path):
    from PIL import Image

    picture = np.repeat(np.arange(0, 256, 8, dtype=np.uint8)[:, None, None], 32, axis=1).repeat(3, axis=2)
    Image.fromarray(picture).save(tmp_path / "start.png")
    env = _make(checkpoint, control_source="cache")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the right size (and not blank): no warning
        obs, _ = env.reset(options={"image": str(tmp_path / "start.png")})
    assert np.array_equal(obs, picture)


def test_bad_input_says_what_was_expected(checkpoint, tmp_path):
    env = _make(checkpoint)
    env.reset(seed=0)
    with pytest.raises(ValueError):
        env.step(11)
    with pytest.raises(ValueError, match="control_source"):
        env.reset(options={"image": np.zeros((32, 32, 3), np.uint8)})
    with pytest.raises(ValueError, match="no such file"):
        _make(checkpoint, control_source="cache").reset(options={"image": str(tmp_path / "missing.png")})
    with pytest.raises(ValueError, match="preset 'test'.*'tiny' was asked for"):
        WorldEnv(checkpoint=checkpoint, preset="tiny")
    with pytest.raises(ValueError, match="control_source"):
        WorldEnv(checkpoint=checkpoint, preset="test", control_source="lidar")
    with pytest.raises(ValueError, match="is not an lv2 checkpoint"):
        WorldEnv(checkpoint=tmp_path, preset="test")


def test_a_rendered_conditioning_model_needs_the_rendered_video(checkpoint):
    from model.checkpoint import load_checkpoint

    model = load_checkpoint(checkpoint)
    assert model.preset.condition == "rendered"
    generator = model.generator()
    frame = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    generator.reset(frame)
    controls = {"dense": np.zeros((5, 32, 32, 3), np.uint8), "sparse": np.zeros((5, 32, 32, 3), np.uint8)}
    with pytest.raises(ValueError, match="rendered along the camera path"):
        generator.generate_clip(controls, "a field")
    with pytest.raises(ValueError, match=r"\(frames, height, width\)"):
        generator.generate_clip(controls, "a field", rendered=np.zeros((3, 32, 32, 3), np.uint8))
    clip = generator.generate_clip(controls, "a field", rendered=np.zeros((5, 32, 32, 3), np.uint8))
    assert np.array_equal(clip[0], frame)
