import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import lv2_env  # noqa: F401
from lv2_env.signals.actions import DISCRETE_ACTIONS
from lv2_env.signals.camera import pose_from_state
from lv2_env.signals.collision import CAMERA_RADIUS

SMALL = dict(height=32, width=32, clip_frames=5)
FORWARD = DISCRETE_ACTIONS.index("forward")


def make(**kwargs):
    return gym.make("LV2/GroundTruth-v0", **{**SMALL, **kwargs})


def test_registration():
    spec = gym.spec("LV2/GroundTruth-v0")
    assert spec.namespace == "LV2" and spec.version == 0
    assert spec.max_episode_steps == 100
    env = gym.make("LV2/GroundTruth-v0")
    assert env.observation_space == gym.spaces.Box(0, 255, (128, 128, 3), np.uint8)
    assert env.action_space == gym.spaces.Discrete(11)
    env.close()


@pytest.mark.parametrize("mode", ["discrete", "continuous", "trajectory"])
def test_gymnasium_env_checker(mode):
    env = make(action_mode=mode)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gym_check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize("mode", ["discrete", "continuous", "trajectory"])
def test_sb3_env_checker(mode):
    env = make(action_mode=mode)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SB3 recommends [-1, 1] Boxes; ours are in metres and radians
        sb3_check_env(env.unwrapped, warn=True)
    env.close()


def test_same_seed_same_frames_and_scene():
    a, b = make(), make()
    obs_a, info_a = a.reset(seed=3)
    obs_b, info_b = b.reset(seed=3)
    assert info_a["caption"] == info_b["caption"] and np.array_equal(obs_a, obs_b)
    for action in (FORWARD, 5, 7):
        obs_a, *_ , info_a = a.step(action)
        obs_b, *_ , info_b = b.step(action)
        assert np.array_equal(info_a["frames"], info_b["frames"])
    _, info_c = a.reset(seed=4)
    assert info_c["scene_seed"] != info_b["scene_seed"]


def test_step_advances_one_clip_sharing_a_frame():
    env = make(obs_mode="clip")
    obs, info = env.reset(seed=0, options={"scene_seed": 11, "style": "sunny"})
    assert obs.shape == (4, 32, 32, 3)
    first_frame = info["frames"][-1]
    obs, reward, terminated, truncated, info = env.step(FORWARD)
    assert info["frames"].shape == (5, 32, 32, 3)
    assert np.array_equal(info["frames"][0], first_frame)  # the shared frame
    assert np.array_equal(obs, info["frames"][1:])
    assert info["depth"].shape == (5, 32, 32) and info["poses"].shape == (5, 4, 4)
    control = info["control"]
    assert control.dense.shape == control.sparse.shape == (5, 32, 32, 3)
    assert control.tracks.shape[0] == 5 and control.visibility.shape == control.tracks.shape[:2]
    assert info["depth_range"] is control.depth_range
    assert info["intrinsics"].shape == (3, 3) and info["camera_pose"].shape == (4, 4)
    assert isinstance(info["caption"], str) and info["goal"] in info["caption"]


def test_depth_range_fixed_for_the_episode():
    env = make()
    _, info = env.reset(seed=1)
    fixed = info["depth_range"]
    for _ in range(3):
        *_, info = env.step(FORWARD)
        assert info["control"].depth_range == fixed
    env.close()
    env = make(depth_range=(1.0, 30.0))
    _, info = env.reset(seed=1)
    assert (info["depth_range"].near, info["depth_range"].far) == (1.0, 30.0)


def test_actions_move_the_camera_as_documented():
    env = make()
    start = np.array([0.0, 0.0, 1.6, 0.0, 0.0, 0.0])
    _, info = env.reset(seed=0, options={"scene_seed": 5, "start_pose": start})
    # Clip of 5 frames at 16 fps = 0.25 s: forward 1.5 m/s moves 0.375 m north (yaw 0).
    *_, info = env.step(FORWARD)
    if not info["collision"]:
        np.testing.assert_allclose(info["camera_state"], [0, 0.375, 1.6, 0, 0, 0], atol=1e-9)
    *_, info = env.step(DISCRETE_ACTIONS.index("turn_left"))
    assert info["camera_state"][3] == pytest.approx(np.pi / 6 * 0.25)
    np.testing.assert_allclose(info["camera_pose"], pose_from_state(info["camera_state"]))


def test_continuous_and_trajectory_follow_the_action():
    env = make(action_mode="trajectory")
    start = np.array([0.0, 0.0, 1.6, 0.3, 0.0, 0.0])
    env.reset(seed=0, options={"scene_seed": 5, "start_pose": start})
    path = np.zeros((5, 6), dtype=np.float32)
    path[:, 2] = [0.0, 0.05, 0.1, 0.15, 0.2]  # rise 0.2 m
    path[:, 4] = [0.0, 0.01, 0.02, 0.03, 0.04]
    *_, info = env.step(path)
    np.testing.assert_allclose(info["states"][:, 2], 1.6 + path[:, 2], atol=1e-6)
    np.testing.assert_allclose(info["states"][:, 4], path[:, 4], atol=1e-6)


