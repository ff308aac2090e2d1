import numpy as np
import pytest

from lv2_env.signals.camera import (
    Intrinsics,
    apply_motion,
    pose_from_state,
    project,
    relative_motion,
    state_from_pose,
    unproject,
)


def test_intrinsics_from_fov():
    k = Intrinsics.from_fov(90.0, 128, 64)
    assert k.fx == pytest.approx(64.0) and k.fy == pytest.approx(64.0)
    assert (k.cx, k.cy) == (64.0, 32.0)
    np.testing.assert_allclose(k.matrix, [[64, 0, 64], [0, 64, 32], [0, 0, 1]])
    with pytest.raises(ValueError, match="fov_deg"):
        Intrinsics.from_fov(0.0, 10, 10)


def test_opencv_convention_at_yaw_zero():
    """At the identity state the camera looks north (+y), x right is east (+x), y down is world -z."""
    pose = pose_from_state([0, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(pose[:3, 0], [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(pose[:3, 1], [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(pose[:3, 2], [0, 1, 0], atol=1e-12)
    assert np.linalg.det(pose[:3, :3]) == pytest.approx(1.0)


def test_angle_signs():
    forward = lambda state: pose_from_state(state)[:3, 2]  # noqa: E731
    assert forward([0, 0, 0, np.pi / 2, 0, 0])[0] == pytest.approx(-1.0)  # yaw +90: looks west (turned left)
    assert forward([0, 0, 0, 0, 0.3, 0])[2] > 0  # positive pitch looks up
    down = pose_from_state([0, 0, 0, 0, 0, 0.3])[:3, 1]
    assert down[0] < 0  # positive roll banks right: the camera's top tilts east, so its "down" points west


def test_state_pose_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(50):
        state = np.concatenate([rng.normal(size=3) * 5, rng.uniform(-np.pi, np.pi, 1), rng.uniform(-1.4, 1.4, 2)])
        back = state_from_pose(pose_from_state(state))
        np.testing.assert_allclose(pose_from_state(back), pose_from_state(state), atol=1e-9)


def test_project_unproject_round_trip_and_known_point():
    k = Intrinsics.from_fov(90.0, 100, 100)  # f = 50
    pose = pose_from_state([0, 0, 2, 0, 0, 0])
    # A point 10 m north, 1 m east, at camera height: right of centre, on the horizon row.
    uv, z = project(np.array([1.0, 10.0, 2.0]), pose, k)
    assert z == pytest.approx(10.0)
    np.testing.assert_allclose(uv, [50 + 50 * 1 / 10, 50], atol=1e-12)
    back = unproject(uv, z, pose, k)
    np.testing.assert_allclose(back, [1.0, 10.0, 2.0], atol=1e-12)


def test_motion_is_in_heading_frame():
    start = np.array([1.0, 2.0, 1.6, np.pi / 2, 0.4, 0.0])  # facing west, looking up
    moved = apply_motion(start, np.array([2.0, 1.0, 0.5, 0.1, 0.0, 0.0]))
    # forward = west (-x), right = north (+y); pitch does not tilt "forward" upward.
    np.testing.assert_allclose(moved[:3], [1.0 - 2.0, 2.0 + 1.0, 2.1], atol=1e-12)
    assert moved[3] == pytest.approx(np.pi / 2 + 0.1)
    np.testing.assert_allclose(relative_motion(start, moved), [2.0, 1.0, 0.5, 0.1, 0.0, 0.0], atol=1e-12)
