import numpy as np
import pytest

from lv2_env.conditioning.point_cache import PointCache, fill_holes, splat_depth, unproject
from lv2_env.signals.camera import Intrinsics, pose_from_state

INTRINSICS = Intrinsics.from_fov(70.0, 48, 32)


def _wall_pose(forward: float = 0.0) -> np.ndarray:
    return pose_from_state(np.array([0.0, forward, 1.6, 0.0, 0.0, 0.0]))  # yaw 0 looks along +y


def test_unproject_then_splat_gives_the_depth_back():
    depth = np.random.default_rng(0).uniform(2.0, 9.0, (32, 48)).astype(np.float32)
    points = unproject(depth, _wall_pose(), INTRINSICS)
    assert np.allclose(splat_depth(points, _wall_pose(), INTRINSICS), depth, rtol=1e-5)


def test_moving_toward_a_wall_brings_it_nearer_and_holes_are_filled():
    cache = PointCache(INTRINSICS, capacity=2)
    cache.add(np.full((32, 48), 6.0, np.float32), _wall_pose())
    depth, unseen = cache.render(np.stack([_wall_pose(1.0), _wall_pose(2.0)]))
    assert depth.shape == unseen.shape == (2, 32, 48) and np.all(depth > 0)
    # Moving forward magnifies the wall: its points spread apart, the filled gaps take the wall's depth.
    centre = depth[:, 8:24, 12:36]
    assert np.allclose(centre[0], 5.0, atol=1e-4) and np.allclose(centre[1], 4.0, atol=1e-4)


def test_nearest_point_wins_and_unseen_regions_are_far():
    points = np.array([[0.0, 5.0, 1.6], [0.0, 3.0, 1.6]])  # two points on the optical axis
    depth = splat_depth(points, _wall_pose(), INTRINSICS)
    assert depth.max() == pytest.approx(3.0) and np.count_nonzero(depth) == 1
    filled = fill_holes(depth, far=150.0, iterations=1)
    assert np.count_nonzero(filled == 3.0) == 9 and filled.max() == 150.0


def test_capacity_bounds_memory_and_sky_stays_out():
    cache = PointCache(INTRINSICS, capacity=3, far=150.0)
    sky = np.full((32, 48), 150.0, np.float32)
    sky[:16] = 4.0
    for _ in range(10):
        cache.add(sky, _wall_pose())
    assert len(cache) == 1 + 3 and len(cache.points()) == (1 + 3) * 16 * 48  # the start frame and the last 3
    with pytest.raises(ValueError, match="expected depth of shape"):
        cache.add(np.ones((8, 8)), _wall_pose())
    with pytest.raises(ValueError, match="capacity"):
        PointCache(INTRINSICS, capacity=0)


def test_the_ground_prior_is_the_scenes_ground():
    from lv2_env.worlds import Renderer, generate_scene

    pose = pose_from_state(np.array([0.0, 0.0, 1.6, 0.3, -0.2, 0.0]))  # looking a little down
    out = Renderer(generate_scene(4), INTRINSICS).render(pose[None])
    ground = out.object_id[0] == 0
    prior = PointCache(INTRINSICS, ground_z=0.0).ground_depth(pose)
    assert ground.mean() > 0.2 and np.allclose(prior[ground], out.depth[0][ground], rtol=1e-3)
    assert np.all(prior[out.object_id[0] == -1] == 150.0)  # the sky stays at the far plane
    assert PointCache(INTRINSICS, ground_z=None).ground_depth(pose) == 150.0


def test_an_anchored_cache_keeps_its_geometry_and_aligns_new_estimates():
    from lv2_env.worlds import Renderer, generate_scene

    poses = np.stack([pose_from_state(np.array([0.0, 0.0, 1.6, yaw, -0.1, 0.0])) for yaw in (0.0, 0.5)])
    truth = Renderer(generate_scene(4), INTRINSICS).render(poses).depth
    cache = PointCache(INTRINSICS, key_frames=True)
    cache.add(truth[0], poses[0])
    _, holes = cache.render(poses[1:])
    assert 0.1 < holes.mean() < 0.9  # the turn shows some of what the start frame saw, and some new ground
    seen = tuple(x[0] for x in cache.render(poses[1:]))
    kept = cache.add_key_frame(2.0 * truth[1], poses[1])  # a depth network twice too far
    scene = truth[1] < 0.9 * 150.0
    # Where the start frame saw, its geometry stays; the new estimate fills the rest at the cache's scale.
    assert np.median(np.abs(kept[scene] / truth[1][scene] - 1.0)) < 0.05
    again = PointCache(INTRINSICS, key_frames=True)
    again.add(truth[0], poses[0])
    assert np.array_equal(again.add_key_frame(2.0 * truth[1], poses[1], rendered=seen), kept)  # the render passed in
    naive = PointCache(INTRINSICS, key_frames=True, anchored=False)
    naive.add(truth[0], poses[0])
    assert np.array_equal(naive.add_key_frame(2.0 * truth[1], poses[1]), 2.0 * truth[1])


def test_by_default_the_start_frame_and_the_ground_prior_are_the_geometry_for_good():
    from lv2_env.worlds import Renderer, generate_scene

    poses = np.stack([pose_from_state(np.array([0.0, 0.0, 1.6, yaw, -0.1, 0.0])) for yaw in (0.0, 0.5)])
    truth = Renderer(generate_scene(4), INTRINSICS).render(poses).depth
    cache = PointCache(INTRINSICS)
    cache.add(truth[0], poses[0])
    before = cache.render(poses[1:])
    kept = cache.add_key_frame(None, poses[1])  # no estimate needed: nothing enters
    assert len(cache) == 1 and np.array_equal(kept, before[0][0])
    assert np.array_equal(cache.add_key_frame(2.0 * truth[1], poses[1], rendered=tuple(x[0] for x in before)), kept)
    # Where the start frame saw nothing below the horizon, the ground plane's depth.
    holes = before[1][0]
    assert holes.any() and np.array_equal(kept[holes], np.broadcast_to(cache.ground_depth(poses[1]), kept.shape)[holes])
    first = PointCache(INTRINSICS)
    assert np.array_equal(first.add_key_frame(truth[0], poses[0]), truth[0]) and len(first) == 1  # the start frame
    with pytest.raises(ValueError, match="expected the key frame's estimated depth"):
        PointCache(INTRINSICS, key_frames=True).add_key_frame(None, poses[0])
    with pytest.raises(ValueError, match="expected the key frame's estimated depth"):
        PointCache(INTRINSICS).add_key_frame(None, poses[0])  # the start frame has no cache to fall back on


def test_a_start_depth_scaled_to_the_ground_plane_is_metric_again():
    from lv2_env.worlds import Renderer, generate_scene

    pose = pose_from_state(np.array([0.0, 0.0, 1.6, 1.0, -0.15, 0.0]))
    truth = Renderer(generate_scene(4), INTRINSICS).render(pose[None]).depth[0]
    scaled = PointCache(INTRINSICS).scaled_to_ground(3.0 * truth, pose)  # a depth network 3x too far
    assert np.allclose(scaled, truth, rtol=0.02)
    assert np.array_equal(PointCache(INTRINSICS, ground_z=None).scaled_to_ground(3.0 * truth, pose), 3.0 * truth)
