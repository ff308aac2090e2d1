"""Metrics, the two model-free baselines, clip evaluation, pictures and the evaluation command."""

import json
import math

import numpy as np
import pytest

from lv2_env.signals.camera import Intrinsics, pose_from_state, poses_from_states
from agents.cli import main as lv2_main
from lv2_env.evaluation.clips import evaluate_clips, markdown_table, plot_per_frame_psnr, repeat_first_frame, spread_indices
from lv2_env.evaluation.report import picture_grid, write_report
from lv2_env.conditioning.warp import warp_first_frame
from model.metrics import SSIM_K1, SSIM_K2, _gaussian_window, psnr, sharpness_ratio, ssim
from lv2_env.worlds import Renderer, generate_scene

SIZE = 64
INTRINSICS = Intrinsics.from_fov(70, SIZE, SIZE)


def render_clip(states: np.ndarray, seed: int = 7) -> dict:
    """A clip dict as a clip file stores it (float16 depth, float32 poses), rendered from a procedural world."""
    poses = poses_from_states(states)
    out = Renderer(generate_scene(seed), INTRINSICS).render(poses)
    return {
        "rgb": out.rgb,
        "depth": out.depth.astype(np.float16),
        "poses": poses.astype(np.float32),
        "intrinsics": INTRINSICS.matrix.astype(np.float32),
        "caption": "test",
    }


def still_states(frames: int = 17, yaw: float = 0.4) -> np.ndarray:
    states = np.zeros((frames, 6))
    states[:, 2] = 1.6
    states[:, 3] = yaw
    return states


@pytest.fixture(scope="module")
def moving_clip() -> dict:
    """A sideways move (1 m over 8 frames), then a turn to the left (0.4 rad over 8 frames)."""
    states = still_states()
    right = np.array([np.cos(0.4), np.sin(0.4)])  # the heading's right vector at yaw 0.4
    steps = np.concatenate([np.linspace(0.0, 1.0, 9), np.full(8, 1.0)])
    states[:, :2] = steps[:, None] * right
    states[:, 3] += np.concatenate([np.zeros(9), np.linspace(0.0, 0.4, 9)[1:]])
    return render_clip(states)


@pytest.fixture(scope="module")
def turning_clip() -> dict:
    """Pure rotation: the camera turns left and looks a little down, without moving."""
    states = still_states(frames=9)
    states[:, 3] += np.linspace(0.0, 0.2, 9)
    states[:, 4] = np.linspace(0.0, -0.08, 9)
    return render_clip(states, seed=11)


# ------------------------------------------------------------------------------------------------ metrics


def test_psnr_identical_known_mse_and_masks():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 246, (3, 16, 20, 3), dtype=np.uint8)
    assert psnr(a, a) == math.inf
    b = a + np.uint8(10)  # every error 10: MSE 100
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-12)

    # Errors only outside the mask: the masked PSNR sees identical pixels, the complement sees MSE 100.
    mask = np.zeros((3, 16, 20), bool)
    mask[:, :8] = True
    c = np.where(mask[..., None], a, b)
    assert psnr(a, c, mask) == math.inf
    assert psnr(a, c, ~mask) == pytest.approx(psnr(a, b), abs=1e-12)
    assert psnr(a, c, mask[0]) == math.inf  # an [H, W] mask applies to every frame
    one_pixel = np.zeros((3, 16, 20), bool)
    one_pixel[1, 2, 3] = True
    d = a.copy()
    d[1, 2, 3] = a[1, 2, 3] + np.uint8([3, 0, 0])  # MSE over the pixel's 3 channels: 9 / 3
    assert psnr(a, d, one_pixel) == pytest.approx(10 * math.log10(255**2 / 3.0), abs=1e-12)
    assert math.isnan(psnr(a, b, np.zeros((16, 20), bool)))

    with pytest.raises(ValueError, match="uint8"):
        psnr(a.astype(np.float32) / 255, a.astype(np.float32) / 255)
    with pytest.raises(ValueError, match="one shape"):
        psnr(a, a[:2])
    with pytest.raises(ValueError, match="mask must be shaped"):
        psnr(a, b, np.ones((16, 21), bool))


def reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Straight from the definition: loop over every 11x11 window of every frame and channel."""
    window = np.outer(_gaussian_window(), _gaussian_window())
    c1, c2 = (SSIM_K1 * 255) ** 2, (SSIM_K2 * 255) ** 2
    values = []
    for x_frame, y_frame in zip(a.reshape(-1, *a.shape[-3:]), b.reshape(-1, *b.shape[-3:])):
        for ch in range(3):
            x, y = x_frame[..., ch].astype(np.float64), y_frame[..., ch].astype(np.float64)
            for i in range(x.shape[0] - 10):
                for j in range(x.shape[1] - 10):
                    px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
                    mx, my = (window * px).sum(), (window * py).sum()
                    vx, vy = (window * (px - mx) ** 2).sum(), (window * (py - my) ** 2).sum()
                    cov = (window * (px - mx) * (py - my)).sum()
                    values.append(((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def test_masked_ssim_and_sharpness_score_only_the_masked_region():
    """The model-only measures: a noisy block in otherwise exact frames scores badly on the block, perfectly off
    it; a region thinner than SSIM's window has no window of its own (NaN), not the score of its surroundings."""
    rng = np.random.default_rng(0)
    truth = np.repeat(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], 64, axis=0)[None].repeat(3, -1)
    truth = np.concatenate([truth, truth[:, ::-1]])  # [2, 64, 64, 3] smooth gradients
    frames = truth.copy()
    frames[:, 16:48, 16:48] = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    block = np.zeros((64, 64), bool)
    block[16:48, 16:48] = True
    assert ssim(frames, truth, block) < 0.2 and ssim(frames, truth, ~block) > 0.7  # windows near the block: < 1
    assert ssim(frames, truth, np.ones((2, 64, 64), bool)) == pytest.approx(ssim(frames, truth))
    assert sharpness_ratio(frames, truth, block) > 10 and sharpness_ratio(frames, truth, ~block) == pytest.approx(1.0)
    assert psnr(frames, truth, block) < 12 and psnr(frames, truth, ~block) == math.inf
    thin = np.zeros((64, 64), bool)
    thin[:, 30:32] = True
    assert math.isnan(ssim(frames, truth, thin)) and math.isnan(ssim(frames, truth, np.zeros((64, 64), bool)))
    with pytest.raises(ValueError, match="mask must be boolean"):
        sharpness_ratio(frames, truth, block.astype(np.uint8))


def test_ssim_identical_and_against_the_slow_reference():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (2, 19, 23, 3), dtype=np.uint8)
    assert ssim(a, a) == 1.0
    # A smooth image and a noisy, shifted copy give an SSIM well inside (0, 1); pure noise gives ~0.
    yy, xx = np.mgrid[0:19, 0:23]
    smooth = (127 + 100 * np.sin(xx / 4.0)[..., None] * np.cos(yy[..., None] / 5.0 + np.arange(3))).astype(np.uint8)
    smooth = np.stack([smooth, np.roll(smooth, 2, axis=1)])
    noisy = np.clip(smooth.astype(int) + rng.integers(-40, 41, smooth.shape), 0, 255).astype(np.uint8)
    for x, y in ((a, rng.integers(0, 256, a.shape, dtype=np.uint8)), (smooth, noisy), (smooth[0], noisy[0])):
        assert ssim(x, y) == pytest.approx(reference_ssim(x, y), abs=1e-4)
    assert 0.3 < ssim(smooth, noisy) < 0.95
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(a[:, :10], a[:, :10])


# ------------------------------------------------------------------------------------------------ baselines


def test_repeat_first_frame():
    rgb = np.random.default_rng(2).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    repeated = repeat_first_frame(rgb)
    assert repeated.shape == rgb.shape and np.array_equal(repeated[3], rgb[0]) and np.array_equal(repeated[0], rgb[0])


def test_warp_with_identity_motion_reproduces_frame_zero():
    rng = np.random.default_rng(3)
    rgb0 = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    depth0 = rng.uniform(0.5, 40.0, (SIZE, SIZE))
    depth0[:10] = 150.0  # sky rows: directions at infinity
    for pose in (np.eye(4), pose_from_state([3.0, -2.0, 1.6, 0.7, 0.1, 0.05])):
        poses = np.repeat(pose[None], 4, axis=0)
        frames, covered = warp_first_frame(rgb0, depth0, poses, INTRINSICS.matrix)
        assert covered.all()
        assert all(np.array_equal(f, rgb0) for f in frames)
    with pytest.raises(ValueError, match="depth0 must be"):
        warp_first_frame(rgb0, depth0[1:], poses, INTRINSICS)


def test_warp_beats_repeat_on_covered_pixels(moving_clip):
    rgb = moving_clip["rgb"]
    frames, covered = warp_first_frame(rgb[0], moving_clip["depth"][0], moving_clip["poses"], moving_clip["intrinsics"])
    assert np.array_equal(frames[0], rgb[0]) and covered[0].all()
    revealed = ~covered[1:]
    assert 0.01 < revealed.mean() < 0.4  # the move and the turn reveal something, not everything
    assert (frames[1:][revealed] == 0).all()  # revealed pixels are black
    warp_psnr = psnr(frames[1:], rgb[1:], covered[1:])
    repeat_psnr = psnr(repeat_first_frame(rgb)[1:], rgb[1:], covered[1:])
    # Resampling a point-sampled (aliased) render costs every edge, so the warp stays near 29 dB; repeat ~22 dB.
    assert warp_psnr > repeat_psnr + 5.0, (warp_psnr, repeat_psnr)
    assert warp_psnr > 26.0


