"""Control signals against hand-computed geometry.

The scene of these tests is solved by hand: a wall at y = 10 m facing a camera that looks north (+y) from
z = 0 and slides east along x, with a pole (the slab 1 <= x <= 1.5 at y = 5 m) in between. With a 90 degree
field of view at 64x64 the focal length is 32 px, so a wall point (X, 10, Z) seen from (c, 0, 0) lands at
u = 32 + 32 (X - c) / 10, v = 32 - 32 Z / 10, and is hidden by the pole when its sight line crosses y = 5
inside the slab: 1 <= (c + X) / 2 <= 1.5.
"""

import numpy as np
import pytest

from lv2_env.signals.camera import Intrinsics, pose_from_state
from lv2_env.signals.control import (
    DepthRange,
    compute_control_signals,
    dense_video,
    draw_tracks,
    num_track_points,
    track_grid,
)

SIZE = 64
K = Intrinsics.from_fov(90.0, SIZE, SIZE)
CAMERA_X = np.array([0.0, 0.5, 1.0, 1.5, 2.0])


def _depth_map(camera_x: float) -> np.ndarray:
    u = (np.arange(SIZE) + 0.5 - K.cx) / K.fx  # ray slope per pixel column
    x_at_pole = camera_x + 5.0 * u
    row = np.where((x_at_pole >= 1.0) & (x_at_pole <= 1.5), 5.0, 10.0)
    return np.repeat(row[None, :], SIZE, axis=0).astype(np.float32)


@pytest.fixture(scope="module")
def clip():
    depth = np.stack([_depth_map(c) for c in CAMERA_X])  # [F, H, W]
    poses = np.stack([pose_from_state([c, 0.0, 0.0, 0.0, 0.0, 0.0]) for c in CAMERA_X])
    signals = compute_control_signals(depth, poses, K, DepthRange(4.0, 12.0))
    return depth, poses, signals


def test_track_positions_match_hand_projection(clip):
    depth, _, signals = clip
    grid = track_grid(SIZE, SIZE)
    on_wall = depth[0, grid[:, 1].astype(int), grid[:, 0].astype(int)] == 10.0
    assert on_wall.sum() > 50
    wall_x = 10.0 * (grid[:, 0] - 32.0) / 32.0  # X of each grid point on the wall
    wall_z = -10.0 * (grid[:, 1] - 32.0) / 32.0
    for f, c in enumerate(CAMERA_X):
        expected_u = 32.0 + 32.0 * (wall_x - c) / 10.0
        expected_v = 32.0 - 32.0 * wall_z / 10.0
        np.testing.assert_allclose(signals.tracks[f, on_wall, 0], expected_u[on_wall], atol=1e-4)
        np.testing.assert_allclose(signals.tracks[f, on_wall, 1], expected_v[on_wall], atol=1e-4)


def test_visibility_follows_occlusion_and_image_bounds(clip):
    depth, _, signals = clip
    grid = track_grid(SIZE, SIZE)
    on_wall = depth[0, grid[:, 1].astype(int), grid[:, 0].astype(int)] == 10.0
    wall_x = 10.0 * (grid[:, 0] - 32.0) / 32.0
    became_hidden = 0
    for f, c in enumerate(CAMERA_X):
        crossing = (c + wall_x) / 2.0
        u = 32.0 + 32.0 * (wall_x - c) / 10.0
        margin = 0.1  # metres at the pole, a few pixels: away from the slab's edges the answer is unambiguous
        clearly_hidden = on_wall & (crossing > 1.0 + margin) & (crossing < 1.5 - margin) & (u > 1) & (u < 63)
        clearly_seen = on_wall & ((crossing < 1.0 - margin) | (crossing > 1.5 + margin)) & (u > 1) & (u < 63)
        outside = on_wall & ((u < 0) | (u >= SIZE))
        assert not signals.visibility[f, clearly_hidden].any()
        assert signals.visibility[f, clearly_seen].all()
        assert not signals.visibility[f, outside].any()
        became_hidden += int((clearly_hidden & signals.visibility[0]).sum())
    assert became_hidden > 0, "some point visible on the first frame must become occluded by the pole"
    # The frame-0 points on the pole itself are tracked too (depth 5): they slide faster than the wall.
    on_pole = ~on_wall
    assert on_pole.any()
    np.testing.assert_allclose(
        signals.tracks[1, on_pole, 0] - signals.tracks[0, on_pole, 0], -32.0 * 0.5 / 5.0, atol=1e-4
    )


