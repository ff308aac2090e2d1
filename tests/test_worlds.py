"""Procedural worlds: scene generation, captions, signed distances and the ray caster's exactness."""

from __future__ import annotations

import numpy as np
import pytest

from lv2_env.signals.camera import Intrinsics, pose_from_state, poses_from_states, project
from lv2_env.worlds import (
    CAPTION_VOCABULARY,
    COLOURS,
    KINDS,
    STYLES,
    TEXTURES,
    Renderer,
    Scene,
    SceneObject,
    generate_scene,
    get_style,
)
from lv2_env.worlds.scene import WORLD_RADIUS, caption_words

SMALL = Intrinsics.from_fov(90.0, 48, 32)


def _single(obj: SceneObject, style: str = "sunny") -> Scene:
    return Scene(seed=0, style=get_style(style), objects=(obj,), landmark=0, caption="test")


def _sphere(center, r, colour="red") -> SceneObject:
    return SceneObject("sphere", colour, "plain", np.asarray(center, float), np.array([r, r, r]))


def _box(center, half, yaw=0.0, kind="box") -> SceneObject:
    return SceneObject(kind, "blue", "plain", np.asarray(center, float), np.asarray(half, float), yaw)


def _cylinder(center, r, hh) -> SceneObject:
    return SceneObject("cylinder", "green", "plain", np.asarray(center, float), np.array([r, r, hh]))


def _odd_camera(size: int = 33) -> Intrinsics:
    """Odd image size so one pixel centre lies exactly on the optical axis."""
    return Intrinsics.from_fov(60.0, size, size)


def _clip(n: int = 5) -> np.ndarray:
    states = np.array([[0.0, 0.3 * i, 1.6, 0.2 * i, -0.05 * i, 0.02 * i] for i in range(n)])
    return poses_from_states(states)  # [n, 4, 4]


# ---------------------------------------------------------------------------------------------- styles


def test_styles_are_distinct_and_valid():
    assert {"sunny", "dusk", "night", "snow", "fog", "desert"} <= set(STYLES)
    palettes = {(s.sky_zenith, s.ground_colours, s.fog_density) for s in STYLES.values()}
    assert len(palettes) == len(STYLES)
    for style in STYLES.values():
        assert np.isclose(np.linalg.norm(style.sun_direction), 1.0)
    assert STYLES["fog"].fog_density > 5 * STYLES["sunny"].fog_density
    assert min(STYLES["snow"].ground_colours[0]) > 0.8
    assert STYLES["dusk"].sun_direction[2] < 0.3
    assert max(STYLES["night"].sky_zenith) < 0.1


def test_get_style_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"unknown style 'lava'; expected one of \["):
        get_style("lava")


# ---------------------------------------------------------------------------------------------- scenes


def test_generate_scene_is_deterministic():
    a, b = generate_scene(123), generate_scene(123)
    assert a == b
    assert a.caption == b.caption and np.array_equal(a.ground_noise, b.ground_noise)
    assert generate_scene(123, "snow") == generate_scene(123, "snow")
    assert generate_scene(124) != a


def test_style_does_not_change_the_layout():
    a, b = generate_scene(9, "sunny"), generate_scene(9, "night")
    assert a.objects == b.objects and a.style.name == "sunny" and b.style.name == "night"


def test_generate_scene_validates_arguments():
    with pytest.raises(ValueError, match="unknown style"):
        generate_scene(0, style="lava")
    for bad in (0, 201, -5):
        with pytest.raises(ValueError, match=rf"num_objects must be in \[1, 200\], got {bad}"):
            generate_scene(0, num_objects=bad)
    assert len(generate_scene(0, num_objects=1).objects) == 1
    assert len(generate_scene(0, num_objects=200).objects) == 200