def _facing_goal(env, distance):
    """A start state ``distance`` metres from the goal's footprint circle, looking at it."""
    goal = env.unwrapped.goal
    direction = goal.center[:2] / np.linalg.norm(goal.center[:2])
    position = goal.center[:2] - direction * (goal.footprint_radius + distance)
    yaw = np.arctan2(-direction[0], direction[1])  # forward = (-sin yaw, cos yaw)
    return np.array([position[0], position[1], 1.6, yaw, 0.0, 0.0])


def test_collision_stops_the_camera_and_says_so():
    env = make(clip_frames=17, goal_radius=None)
    env.reset(seed=0, options={"scene_seed": 2})
    scene = env.unwrapped.scene
    # Walk into the nearest object, straight at its centre, until something stops the camera.
    obj = min(scene.objects, key=lambda o: np.hypot(*o.center[:2]))
    direction = obj.center[:2] / np.linalg.norm(obj.center[:2])
    yaw = np.arctan2(-direction[0], direction[1])
    env.reset(seed=0, options={"scene_seed": 2, "start_pose": [0, 0, min(1.0, obj.center[2]), yaw, 0, 0]})
    collided = None
    for _ in range(40):
        *_, info = env.step(FORWARD)
        distance, _ = scene.signed_distance(info["states"][:, :3])
        assert (distance >= CAMERA_RADIUS - 1e-9).all()
        if info["collision"]:
            collided = info
            break
    assert collided is not None, "walking at an object must end in a collision"
    assert collided["obstacle"] and collided["collision_frame"] >= 1
    states = collided["states"]
    k = collided["collision_frame"]
    assert np.allclose(states[k:, :3], states[k - 1, :3])  # held at the last free frame


def test_camera_cannot_go_below_ground():
    env = make(goal_radius=None)
    env.reset(seed=0, options={"scene_seed": 3, "start_pose": [0, 0, 0.5, 0, 0, 0]})
    hit_ground = False
    for _ in range(4):
        *_, info = env.step(DISCRETE_ACTIONS.index("sink"))
        assert (info["states"][:, 2] >= CAMERA_RADIUS).all()
        hit_ground |= info["obstacle"] == "ground"
    assert hit_ground


def test_reward_is_progress_and_goal_terminates():
    env = make(clip_frames=17)
    env.reset(seed=0, options={"scene_seed": 8})
    start = _facing_goal(env, 2.5)
    _, info = env.reset(seed=0, options={"scene_seed": 8, "start_pose": start})
    assert info["goal_distance"] == pytest.approx(2.5)
    _, reward, terminated, truncated, info = env.step(FORWARD)
    assert not info["collision"]
    assert info["goal_distance"] == pytest.approx(1.0, abs=1e-6)  # walked 1.5 m straight at it
    assert reward == pytest.approx(1.5 - 0.01, abs=1e-6)
    assert terminated and not truncated


def test_custom_reward_fn():
    calls = []

    def reward_fn(transition):
        calls.append(transition)
        return -1.0 if transition.collided else 2.0

    env = make(reward_fn=reward_fn)
    env.reset(seed=0)
    _, reward, *_ = env.step(0)
    assert reward == 2.0 and len(calls) == 1 and calls[0].goal_distance_before == calls[0].goal_distance_after


def test_truncated_by_time_limit():
    env = make(max_episode_steps=2, goal_radius=None)
    env.reset(seed=0)
    assert env.step(0)[3] is False
    assert env.step(0)[3] is True


@pytest.mark.parametrize(
    "options, message",
    [
        ({"weather": "rain"}, "unknown reset option"),
        ({"style": "underwater"}, "unknown style 'underwater'"),
        ({"start_pose": [0, 0, 1.6]}, "start_pose"),
        ({"start_pose": [0, 0, 0.1, 0, 0, 0]}, "inside the ground"),
        ({"start_pose": [0, 0, np.nan, 0, 0, 0]}, "finite"),
        ({"scene_seed": -3}, "scene_seed"),
    ],
)
def test_bad_reset_options(options, message):
    env = make()
    with pytest.raises(ValueError, match=message):
        env.reset(seed=0, options=options)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="unknown action_mode"):
        make(action_mode="mouse")
    with pytest.raises(ValueError, match="obs_mode"):
        make(obs_mode="video")
    with pytest.raises(ValueError, match="4k\\+1"):
        make(clip_frames=16)
    with pytest.raises(ValueError, match="unknown style"):
        make(style="mars")


def test_bad_actions_raise_value_error_from_step():
    env = make(action_mode="continuous")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan, 0, 0, 0, 0, 0], dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3, dtype=np.float32))


def test_render_modes_and_keys():
    env = make(render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    assert np.array_equal(env.render(), obs)
    keys = env.unwrapped.get_keys_to_action()
    assert keys[("w",)] == FORWARD and all(env.action_space.contains(a) for a in keys.values())
    for mode in ("continuous", "trajectory"):
        keys = make(action_mode=mode).unwrapped.get_keys_to_action()
        assert all(make(action_mode=mode).action_space.contains(a) for a in keys.values())

    human = make(render_mode="human")
    human.reset(seed=0)
    human.step(FORWARD)  # plays the clip in a (dummy-driver) pygame window
    human.close()
