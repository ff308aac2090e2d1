"""The clip-conditioning loop's one home (lv2_env/conditioning/clip_conditioner.py), on exact renders of a scene."""

import numpy as np
import pytest

from lv2_env.conditioning.clip_conditioner import ClipConditioner
from lv2_env.conditioning.warp import render_along_path
from lv2_env.signals.camera import Intrinsics, poses_from_states
from lv2_env.worlds import Renderer, generate_scene

K = Intrinsics.from_fov(70.0, 48, 48)


@pytest.fixture(scope="module")
def walk():
    """Two 5-frame clips of a walk forward with a turn: frames, depth, poses (clip 2 starts where clip 1 ends)."""
    states = np.array([[0.0, 0.0, 1.6, 0.04 * i, 0.0, 0.0] for i in range(9)])
    states[:, 0] = 0.25 * np.arange(9)
    poses = poses_from_states(states)
    out = Renderer(generate_scene(3, style="sunny"), K).render(poses)
    return out.rgb, out.depth, poses


def test_a_first_frame_model_gets_nothing(walk):
    rgb, depth, poses = walk
    conditioner = ClipConditioner("first_frame", K)
    conditioner.start(rgb[0], depth[0], poses[0])
    got = conditioner.condition(poses[:5], depth[:5])
    assert conditioner.memory is None and got.rendered is None and got.known is None and got.memory_known is None


def test_last_frame_conditioning_warps_the_last_frame_shown(walk):
    rgb, depth, poses = walk
    conditioner = ClipConditioner("rendered", K, conditioning="last_frame")
    conditioner.start(rgb[0], depth[0], poses[0])
    assert conditioner.memory is None and not conditioner.composite
    assert np.array_equal(conditioner.condition(poses[:5], depth[:5]).rendered,
                          render_along_path(rgb[0], depth[0], poses[:5], K))
    shown = rgb[4] // 2  # whatever the world showed last is what the next clip starts from
    conditioner.remember(shown, depth[4], poses[4])
    assert np.array_equal(conditioner.condition(poses[4:], depth[4:]).rendered,
                          render_along_path(shown, depth[4], poses[4:], K))


def test_the_memory_conditions_remembers_and_composites(walk):
    rgb, depth, poses = walk
    conditioner = ClipConditioner("rendered", K)  # the shipped model's defaults: memory, composited
    assert conditioner.conditioning == "memory" and conditioner.composite
    with pytest.raises(RuntimeError, match="start"):
        conditioner.condition(poses[:5], depth[:5])
    conditioner.start(rgb[0], depth[0], poses[0])
    first = conditioner.condition(poses[:5], depth[:5])
    assert np.array_equal(first.rendered[0], rgb[0]) and not first.memory_known[0].any()
    assert first.memory_known[1:].mean() > 0.5 and first.known is not None  # a small step: most is remembered
    held = len(conditioner.memory)
    conditioner.remember(rgb[4], depth[4], poses[4])
    assert len(conditioner.memory) > held
    second = conditioner.condition(poses[4:], depth[4:])
    assert np.array_equal(second.rendered[0], rgb[4])
    # Training conditions each clip on its own true first frame instead of the last frame shown.
    other = conditioner.condition(poses[4:], depth[4:], first_frame=rgb[0])
    assert np.array_equal(other.rendered[0], rgb[0]) and np.array_equal(other.rendered[1:], second.rendered[1:])
    conditioner.composite = False
    assert conditioner.condition(poses[4:], depth[4:]).known is None


def test_the_start_frame_is_copied(walk):
    rgb, depth, poses = walk
    frame = rgb[0].copy()
    conditioner = ClipConditioner("rendered", K, conditioning="last_frame")
    conditioner.start(frame, depth[0], poses[0])
    frame[:] = 0  # the caller reuses its array
    assert np.array_equal(conditioner.condition(poses[:5], depth[:5]).rendered[0], rgb[0])