@pytest.mark.parametrize("seed", range(12))
def test_scene_invariants(seed):
    scene = generate_scene(seed)
    objects = scene.objects
    assert 20 <= len(objects) <= 100
    assert scene.style.name in STYLES
    for o in objects:
        assert o.kind in KINDS and o.colour in COLOURS and o.texture in TEXTURES
        assert np.isclose(o.center[2], o.half_extents[2])  # resting on the ground
        assert np.hypot(*o.center[:2]) <= WORLD_RADIUS + 1e-9
        w, h = 2 * o.half_extents[0], 2 * o.half_extents[2]
        if o.kind == "pillar":
            assert o.half_extents[0] == o.half_extents[1] and 0.4 <= w <= 1.0 and 3.0 <= h <= 8.0
        elif o.kind == "box":
            assert np.all((0.5 <= 2 * o.half_extents) & (2 * o.half_extents <= 2.5))
        elif o.kind == "sphere":
            assert 0.4 <= o.half_extents[0] <= 1.5 and o.yaw == 0.0
        else:
            assert 0.3 <= o.half_extents[0] <= 1.0 and 0.5 <= h <= 3.0 and o.yaw == 0.0

    # The landmark's (colour, kind) is unique and it stands 8-20 m away.
    goal = objects[scene.landmark]
    assert sum((o.colour, o.kind) == (goal.colour, goal.kind) for o in objects) == 1
    assert 8.0 <= np.hypot(*goal.center[:2]) <= 20.0
    assert scene.caption.startswith(f"{scene.style.phrase} with a") and goal.name in scene.caption

    # Nothing within 4 m of the spawn point, and no two objects overlap.
    column = np.stack([np.zeros(50), np.zeros(50), np.linspace(0.0, 9.0, 50)], -1)
    assert scene.signed_distance(column)[0].min() >= 4.0 - 1e-9
    centres = np.array([o.center[:2] for o in objects])
    radii = np.array([o.footprint_radius for o in objects])
    gaps = np.hypot(*(centres[:, None] - centres[None]).transpose(2, 0, 1)) - radii[:, None] - radii[None]
    np.fill_diagonal(gaps, np.inf)
    assert gaps.min() > 0.0


def test_captions_use_only_the_vocabulary():
    for seed in range(60):
        for style in (None, "snow", "dusk"):
            scene = generate_scene(seed, style, num_objects=None if seed % 3 else 1 + 3 * seed)
            words = caption_words(scene.caption)
            assert set(words) <= CAPTION_VOCABULARY, scene.caption
            assert scene.caption == scene.caption.strip() and "  " not in scene.caption


def test_caption_names_landmark_then_largest_groups():
    objects = [_box([10, 0, 1], [1, 1, 1], kind="pillar")]  # blue pillar: the landmark
    objects += [_sphere([20, 3 * i, 1], 1, "red") for i in range(3)]
    objects += [SceneObject("box", "green", "plain", np.array([-20.0, 3 * i, 1]), np.ones(3)) for i in range(2)]
    objects += [_sphere([30, 0, 1], 1, "orange")]
    from lv2_env.worlds.scene import make_caption

    caption = make_caption(get_style("snow"), tuple(objects), 0)
    assert caption == "a snowy field with a blue pillar, three red spheres and two green boxes"
    assert make_caption(get_style("snow"), tuple(objects[:2]), 0) == "a snowy field with a blue pillar and a red sphere"
    objects[0] = SceneObject("pillar", "orange", "plain", np.array([10.0, 0, 4]), np.array([0.3, 0.3, 4]))
    assert make_caption(get_style("fog"), tuple(objects[:1]), 0) == "a foggy field with an orange pillar"


# ---------------------------------------------------------------------------------------------- signed distance


def test_signed_distance_known_points():
    scene = Scene(
        seed=0,
        style=get_style("sunny"),
        objects=(
            _sphere([10, 0, 1], 1.0),
            _box([0, 10, 1], [1, 2, 1], yaw=np.pi / 2),  # after the yaw: 4 m along x, 2 m along y
            _cylinder([-10, 0, 1.5], 0.5, 1.5),
        ),
        landmark=0,
        caption="test",
    )
    points = np.array(
        [
            [13, 0, 1],  # 2 m outside the sphere
            [10, 0, 1],  # sphere centre: -1
            [0, 10, 5],  # 3 m above the box top (z = 2)
            [3, 10, 1],  # 1 m beyond the box's (rotated) x face at 2
            [3, 12, 3],  # beyond a corner edge: (1, 1, 1) away from the corner
            [-10, 0, 2.0],  # inside the cylinder, 0.5 m from its side
            [-10, 3, 1.5],  # 2.5 m from the cylinder side
            [-10, 0, 5],  # 2 m above the cap
        ],
        dtype=float,
    )
    dist, index = scene.signed_distance(points)
    np.testing.assert_allclose(dist, [2, -1, 3, 1, np.sqrt(3), -0.5, 2.5, 2], atol=1e-12)
    np.testing.assert_array_equal(index, [0, 0, 1, 1, 1, 2, 2, 2])


def test_signed_distance_matches_brute_force_on_a_generated_scene():
    scene = generate_scene(3, num_objects=30)
    rng = np.random.default_rng(0)
    points = rng.uniform([-30, -30, 0], [30, 30, 5], size=(500, 3))
    dist, index = scene.signed_distance(points, chunk=64)
    for k in range(0, 500, 50):
        single = [Scene(0, scene.style, (o,), 0, "x").signed_distance(points[k : k + 1])[0][0] for o in scene.objects]
        assert np.isclose(dist[k], min(single)) and index[k] == int(np.argmin(single))


