"""The world memory: bounded, first observation kept, start frame protected, rendered with a z-buffer."""

import numpy as np
import pytest

from lv2_env.conditioning.world_memory import WorldMemory
from lv2_env.signals.camera import Intrinsics, pose_from_state, poses_from_states
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
    sky = ~surface  # the sky comes back from the panorama, a cell finer than a pixel
    assert render.covered[0][sky].all()
    assert np.abs(render.frames[0][sky].astype(int) - out.rgb[0][sky].astype(int)).mean() < 2
    near = surface & (out.depth[0] < 20.0)  # where a pixel is finer than a voxel, it comes back exactly
    agree = (render.frames[0][near] == out.rgb[0][near]).all(axis=-1)
    assert render.covered[0][near].mean() > 0.99 and agree.mean() > 0.95


def test_at_the_models_size_an_unmoved_camera_gets_every_surface_pixel_back():
    # 128x128: near the camera a pixel is ~2.5 cm of ground; voxels coarser than that merge pixels and leave
    # pinholes (5 cm voxels lost 14% of the surface, which the model then filled with moire).
    k = Intrinsics.from_fov(70, 128, 128)
    poses = poses_from_states(np.array([[0, 0, 1.6, 0.3, 0, 0]]))
    out = Renderer(generate_scene(1), k).render(poses)
    memory = WorldMemory(k)
    memory.add(out.rgb[0], out.depth[0], poses[0], protected=True)
    render = memory.render(poses)
    surface = out.depth[0] < 150.0
    assert render.covered[0][surface].all() and np.array_equal(render.frames[0][surface], out.rgb[0][surface])


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
    assert len(memory) <= pixels and memory.protected[memory.stamp >= 0].sum() == first
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
    held = world.memory.stamp >= 0  # the slots of the surfels held
    assert start > 0 and world.memory.protected[held].sum() == start and info["memory_frames"] is None
    size = world.memory.nbytes
    plan = world.plan_step(5)  # turn left: the memory renders the start frame along the path, with its depth
    remembered = world.memory.render(plan.path.poses, plan.depth)
    hit = remembered.covered[1:]
    assert hit.any() and np.array_equal(plan.rendered[1:][hit], remembered.frames[1:][hit])
    assert np.array_equal(plan.rendered[0], info["frames"][-1])  # frame 0 is the last frame itself
    for action in (5, 5, 6, 6, 1):
        _, _, _, _, info = env.step(action)
        assert info["memory_frames"].shape == (5, 32, 32, 3)
    assert start < len(world.memory) <= world.memory.capacity and world.memory.nbytes == size
    assert world.memory.protected[world.memory.stamp >= 0].sum() == start  # the start frame is never forgotten
    assert "memory" in world.last_timings
    fog = world.scene.style
    assert world.memory.atmosphere.density == fog.fog_density  # the scene's fog, taken at reset
    assert world.memory.atmosphere.colour == tuple(255.0 * c for c in fog.fog_colour)


def test_world_env_refuses_a_bad_memory(world_checkpoint):
    import gymnasium as gym

    import lv2_env  # noqa: F401

    with pytest.raises(ValueError, match="conditioning must be one of"):
        gym.make("LV2/World-v0", checkpoint=str(world_checkpoint), preset="test", conditioning="everything")
    with pytest.raises(ValueError, match="at least one frame's pixels"):
        gym.make("LV2/World-v0", checkpoint=str(world_checkpoint), preset="test", conditioning="memory",
                 memory_capacity=10)


def test_a_checkpoint_trained_on_the_memory_refuses_the_last_frame_alone():
    import dataclasses

    from lv2_env.conditioning.clip_conditioner import memory_options
    from model.presets import get_preset

    assert memory_options("rendered", None, None, "memory") == ("memory", True)
    with pytest.raises(ValueError, match="trained on the world memory's renders .* conditioning='last_frame'"):
        memory_options("rendered", "last_frame", None, "memory")
    rendered = dataclasses.replace(get_preset("tiny"), condition="rendered")
    assert dataclasses.replace(rendered, trained_conditioning="memory").trained_conditioning == "memory"
    with pytest.raises(ValueError, match="trained_conditioning must be None or, for condition='rendered'"):
        dataclasses.replace(get_preset("tiny"), condition="first_frame", trained_conditioning="memory")


