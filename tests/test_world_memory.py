"""The world memory: bounded, first observation kept, start frame protected, rendered with a z-buffer."""

import numpy as np
import pytest

from lv2_env.signals.camera import Intrinsics, pose_from_state, poses_from_states
from lv2_env.signals.world_memory import WorldMemory
from lv2_env.worlds import Renderer, generate_scene

SIZE = 64
K = Intrinsics.from_fov(70, SIZE, SIZE)


def _render(states, seed=3):
    poses = poses_from_states(np.asarray(states, float))
    out = Renderer(generate_scene(seed, style="sunny"), K).render(poses)
    return out, poses


def test_an_unmoved_camera_gets_its_frame_back_where_there_is_surface():
    out, poses = _render([[0, 0, 1.6, 0.3, 0, 0]])
    memory = WorldMemory(K)
    added = memory.add(out.rgb[0], out.depth[0], poses[0], protected=True)
    surface = out.depth[0] < 150.0
    assert added == len(memory) > 0.5 * surface.sum()  # 5 cm voxels merge a few far pixels
    render = memory.render(poses)
    assert not render.covered[0][~surface].any()  # sky is not a surface: left empty
    near = surface & (out.depth[0] < 20.0)  # where a pixel is finer than a voxel, it comes back exactly
    agree = (render.frames[0][near] == out.rgb[0][near]).all(axis=-1)
    assert render.covered[0][near].mean() > 0.99 and agree.mean() > 0.95


def test_the_render_follows_the_camera_like_the_truth():
    states = np.array([[0, 0, 1.6, 0.0, 0, 0], [0.0, 0.8, 1.6, 0.15, 0, 0]])
    out, poses = _render(states)
    memory = WorldMemory(K)
    memory.add(out.rgb[0], out.depth[0], poses[0])
    render = memory.render(poses[1:])
    hit = render.covered[0]
    error = np.abs(render.frames[0][hit].astype(int) - out.rgb[1][hit].astype(int)).mean()
    assert hit.mean() > 0.3 and error < 12, (hit.mean(), error)


def test_first_observation_wins_and_the_start_frame_is_never_evicted():
    out, poses = _render([[0, 0, 1.6, 0.0, 0, 0]])
    pixels = SIZE * SIZE
    memory = WorldMemory(K, capacity=pixels)
    first = memory.add(out.rgb[0], out.depth[0], poses[0], protected=True)
    before = memory.render(poses).frames[0]
    assert memory.add(255 - out.rgb[0], out.depth[0], poses[0]) == 0  # the same voxels: the first look stays
    assert np.array_equal(memory.render(poses).frames[0], before)  # not the inverted colours of the later look
    # A full memory makes room by forgetting the oldest unprotected surfels, never the protected start frame.
    other, other_poses = _render([[0, 0, 1.6, np.pi, 0, 0]])
    memory.add(other.rgb[0], other.depth[0], other_poses[0])
    assert len(memory) <= pixels and memory.protected_surfels == first
    again, _ = _render([[0, 0, 1.6, np.pi / 2, 0, 0]])
    before = memory.nbytes
    for _ in range(3):
        memory.add(again.rgb[0], again.depth[0], pose_from_state(np.array([0, 0, 1.6, np.pi / 2, 0, 0])))
    assert memory.nbytes == before and len(memory) <= pixels


def test_capacity_below_one_frame_is_refused():
    with pytest.raises(ValueError, match=r"at least one frame's pixels \(64x64 = 4096 surfels\), got 100"):
        WorldMemory(K, capacity=100)
    with pytest.raises(ValueError, match="uint8 frame"):
        WorldMemory(K).add(np.zeros((SIZE, SIZE, 3), np.float32), np.ones((SIZE, SIZE)), np.eye(4))


# ------------------------------------------------------------------------------------------------ in World-v0


def test_world_env_conditions_on_the_memory_render(world_checkpoint):
    import gymnasium as gym

    import lv2_env  # noqa: F401

    env = gym.make("LV2/World-v0", checkpoint=str(world_checkpoint), preset="test", conditioning="memory",
                   memory_capacity=32 * 32 * 4, precision="fp32")
    _, info = env.reset(seed=1)
    world = env.unwrapped
    start = len(world.memory)
    assert start > 0 and world.memory.protected_surfels == start and info["memory_frames"] is None
    size = world.memory.nbytes
    plan = world.plan_step(5)  # turn left: the memory renders the start frame along the path
    remembered = world.memory.render(plan.path.poses)
    hit = remembered.covered[1:]
    assert hit.any() and np.array_equal(plan.rendered[1:][hit], remembered.frames[1:][hit])
    assert np.array_equal(plan.rendered[0], info["frames"][-1])  # frame 0 is the last frame itself
    for action in (5, 5, 6, 6, 1):
        _, _, _, _, info = env.step(action)
        assert info["memory_frames"].shape == (5, 32, 32, 3)
    assert start < len(world.memory) <= world.memory.capacity and world.memory.nbytes == size
    assert world.memory.protected_surfels == start  # the start frame is never forgotten
    assert "memory" in world.last_timings


def test_world_env_refuses_a_bad_memory(world_checkpoint):
    import gymnasium as gym

    import lv2_env  # noqa: F401

    with pytest.raises(ValueError, match="conditioning must be one of"):
        gym.make("LV2/World-v0", checkpoint=str(world_checkpoint), preset="test", conditioning="everything")
    with pytest.raises(ValueError, match="at least one frame's pixels"):
        gym.make("LV2/World-v0", checkpoint=str(world_checkpoint), preset="test", conditioning="memory",
                 memory_capacity=10)