def test_signed_distance_with_no_objects():
    scene = Scene(seed=0, style=get_style("sunny"), objects=(), landmark=0, caption="empty")
    dist, index = scene.signed_distance(np.zeros((2, 3)))
    assert np.all(np.isinf(dist)) and np.all(index == -1)


# ---------------------------------------------------------------------------------------------- rendering


def test_render_output_shapes_and_types():
    scene = generate_scene(1, num_objects=40)
    out = Renderer(scene, SMALL).render(_clip(3))
    assert out.rgb.shape == (3, 32, 48, 3) and out.rgb.dtype == np.uint8
    assert out.depth.shape == (3, 32, 48) and out.depth.dtype == np.float32
    assert out.points.shape == (3, 32, 48, 3) and out.points.dtype == np.float32
    assert out.object_id.shape == (3, 32, 48) and out.object_id.dtype == np.int16
    assert np.all(out.depth > 0) and np.all(out.depth <= scene.far)
    assert out.object_id.min() >= -1 and out.object_id.max() <= len(scene.objects)
    with pytest.raises(ValueError, match=r"expected camera-to-world poses of shape \[F, 4, 4\], got \(4, 4\)"):
        Renderer(scene, SMALL).render(np.eye(4))


def test_render_is_deterministic():
    poses = _clip(4)
    a = Renderer(generate_scene(7), SMALL).render(poses)
    b = Renderer(generate_scene(7), SMALL).render(poses)
    for field in ("rgb", "depth", "points", "object_id"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field


def test_chunking_does_not_change_the_output():
    scene, poses = generate_scene(2), _clip(3)
    a = Renderer(scene, SMALL).render(poses)
    b = Renderer(scene, SMALL, chunk_rays=500, tile=5).render(poses)  # bands of rows, ragged tiles
    for field in ("rgb", "depth", "points", "object_id"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field


def test_geometry_without_shading_is_the_same_geometry():
    scene, poses = generate_scene(2), _clip(3)
    shaded, unshaded = Renderer(scene, SMALL).render(poses), Renderer(scene, SMALL).render(poses, shade=False)
    assert unshaded.rgb is None
    for field in ("depth", "points", "object_id"):
        assert np.array_equal(getattr(shaded, field), getattr(unshaded, field)), field


def test_each_style_renders_differently():
    pose = pose_from_state([0, 0, 1.6, 0.3, 0.0, 0.0])[None]
    frames = {name: Renderer(generate_scene(4, name), SMALL).render(pose).rgb[0].astype(int) for name in STYLES}
    names = list(frames)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert np.abs(frames[a] - frames[b]).mean() > 8, (a, b)
    brightness = {name: frame.mean() for name, frame in frames.items()}
    assert brightness["night"] < min(v for k, v in brightness.items() if k != "night")
    assert brightness["snow"] > brightness["sunny"]


def test_sky_and_ground_pixels():
    scene = Scene(seed=0, style=get_style("sunny"), objects=(), landmark=0, caption="empty")
    intr = _odd_camera()
    out = Renderer(scene, intr).render(pose_from_state([0, 0, 2.0, 0, 0, 0])[None])
    c = intr.height // 2
    assert np.all(out.object_id[0, :c] == -1) and np.all(out.depth[0, :c] == scene.far)
    assert np.all(out.object_id[0, c + 1 :] == 0)
    rays = intr.pixel_rays()
    expected_sky = np.array([0, 0, 2.0]) + scene.far * (rays[:c] @ pose_from_state([0, 0, 2.0, 0, 0, 0])[:3, :3].T)
    np.testing.assert_allclose(out.points[0, :c], expected_sky, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("height,pitch", [(1.6, -0.4), (5.0, -0.9), (0.5, -0.1)])
def test_ground_depth_matches_analytic(height, pitch):
    scene = Scene(seed=0, style=get_style("desert"), objects=(), landmark=0, caption="empty")
    intr = _odd_camera()
    pose = pose_from_state([3.0, -2.0, height, 0.7, pitch, 0.0])
    out = Renderer(scene, intr).render(pose[None])
    # Camera ray (x, y, 1) reaches z = 0 at t = height / -(R @ ray)_z; that t is the camera depth.
    rays = intr.pixel_rays()  # [H, W, 3]
    down = -(rays @ pose[:3, :3].T)[..., 2]
    expected = np.where(down > 0, height / np.where(down > 0, down, 1), np.inf)
    ground = (expected <= scene.far)
    assert ground.sum() > 50
    np.testing.assert_allclose(out.depth[0][ground], expected[ground], rtol=1e-5, atol=1e-4)
    assert np.all(out.object_id[0][ground] == 0) and np.all(out.object_id[0][~ground] == -1)
    assert np.allclose(out.points[0][ground][:, 2], 0.0, atol=1e-3)
    c = intr.height // 2
    assert abs(out.depth[0, c, c] - height / np.sin(-pitch)) < 1e-3


@pytest.mark.parametrize(
    "obj,expected",
    [
        (_sphere([0, 10, 1.6], 1.0), 9.0),
        (_box([0, 8, 1.6], [1.0, 0.5, 1.6]), 7.5),
        (_box([0, 8, 1.6], [0.5, 0.5, 1.6], yaw=np.pi / 4), 8 - 0.5 * np.sqrt(2)),  # a vertical edge faces us
        (_box([0, 12, 4.0], [0.4, 0.4, 4.0], kind="pillar"), 11.6),
        (_cylinder([0, 6, 1.6], 0.7, 1.6), 5.3),
    ],
)
def test_object_depth_points_and_id_are_exact(obj, expected):
    intr = _odd_camera()
    scene = _single(obj)
    pose = pose_from_state([0, 0, 1.6, 0, 0, 0])  # looking along +y at eye height
    out = Renderer(scene, intr).render(pose[None])
    c = intr.height // 2
    assert abs(out.depth[0, c, c] - expected) < 1e-3
    assert out.object_id[0, c, c] == 1
    np.testing.assert_allclose(out.points[0, c, c], [0, expected, 1.6], atol=1e-3)

    # Every hit's world point lies on the surface and projects back onto its own pixel centre.
    hit = out.object_id[0] == 1
    assert hit.sum() > 10
    dist, _ = scene.signed_distance(out.points[0][hit].astype(np.float64))
    assert np.abs(dist).max() < 2e-3
    uv, z = project(out.points[0].astype(np.float64), pose, intr)
    rows, cols = np.mgrid[: intr.height, : intr.width]
    centres = np.stack([cols + 0.5, rows + 0.5], -1)
    assert np.abs(uv - centres).max() < 1e-2
    np.testing.assert_allclose(z, out.depth[0], rtol=1e-5)


def test_camera_looking_down_at_a_cylinder_cap():
    intr = _odd_camera()
    scene = _single(_cylinder([2, 3, 1.0], 0.8, 1.0))
    out = Renderer(scene, intr).render(pose_from_state([2, 3, 6.0, 0.4, -np.pi / 2, 0])[None])
    c = intr.height // 2
    assert out.object_id[0, c, c] == 1 and abs(out.depth[0, c, c] - 4.0) < 1e-3


def test_nearest_object_wins_and_ids_index_objects():
    intr = _odd_camera()
    near, far_sphere = _sphere([0, 6, 1.6], 0.5, "blue"), _sphere([0, 12, 1.6], 3.0, "red")
    scene = Scene(seed=0, style=get_style("sunny"), objects=(far_sphere, near), landmark=0, caption="test")
    out = Renderer(scene, intr).render(pose_from_state([0, 0, 1.6, 0, 0, 0])[None])
    c = intr.height // 2
    assert out.object_id[0, c, c] == 2 and abs(out.depth[0, c, c] - 5.5) < 1e-3
    assert out.object_id[0, c, c - 5] == 1  # beside the small sphere: the big one behind it
    ids = set(np.unique(out.object_id[0]).tolist())
    assert ids == {-1, 0, 1, 2}


def test_object_colour_and_lighting():
    intr = _odd_camera()
    pose = pose_from_state([0, 0, 1.6, 0, 0, 0])[None]
    red = Renderer(_single(_sphere([0, 5, 1.6], 1.0, "red")), intr).render(pose).rgb[0, 16, 16].astype(int)
    blue = Renderer(_single(_sphere([0, 5, 1.6], 1.0, "blue")), intr).render(pose).rgb[0, 16, 16].astype(int)
    assert red[0] > red[2] + 60 and blue[2] > blue[0] + 60
    night = Renderer(_single(_sphere([0, 5, 1.6], 1.0, "red"), "night"), intr).render(pose).rgb[0, 16, 16]
    assert 15 < night.max() < red.max()  # darker, still visible


def test_renderer_handles_no_frames_and_many_frames():
    scene = generate_scene(5, num_objects=20)
    renderer = Renderer(scene, SMALL)
    assert renderer.render(np.zeros((0, 4, 4))).rgb.shape == (0, 32, 48, 3)
    out = renderer.render(_clip(17))
    assert out.rgb.shape[0] == 17