def test_walking_towards_an_object_magnifies_without_holes():
    """2.5 m straight at a cylinder ~5 m away magnifies it ~2x: the splat must close the gaps (nothing revealed
    inside it) and keep the sky behind from shining through."""
    states = still_states()
    states[:, :2] = np.linspace(0.0, 2.5, 17)[:, None] * np.array([-np.sin(0.4), np.cos(0.4)])  # heading at yaw 0.4
    clip = render_clip(states, seed=11)
    frames, covered = warp_first_frame(clip["rgb"][0], clip["depth"][0], clip["poses"], clip["intrinsics"])
    near = clip["depth"][1:].astype(np.float64) < 8.0  # the cylinder and the ground close by
    assert near.mean() > 0.3
    assert (~covered[1:]).mean() < 0.02 and (~covered[1:][near]).mean() < 0.01
    warp_psnr = psnr(frames[1:], clip["rgb"][1:], near)
    assert warp_psnr > psnr(repeat_first_frame(clip["rgb"])[1:], clip["rgb"][1:], near) + 8.0
    assert warp_psnr > 24.0


def test_pure_rotation_leaves_only_border_pixels_uncovered(turning_clip):
    """Without translation there is no parallax: a pixel whose ray lands inside frame 0 must be covered."""
    poses = turning_clip["poses"].astype(np.float64)
    _, covered = warp_first_frame(turning_clip["rgb"][0], turning_clip["depth"][0], poses, INTRINSICS)
    rays = INTRINSICS.pixel_rays()  # [H, W, 3] camera frame of frame f
    for f in range(1, len(poses)):
        in_frame0 = rays @ (poses[0][:3, :3].T @ poses[f][:3, :3]).T  # the same rays in frame 0's camera
        u = INTRINSICS.fx * in_frame0[..., 0] / in_frame0[..., 2] + INTRINSICS.cx
        v = INTRINSICS.fy * in_frame0[..., 1] / in_frame0[..., 2] + INTRINSICS.cy
        inside = (in_frame0[..., 2] > 0) & (u >= 1) & (u <= SIZE - 1) & (v >= 1) & (v <= SIZE - 1)
        assert covered[f][inside].all(), f"frame {f}: {(~covered[f] & inside).sum()} inner pixels uncovered"
        assert not covered[f][u < -1.0].any()  # what frame 0 never saw is uncovered (the fill may smooth 1 pixel)
    assert (~covered[-1]).mean() > 0.05  # the turn does reveal a band on the left


# ------------------------------------------------------------------------------------------------ evaluation


def test_evaluate_clips_with_an_oracle_and_with_repeat(moving_clip, turning_clip, tmp_path):
    clips = [moving_clip, turning_clip]
    oracle = evaluate_clips(lambda clip: clip["rgb"], clips, names=["moving", "turning"])
    assert [c["name"] for c in oracle["clips"]] == ["moving", "turning"]
    for clip_report, clip in zip(oracle["clips"], clips):
        assert clip_report["model"]["psnr"] == math.inf and clip_report["model"]["ssim"] == 1.0
        assert len(clip_report["model"]["psnr_per_frame"]) == len(clip["rgb"]) - 1
        assert clip_report["warp"]["psnr_covered"] > clip_report["repeat"]["psnr_covered"]
        assert clip_report["warp"]["psnr_revealed"] < clip_report["warp"]["psnr_covered"]  # black there
        assert 0 < clip_report["revealed_fraction"] < 0.5
    assert oracle["summary"] == {"clips": 2, "beats_repeat_on_every_clip": True, "beats_warp_on_revealed": True}
    assert len(oracle["mean"]["warp"]["psnr_per_frame"]) == 16  # the longer clip's frames 1..16
    assert json.loads(json.dumps(oracle))["summary"]["beats_warp_on_revealed"] is True
    strict = json.loads((write_report(oracle, tmp_path / "report.json")).read_text())  # strict JSON: inf -> null
    assert strict["clips"][0]["model"]["psnr"] is None
    assert strict["clips"][0]["warp"]["psnr"] == pytest.approx(oracle["clips"][0]["warp"]["psnr"])

    repeat = evaluate_clips(lambda clip: repeat_first_frame(clip["rgb"]), clips)
    for clip_report in repeat["clips"]:
        assert clip_report["model"] == clip_report["repeat"]
    assert repeat["mean"]["model"] == repeat["mean"]["repeat"]
    assert repeat["summary"]["beats_repeat_on_every_clip"] is False
    json.dumps(repeat)
    assert "| warp |" in markdown_table(repeat)

    with pytest.raises(ValueError, match=r"generate must return uint8 \(17, 64, 64, 3\)"):
        evaluate_clips(lambda clip: clip["rgb"][:-1], [moving_clip])

    picture = picture_grid(
        [("moving\ntruth", moving_clip["rgb"]), ("moving\nrepeat", repeat_first_frame(moving_clip["rgb"])),
         ("moving\nwarp", warp_first_frame(moving_clip["rgb"][0], moving_clip["depth"][0], moving_clip["poses"],
                                           moving_clip["intrinsics"])[0]),
         ("turning\ntruth", turning_clip["rgb"])],
        path=tmp_path / "grid.png", title="truth / repeat / warp",
    )
    plot = plot_per_frame_psnr(repeat, tmp_path / "psnr.png")
    grid_image = _decoded_png(picture)
    assert grid_image.shape[:2] == (round((0.3 + 0.3 + 1.5 * 4 + 0.05) * 110), round((1.3 + 1.5 * 3) * 110))
    assert (grid_image < 240).any(axis=-1).mean() > 0.5  # 12 frames drawn, not a blank figure
    _assert_lines_drawn(plot, ("repeat", "warp"))  # the model's line is the repeat's here, drawn under it