def test_colours_fixed_from_first_frame(clip):
    depth, _, signals = clip
    grid = track_grid(SIZE, SIZE)
    first = depth[0, grid[:, 1].astype(int), grid[:, 0].astype(int)]
    expected_b = (1 / first - 1 / 12.0) / (1 / 4.0 - 1 / 12.0)
    np.testing.assert_array_equal(signals.colours[:, 0], np.round(grid[:, 0] / SIZE * 255).astype(np.uint8))
    np.testing.assert_array_equal(signals.colours[:, 1], np.round(grid[:, 1] / SIZE * 255).astype(np.uint8))
    np.testing.assert_allclose(signals.colours[:, 2], expected_b * 255, atol=0.51)  # rounding to uint8
    # Each visible point's square carries its colour at its tracked position in every frame.
    for f in range(len(CAMERA_X)):
        for n in np.flatnonzero(signals.visibility[f])[:20]:
            x, y = np.floor(signals.tracks[f, n]).astype(int)
            if 1 <= x < SIZE - 1 and 1 <= y < SIZE - 1:
                covering = signals.sparse[f, y, x]
                # Either its own colour or a nearer point's painted over it.
                assert (covering == signals.colours[n]).all() or covering[2] >= signals.colours[n][2]


def test_squares_painted_far_to_near_without_trails():
    tracks = np.array([[[10.5, 10.5], [11.5, 10.5]], [[30.5, 30.5], [40.5, 40.5]]], dtype=np.float64)  # [F=2, N=2, 2]
    depths = np.array([[9.0, 3.0], [9.0, 3.0]])
    visibility = np.array([[True, True], [True, False]])
    colours = np.array([[255, 0, 0], [0, 255, 0]], dtype=np.uint8)
    video = draw_tracks(tracks, depths, visibility, colours, 48, 48, square=3)
    # Frame 0: the squares overlap; the nearer (green) one is on top where they meet.
    assert (video[0, 10, 11] == [0, 255, 0]).all()
    assert (video[0, 10, 9] == [255, 0, 0]).all()
    # Frame 1: the red point moved; nothing is left where it was (no trails); the hidden green one is not drawn.
    assert video[1, 10, 10].sum() == 0 and video[1, 40, 40].sum() == 0
    assert (video[1, 30, 30] == [255, 0, 0]).all()
    assert (video[1] > 0).any(axis=-1).sum() == 9  # one 3x3 square


def test_dense_video_uses_the_global_range():
    depth_range = DepthRange(2.0, 10.0)
    a = dense_video(np.full((1, 4, 4), 2.0), depth_range)
    b = dense_video(np.array([[[6.0, 10.0, 30.0, 1.0]]]), depth_range)
    assert a.shape == (1, 4, 4, 3) and a.dtype == np.uint8 and (a == 255).all()  # near is bright
    np.testing.assert_array_equal(b[0, 0, :, 0], [128, 0, 0, 255])  # (10-6)/8 = .5; clipped beyond the range
    assert (b[..., 0] == b[..., 1]).all() and (b[..., 1] == b[..., 2]).all()


def test_depth_range_fit_is_global_over_all_frames():
    depth = np.stack([np.full((10, 10), 1.0), np.full((10, 10), 100.0)])
    fitted = DepthRange.fit(depth)
    assert fitted.near == pytest.approx(1.0) and fitted.far == pytest.approx(100.0)
    flat = DepthRange.fit(np.full((8, 8), 3.0))
    assert flat.far - flat.near == pytest.approx(0.5)
    with pytest.raises(ValueError, match="0 < near < far"):
        DepthRange(5.0, 2.0)


def test_number_of_points_scales_with_area():
    assert num_track_points(480, 832) == 2500
    assert num_track_points(128, 128) >= 100
    assert num_track_points(960, 1664) == 10000
    assert len(track_grid(480, 832)) >= 2500
    assert len(track_grid(128, 128)) >= 100


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="poses \\[F, 4, 4\\]"):
        compute_control_signals(np.ones((3, 64, 64)), np.tile(np.eye(4), (2, 1, 1)), K, DepthRange(1, 2))
    with pytest.raises(ValueError, match="intrinsics"):
        compute_control_signals(np.ones((2, 32, 32)), np.tile(np.eye(4), (2, 1, 1)), K, DepthRange(1, 2))
