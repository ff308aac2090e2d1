import numpy as np
import pytest

from lv2_env.signals.actions import DISCRETE_ACTIONS, CameraActions, ClipSpec


def test_clip_spec():
    clip = ClipSpec()
    assert (clip.frames, clip.fps, clip.new_frames, clip.duration) == (17, 16, 16, 1.0)
    for bad in (16, 3, 0, 18):
        with pytest.raises(ValueError, match="4k\\+1"):
            ClipSpec(frames=bad)


def test_discrete_macros_are_smooth_constant_velocity_paths():
    actions = CameraActions("discrete")
    assert actions.space.n == len(DISCRETE_ACTIONS) == 11
    path = actions.to_trajectory(DISCRETE_ACTIONS.index("forward")).relative
    assert path.shape == (17, 6)
    np.testing.assert_allclose(path[0], 0.0)
    np.testing.assert_allclose(np.diff(path[:, 0]), 1.5 / 16)  # 1.5 m/s, equal steps
    np.testing.assert_allclose(path[:, 1:], 0.0)
    turn = actions.to_trajectory(np.int64(DISCRETE_ACTIONS.index("turn_left"))).relative
    assert turn[-1, 3] == pytest.approx(np.pi / 6)
    np.testing.assert_allclose(actions.to_trajectory(0).relative, 0.0)


def test_continuous_interpolates_the_clip_delta():
    actions = CameraActions("continuous", ClipSpec(frames=9))
    delta = np.array([1.0, -0.5, 0.2, 0.3, -0.1, 0.05], dtype=np.float32)
    path = actions.to_trajectory(delta).relative
    assert path.shape == (9, 6)
    np.testing.assert_allclose(path[-1], delta, rtol=1e-6)
    np.testing.assert_allclose(path[4], delta / 2, rtol=1e-6)
    # Bounds scale with clip duration: 8 new frames at 16 fps = half a second.
    np.testing.assert_allclose(actions.space.high, np.array([2, 2, 1, 0.8, 0.4, 0.4]) * 0.5, rtol=1e-6)


def test_trajectory_mode_passes_the_path_through():
    actions = CameraActions("trajectory", ClipSpec(frames=5))
    path = np.zeros((5, 6), dtype=np.float32)
    path[1:, 0] = [0.1, 0.3, 0.2, 0.25]  # not monotone: any path inside the bounds is allowed
    np.testing.assert_array_equal(actions.to_trajectory(path).relative, path)
    sample = actions.space.sample()
    assert actions.to_trajectory(sample).relative.shape == (5, 6)


@pytest.mark.parametrize(
    "mode, action, message",
    [
        ("discrete", 11, "in \\[0, 10\\]"),
        ("discrete", -1, "in \\[0, 10\\]"),
        ("discrete", 1.5, "integer"),
        ("discrete", np.array([1, 2]), "integer"),
        ("continuous", np.array([np.nan, 0, 0, 0, 0, 0]), "finite"),
        ("continuous", np.array([np.inf, 0, 0, 0, 0, 0]), "finite"),
        ("continuous", np.zeros(5), "shape \\(6,\\)"),
        ("continuous", np.array([5.0, 0, 0, 0, 0, 0]), "forward must be in"),
        ("continuous", "forward", "array of numbers"),
        ("trajectory", np.zeros((16, 6)), "shape \\(17, 6\\)"),
        ("trajectory", np.full((17, 6), 0.01), "frame 0 forward"),
    ],
)
def test_bad_actions_raise_value_error(mode, action, message):
    with pytest.raises(ValueError, match=message):
        CameraActions(mode).to_trajectory(action)


def test_unknown_mode():
    with pytest.raises(ValueError, match="unknown action_mode 'joystick'"):
        CameraActions("joystick")