def _decoded_png(path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def _assert_lines_drawn(path, methods) -> None:
    """The per-frame PSNR plot has a line of each method's colour (matplotlib's C0, C1, C2, as the plot styles them)."""
    image = _decoded_png(path).astype(int)
    colours = {"model": (0x1F, 0x77, 0xB4), "repeat": (0xFF, 0x7F, 0x0E), "warp": (0x2C, 0xA0, 0x2C)}
    for method in methods:
        near = (np.abs(image - np.array(colours[method])).sum(axis=-1) < 30).sum()
        assert near > 50, f"no {method} line ({near} pixels of its colour) in {path}"


def test_spread_indices():
    assert spread_indices(8, 3) == [0, 4, 7]  # rounding 3.5 half to even
    assert spread_indices(3, 8) == [0, 1, 2]
    with pytest.raises(ValueError):
        spread_indices(0, 2)


def test_command_line_on_a_tiny_checkpoint(tmp_path, capsys):
    """The whole command: a tiny untrained checkpoint for 64x64 clips of 9 frames, two test-split clips; clips of
    the validation split are refused under the default --split test, and scored under --split validation."""
    from lv2_env.data.procedural import SequenceSpec, build_procedural
    from model.checkpoint import build_from_preset, save_checkpoint
    from lv2_env.worlds import CAPTION_VOCABULARY

    spec = SequenceSpec(64, 64, 9, clips_per_sequence=2, history_frames=4)
    data = build_procedural(tmp_path / "test", "test", 1, spec, progress=False)
    validation = build_procedural(tmp_path / "eval", "validation", 1, spec, progress=False)
    checkpoint = tmp_path / "ckpt"
    save_checkpoint(build_from_preset("tiny", vocabulary=list(CAPTION_VOCABULARY), seed=0), checkpoint)
    meta = json.loads((checkpoint / "lv2.json").read_text())
    meta.update(height=64, width=64, frames=9, sampling={"steps": 1, "shift": 3.0, "guidance_scale": 1.0})
    (checkpoint / "lv2.json").write_text(json.dumps(meta))

    out = tmp_path / "out"
    assert lv2_main(["eval", "--checkpoint", str(checkpoint), "--data", str(data), "--clips", "2", "--out", str(out),
                 "--precision", "fp32"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["clips"] == 2 and report["settings"]["history_latent_frames"] == 0
    assert report["settings"]["split"] == "test"
    assert all(len(c["model"]["psnr_per_frame"]) == 8 for c in report["clips"])
    own = report["mean"]["model"]  # the model-only measures: its own drawing, where frame 0 saw nothing
    assert np.isfinite(own["psnr_revealed"]) and np.isfinite(own["sharpness_revealed"]), own
    assert own["psnr_revealed"] < 30  # an untrained model draws noise where nothing was seen
    assert "ssim_revealed" in own  # None here: 3% of 64x64 pixels, no SSIM window mostly revealed
    assert (_decoded_png(out / "grid.png") < 240).any(axis=-1).mean() > 0.3  # frames drawn, not a blank figure
    _assert_lines_drawn(out / "psnr_per_frame.png", ("model", "repeat", "warp"))
    printed = capsys.readouterr().out
    assert "| model |" in printed and "| repeat |" in printed and "| warp |" in printed and "(test)" in printed

    argv = ["eval", "--checkpoint", str(checkpoint), "--data", str(validation), "--clips", "1", "--out", str(out),
            "--precision", "fp32"]
    assert lv2_main(argv) == 2
    assert "validation split" in capsys.readouterr().err
    assert lv2_main(argv + ["--split", "validation"]) == 0
    assert json.loads((out / "report.json").read_text())["settings"]["split"] == "validation"