def test_a_second_look_stores_only_what_the_memory_does_not_show():
    out, poses = _render([[0, 0, 1.6, 0.0, 0, 0], [0.0, 0.0, 1.6, 0.35, 0, 0]])  # then turned 20 degrees
    memory = WorldMemory(K)
    memory.add(out.rgb[0], out.depth[0], poses[0])
    shown = memory.render(poses[1:]).covered[0]
    new_surface = (out.depth[1] < 150.0) & ~shown
    added = memory.add(out.rgb[1], out.depth[1], poses[1])
    alone = WorldMemory(K).add(out.rgb[1], out.depth[1], poses[1])
    # What the turn reveals is stored; what the memory already showed at that depth is kept, not stored again
    # (more than the revealed pixels is stored where a surfel's box spilled over a depth edge or a slope).
    assert 0.9 * new_surface.sum() <= added <= 1.5 * new_surface.sum(), (added, new_surface.sum())
    assert added < 0.5 * alone, (added, alone)


def test_the_ground_seen_nearer_has_no_rows_of_holes():
    # Walking 1.5 m forward, the ground below was all seen in the first frame, at a slant: its surfels cover it
    # (drawn only as large as they were facing the camera, 14% of it would be rows of holes).
    from lv2_env.signals.camera import apply_motion

    start = np.array([0, 0, 1.6, 0.0, 0, 0])
    out, poses = _render([start, apply_motion(start, np.array([1.5, 0, 0, 0, 0, 0]))], seed=4)
    memory = WorldMemory(K)
    memory.add(out.rgb[0], out.depth[0], poses[0])
    render = memory.render(poses[1:])
    ground = (out.object_id[1] == 0) & (out.object_id[0] == 0)  # ground in both views (none hidden by objects)
    ground[: SIZE // 2 + 4] = False  # the ground just below the horizon is partly new
    assert ground.sum() > 0.3 * SIZE * SIZE
    assert render.covered[0][ground].mean() > 0.98, render.covered[0][ground].mean()
    error = np.abs(render.frames[0][ground].astype(int) - out.rgb[1][ground].astype(int)).mean()
    assert error < 12, error


def test_composite_shows_the_memory_where_it_holds_the_surface(world_checkpoint):
    import gymnasium as gym

    import lv2_env  # noqa: F401

    env = gym.make("LV2/World-v0", checkpoint=str(world_checkpoint), preset="test", conditioning="memory",
                   composite=True, precision="fp32")
    world = env.unwrapped
    streamed = []
    world.on_frames = streamed.append
    _, info = env.reset(seed=2)
    last = info["frames"][-1]
    _, _, _, _, info = env.step(6)  # turn right: part of the view is remembered, part is new
    memory, frames = info["memory_frames"], info["frames"]
    covered = memory.any(axis=-1)  # the memory's render is black only in its holes here (no black surfaces)
    covered[0] = False
    assert 0.05 < covered[1:].mean() < 0.95
    assert np.array_equal(frames[covered], memory[covered]) and np.array_equal(frames[0], last)
    assert np.array_equal(np.concatenate(streamed), frames[1:])  # what a viewer was shown is what step returns
    _, _, _, _, info = env.step(1)
    assert np.array_equal(info["frames"][0], frames[-1])  # the next clip continues from the composite
    with pytest.raises(ValueError, match="composite=True .* needs conditioning='memory'"):
        gym.make("LV2/World-v0", checkpoint=str(world_checkpoint), preset="test", conditioning="last_frame",
                 composite=True)


def test_known_pixels_are_checked():
    from model.generator import KnownPixels

    with pytest.raises(ValueError, match=r"uint8 frames \[F, H, W, 3\] and a bool mask \[F, H, W\]"):
        KnownPixels(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((2, 8, 7), bool))
    known = KnownPixels(np.full((3, 2, 2, 3), 7, np.uint8), np.array([[[1, 0], [0, 0]]] * 3, bool))
    out = known.apply(np.zeros((2, 2, 2, 3), np.uint8), start=1)
    assert out[:, 0, 0].tolist() == [[7] * 3] * 2 and not out[:, 1].any()


def test_the_sky_turns_with_the_camera_as_the_forward_warp_turns_it():
    from lv2_env.conditioning.warp import warp_first_frame

    out, poses = _render([[0, 0, 1.6, 0.0, 0.1, 0], [0, 0, 1.6, 0.25, 0.15, 0]])
    memory = WorldMemory(K)
    memory.add(out.rgb[0], out.depth[0], poses[0], protected=True)
    render = memory.render(poses, out.depth)
    forward, forward_covered = warp_first_frame(out.rgb[0], out.depth[0], poses, K)
    sky = out.depth >= 150
    on_sky = forward_covered & sky & render.covered
    assert render.covered[0][sky[0]].all() and on_sky[1].sum() > 0.5 * sky[1].sum()
    assert np.abs(render.frames[on_sky].astype(int) - forward[on_sky].astype(int)).mean() < 2
    assert 0 < memory.panorama.seen.mean() < 0.1  # the fraction of all view directions whose sky it holds


def test_a_sky_direction_keeps_its_first_look():
    out, poses = _render([[0, 0, 1.6, 0.0, 0.1, 0]])
    memory = WorldMemory(K)
    memory.add(out.rgb[0], out.depth[0], poses[0], protected=True)
    memory.add(np.full_like(out.rgb[0], 255), out.depth[0], poses[0])  # a later, wrong look at the same sky
    render = memory.render(poses)
    sky = out.depth[0] >= 150
    assert np.abs(render.frames[0][sky].astype(int) - out.rgb[0][sky].astype(int)).mean() < 2
    memory.clear()
    assert not memory.panorama.seen.any() and not memory.render(poses).covered.any()


def _walk_up(walk: float, yaw: float = 2.4):
    """A start frame and a second one ``walk`` metres on along ``yaw``; the memory holds the start frame."""
    states = np.array([[0, 0, 1.6, yaw, 0, 0], [walk * np.cos(yaw), walk * np.sin(yaw), 1.6, yaw, 0, 0]])
    out, poses = _render(states)
    memory = WorldMemory(K)
    memory.add(out.rgb[0], out.depth[0], poses[0], protected=True)
    return out, poses, memory


def test_with_the_paths_depth_only_surfaces_on_it_are_shown():
    # Walking up to an object first seen far away: its surfels are drawn large, and without the path's depth the
    # ground behind it shows through their gaps and their edges overhang the sky around it.
    out, poses, memory = _walk_up(7.0)
    blind, seeing = memory.render(poses), memory.render(poses, out.depth)
    with pytest.raises(ValueError, match=r"expected the path's depth \[2, 64, 64\], got \(64, 64\)"):
        memory.render(poses, out.depth[0])

    def error(render):
        hit = render.covered[1]
        return np.abs(render.frames[1][hit].astype(int) - out.rgb[1][hit].astype(int)).mean()

    assert error(seeing) < 0.25 * error(blind), (error(seeing), error(blind))  # measured 0.17 against 5.3
    assert seeing.covered[1].mean() > 0.85 * blind.covered[1].mean()  # what it drops was wrong
    sky = out.depth[1] >= 150  # walking does not move the sky: it shows as first seen (but where objects hid it)
    assert seeing.covered[1][sky].mean() > 0.9
    shown = sky & seeing.covered[1]
    assert np.abs(seeing.frames[1][shown].astype(int) - out.rgb[1][shown].astype(int)).mean() < 2


def test_back_at_the_start_the_start_frame_shows_over_later_looks():
    # A later look (here all white, as a wrong generated frame) fills what the start frame did not show from its
    # own viewpoint; seen again from the start, its surfels are drawn large and a few centimetres nearer than the
    # start frame's. With the path's depth the start frame wins wherever it lies on the surface.
    out, poses, memory = _walk_up(3.0)
    assert memory.add(np.full_like(out.rgb[1], 255), out.depth[1], poses[1]) > 0
    back = memory.render(poses[:1], out.depth[:1])
    surface = out.depth[0] < 150
    assert back.covered[0][surface].all()
    assert np.array_equal(back.frames[0][surface], out.rgb[0][surface])


def test_a_generated_frames_sky_is_stored_only_clear_of_surfaces():
    # A generated frame blurs an object's edge into the sky beside it: stored, that fringe would hang in the sky
    # as a streak once parallax moves the object. Only sky SKY_EDGE_MARGIN pixels clear of every surface is kept;
    # the start frame (protected, the truth) keeps all of its sky.
    from lv2_env.conditioning.raster import erode
    from lv2_env.conditioning.world_memory import SKY_EDGE_MARGIN

    out, poses = _render([[0, 0, 1.6, 0.0, 0.1, 0]])
    sky = out.depth[0] >= 150
    clear = erode(sky, SKY_EDGE_MARGIN)
    fringe = sky & ~clear
    assert fringe.sum() > 0 and clear.sum() > 0.5 * sky.sum()
    generated = WorldMemory(K)
    generated.add(out.rgb[0], out.depth[0], poses[0])
    shown = generated.render(poses).covered[0]
    assert shown[clear].all() and not shown[fringe].any()
    truth = WorldMemory(K)
    truth.add(out.rgb[0], out.depth[0], poses[0], protected=True)
    assert truth.render(poses).covered[0][sky].all()
    assert erode(np.ones((4, 4), bool), 2).all()  # the frame's border is no surface
    with pytest.raises(ValueError, match="sky_margin must be a whole number of pixels >= 0, got -1"):
        WorldMemory(K, sky_margin=-1)


def test_culling_by_brick_draws_exactly_what_the_whole_memory_draws(monkeypatch):
    # A memory of a full turn, rendered along a short path that sees part of it: the bricks out of every view are
    # skipped, and no pixel of the render, with or without the path's depth, nor of a second look, changes.
    turn = [[0, 0, 1.6, yaw, 0, 0] for yaw in np.linspace(0, 2 * np.pi, 8, endpoint=False)]
    out, poses = _render(turn)
    memory = WorldMemory(K)
    for k in range(len(poses)):
        memory.add(out.rgb[k], out.depth[k], poses[k], protected=k == 0)
    path_out, path = _render([[0.3 * t, 0.1 * t, 1.6, 0.4 + 0.1 * t, 0.05, 0] for t in range(5)])
    culled = memory._in_view(path)
    assert len(culled) < 0.6 * len(memory)  # the turn's other side is skipped
    renders = [memory.render(path), memory.render(path, path_out.depth)]
    shown_again = memory._shown_at(path_out.depth[2].astype(float), path[2])
    monkeypatch.setattr(memory, "_in_view", lambda poses: memory._slots)
    for render, whole in zip(renders, [memory.render(path), memory.render(path, path_out.depth)]):
        assert np.array_equal(render.frames, whole.frames) and np.array_equal(render.covered, whole.covered)
    assert render.covered.mean() > 0.5
    assert np.array_equal(shown_again, memory._shown_at(path_out.depth[2].astype(float), path[2]))


def test_with_the_worlds_fog_a_surface_walked_up_to_comes_out_of_it():
    # In fog a surface first seen 10 m off keeps half its colour; walked up to, the truth shows nearly all of it,
    # and a memory that keeps the first look shows it grey. With the world's atmosphere the render moves each
    # surfel of the truth (the protected start frame) to the fog of its distance now.
    from lv2_env.envs.world import scene_atmosphere

    scene = generate_scene(3, style="fog")
    poses = poses_from_states(np.array([[0, 0, 1.6, 2.4, 0, 0], [6 * np.cos(2.4), 6 * np.sin(2.4), 1.6, 2.4, 0, 0]]))
    out = Renderer(scene, K).render(poses)
    memories = {"first look": WorldMemory(K), "atmosphere": WorldMemory(K, atmosphere=scene_atmosphere(scene))}
    errors = {}
    for name, memory in memories.items():
        memory.add(out.rgb[0], out.depth[0], poses[0], protected=True)
        back, ahead = memory.render(poses, out.depth).frames, memory.render(poses, out.depth).covered[1]
        surface = ahead & (out.depth[1] < 150)
        errors[name] = np.abs(back[1][surface].astype(int) - out.rgb[1][surface].astype(int)).mean()
        assert np.array_equal(back[0][out.depth[0] < 150], out.rgb[0][out.depth[0] < 150])  # unmoved: unchanged
    assert errors["atmosphere"] < 0.4 * errors["first look"], errors  # measured 0.47 against 2.94
    # A generated look is shown as first seen (moving the model's far looks out of the fog enlarged its errors)
    # wherever it is shown: from much nearer it is not (test below).
    generated = WorldMemory(K, atmosphere=scene_atmosphere(scene), sky_margin=0)  # its sky as the truth's
    generated.add(out.rgb[0], out.depth[0], poses[0])
    first_look, shown = memories["first look"].render(poses, out.depth), generated.render(poses, out.depth)
    surface = shown.covered[1] & (out.depth[1] < 150)
    assert surface.mean() > 0.1, surface.mean()
    assert np.array_equal(shown.frames[1][surface], first_look.frames[1][surface])


def test_in_fog_a_generated_look_seen_far_off_is_drawn_again_nearer():
    # The model's look at ground 20 m off in fog is mostly fog; walked up to, it is left as a hole for the model to
    # draw again, and that nearer look takes its place in the memory.
    from lv2_env.envs.world import scene_atmosphere
    from lv2_env.conditioning.world_memory import MAX_FOG_GAIN_SHOWN

    scene = generate_scene(3, style="fog")
    fog = scene_atmosphere(scene)
    poses = poses_from_states(np.array([[0, 0, 1.6, 2.4, 0, 0]] * 2))
    ahead = poses[0][:3, 2] * [1, 1, 0]
    poses[1][:3, 3] += 10 * ahead / np.linalg.norm(ahead)  # 10 m forward
    out = Renderer(scene, K).render(poses)
    memory, kept = WorldMemory(K, atmosphere=fog), WorldMemory(K)
    for m in (memory, kept):
        m.add(out.rgb[0], out.depth[0], poses[0])  # a generated frame: not protected
    near, first_look = memory.render(poses, out.depth), kept.render(poses, out.depth)
    assert np.array_equal(near.frames[0], first_look.frames[0])  # seen from where it was seen: unchanged
    dropped = first_look.covered[1] & ~near.covered[1]
    assert dropped.mean() > 0.05, dropped.mean()
    shown = near.covered[1] & (out.depth[1] < 150)
    assert np.array_equal(near.frames[1][shown], first_look.frames[1][shown])  # the rest as first seen
    # Only looks that much nearer now are dropped: check each dropped pixel's surfel against the fog it was seen in.
    xyz = kept.xyz[: len(kept)]
    then, now = (np.linalg.norm(xyz - p[:3, 3], axis=-1) for p in poses)
    assert (fog.gain(then, now) > MAX_FOG_GAIN_SHOWN).any() and (fog.gain(then, now) <= MAX_FOG_GAIN_SHOWN).any()
    # The nearer look (here the truth's) takes the dropped looks' voxels: seen from there, the memory shows it.
    surfels = len(memory)
    memory.add(out.rgb[1], out.depth[1], poses[1])
    again = memory.render(poses[1:], out.depth[1:])
    redrawn = dropped & again.covered[0]
    assert redrawn.mean() > 0.9 * dropped.mean()
    error = np.abs(again.frames[0][redrawn].astype(int) - out.rgb[1][redrawn].astype(int)).mean()
    before = np.abs(first_look.frames[1][redrawn].astype(int) - out.rgb[1][redrawn].astype(int)).mean()
    assert error < 0.3 * before, (error, before)
    assert len(memory) >= surfels  # replaced in place, nothing lost


def test_an_atmosphere_is_checked():
    from lv2_env.conditioning.atmosphere import MAX_DEFOG_GAIN, Atmosphere

    with pytest.raises(ValueError, match=r"fog colour must be 3 values in \[0, 255\], got \(300, 0, 0\)"):
        Atmosphere((300, 0, 0), 0.1)
    with pytest.raises(ValueError, match="fog density must be >= 0 per metre, got -0.1"):
        Atmosphere((100, 100, 100), -0.1)
    fog = Atmosphere((100.0, 100.0, 100.0), 0.1)
    rgb = np.array([[110, 90, 100]], np.uint8)
    assert np.array_equal(fog.refog(rgb, np.array([5.0]), np.array([5.0])), rgb)
    assert np.array_equal(fog.refog(rgb, np.array([5.0]), np.array([5.0 + 10 * np.log(2)])), [[105, 95, 100]])
    nearer = fog.refog(rgb, np.array([100.0]), np.array([0.0]))  # 22000x nearer: the gain is capped
    assert np.array_equal(nearer, [[100 + 10 * MAX_DEFOG_GAIN, 100 - 10 * MAX_DEFOG_GAIN, 100]])
