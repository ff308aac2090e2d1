"""Checkpoint directories and the offline `lv2 generate` command."""

import json
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from lv2_env.offline import clip_starts, read_prompts
from lv2_env.media.video import Mp4Writer, probe_video, read_video
from model.checkpoint import build_from_preset, load_checkpoint, save_checkpoint
from model.pipeline import SamplingOptions

VOCABULARY = ["a", "field", "snowy", "red", "pillar"]


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    """The tiny preset's architecture, recorded for 64x64 clips of 9 frames so the tests run fast, with Wan's
    first-frame conditioning (what offline generation from control videos works with)."""
    directory = tmp_path_factory.mktemp("ckpt")
    save_checkpoint(build_from_preset("tiny", vocabulary=VOCABULARY, seed=0), directory)
    meta = json.loads((directory / "lv2.json").read_text())
    meta.update(height=64, width=64, frames=9, sampling={"steps": 2, "shift": 3.0, "guidance_scale": 1.0})
    meta["preset_config"]["condition"] = "first_frame"
    (directory / "lv2.json").write_text(json.dumps(meta))
    return directory


def test_save_and_load_round_trip(small_checkpoint):
    loaded = load_checkpoint(small_checkpoint, expect_preset="tiny")
    fresh = build_from_preset("tiny", vocabulary=VOCABULARY, seed=0)
    for a, b in zip(fresh.transformer.state_dict().values(), loaded.transformer.state_dict().values()):
        assert torch.equal(a, b)
    assert loaded.preset.frames == 9 and loaded.preset.height == 64
    assert list(loaded.text_encoder.vocabulary) == sorted(VOCABULARY) or set(VOCABULARY) <= set(loaded.text_encoder.vocabulary)
    for name in ("transformer", "vae", "text_encoder"):
        assert any(p.suffix == ".safetensors" for p in (small_checkpoint / name).iterdir())
        assert (small_checkpoint / name / "config.json").is_file()

    rng = np.random.default_rng(0)
    first = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    controls = {m: rng.integers(0, 255, (9, 64, 64, 3), dtype=np.uint8) for m in ("dense", "sparse")}
    clips = []
    for ckpt in (loaded, load_checkpoint(small_checkpoint)):
        generator = ckpt.generator(options=SamplingOptions(steps=2), seed=3)
        generator.reset(first)
        clips.append(generator.generate_clip(controls, "a snowy field"))
    assert np.array_equal(clips[0], clips[1])


def test_checkpoint_of_another_preset_is_refused(small_checkpoint, tmp_path):
    with pytest.raises(ValueError, match="is of preset 'tiny', but preset 'wan2.1-i2v-14b-480p' was asked for"):
        load_checkpoint(small_checkpoint, expect_preset="wan2.1-i2v-14b-480p")
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(tmp_path / "nothing")
    with pytest.raises(ValueError, match="expected lv2.json"):
        load_checkpoint(tmp_path)


def test_clip_starts_and_prompts(tmp_path):
    assert clip_starts(33, 17) == [0, 16]
    assert clip_starts(40, 17) == [0, 16]
    with pytest.raises(ValueError, match="one clip needs 17"):
        clip_starts(10, 17)
    (tmp_path / "p.txt").write_text("first\n\nsecond\n")
    assert read_prompts(None, tmp_path / "p.txt", 3) == ["first", "second", "second"]
    assert read_prompts("x", None, 2) == ["x", "x"]


def _generate_command(checkpoint, tmp_path, out) -> list[str]:
    """``lv2 generate`` on two clips of 9 frames sharing one, with a start image that needs resizing."""
    rng = np.random.default_rng(0)
    for name in ("depth", "tracks"):
        with Mp4Writer(tmp_path / f"{name}.mp4") as writer:
            writer.write(rng.integers(0, 255, (17, 64, 64, 3), dtype=np.uint8))  # two clips of 9 sharing a frame
    iio.imwrite(tmp_path / "first.png", rng.integers(0, 255, (80, 96, 3), dtype=np.uint8))  # resized, with a warning
    (tmp_path / "prompts.txt").write_text("a field\na snowy field\n")
    return [sys.executable, "-m", "agents.cli", "generate", "--checkpoint", str(checkpoint),
            "--first-frame", str(tmp_path / "first.png"), "--depth", str(tmp_path / "depth.mp4"),
            "--tracks", str(tmp_path / "tracks.mp4"), "--prompts", str(tmp_path / "prompts.txt"), "--out", str(out),
            "--quiet"]


def test_cli_generate(small_checkpoint, tmp_path):
    out = tmp_path / "gen.mp4"
    cmd = _generate_command(small_checkpoint, tmp_path, out)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resized" in done.stderr
    assert probe_video(out)["frames"] == 17 and read_video(out).shape == (17, 64, 64, 3)

    bad = subprocess.run(cmd[:-3] + ["--out", str(tmp_path / "x.mp4"), "--depth", str(tmp_path / "first.png")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0


def test_cli_generate_refuses_a_rendered_conditioning_model(world_checkpoint, tmp_path):
    cmd = [sys.executable, "-m", "agents.cli", "generate", "--checkpoint", str(world_checkpoint), "--first-frame", "x.png",
           "--depth", "d.mp4", "--tracks", "t.mp4", "--prompt", "a field", "--out", str(tmp_path / "x.mp4")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "rollout --env world" in done.stderr and "Traceback" not in done.stderr


def test_cli_generate_verbose_says_what_is_computed(small_checkpoint, tmp_path):
    done = subprocess.run(_generate_command(small_checkpoint, tmp_path, tmp_path / "gen.mp4") + ["--verbose"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "I2V conditioning of the control branches: the RGB first frame's" in done.stdout
    assert "history: the previous clip's last 5 frames, the oldest 5 encoded into 2 latent frames" in done.stdout


def test_cli_generate_a_rendered_model_from_data_controls(world_checkpoint, tmp_path):
    """A rendered-conditioning model (32x32, 5-frame clips) generates from `lv2 data controls` of its size: each
    clip conditioned on the world memory rendered along the given path with the given depth, and shown over it
    (as World-v0 does), or on the previous clip's last frame alone."""
    ctl = tmp_path / "ctl"
    made = subprocess.run([sys.executable, "-m", "agents.cli", "data", "controls", "--out", str(ctl), "--seconds", "0.5",
                           "--height", "32", "--width", "32", "--clip-frames", "5", "--scene-seed", "3"],
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    assert np.load(ctl / "poses.npy").shape == (9, 4, 4) and np.load(ctl / "depth.npy").shape == (9, 32, 32)
    out = tmp_path / "gen.mp4"
    cmd = [sys.executable, "-m", "agents.cli", "generate", "--checkpoint", str(world_checkpoint),
           "--first-frame", str(ctl / "first.png"), "--depth", str(ctl / "dense.mp4"), "--tracks", str(ctl / "sparse.mp4"),
           "--poses", str(ctl / "poses.npy"), "--metric-depth", str(ctl / "depth.npy"),
           "--intrinsics", str(ctl / "intrinsics.npy"), "--prompts", str(ctl / "prompts.txt"), "--out", str(out),
           "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "9 frames (2 clips)" in done.stdout and read_video(out).shape == (9, 32, 32, 3)
    alone = tmp_path / "alone.mp4"
    done = subprocess.run(cmd[:-3] + ["--out", str(alone), "--quiet", "--conditioning", "last_frame"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    # The untrained model draws noise; with the memory composited, the frames show the first frame's surfaces.
    truth_first = iio.imread(ctl / "first.png")
    remembered, untouched = read_video(out)[1].astype(int), read_video(alone)[1].astype(int)
    assert np.abs(remembered - truth_first).mean() < 0.5 * np.abs(untouched - truth_first).mean()


def test_cli_generate_a_first_frame_model_ignores_a_camera_path(small_checkpoint, tmp_path):
    np.save(tmp_path / "poses.npy", np.repeat(np.eye(4)[None], 17, axis=0))
    cmd = _generate_command(small_checkpoint, tmp_path, tmp_path / "gen.mp4") + ["--poses", str(tmp_path / "poses.npy")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "a first-frame model takes no camera path; --poses, --metric-depth and --intrinsics are ignored" in done.stderr
    assert probe_video(tmp_path / "gen.mp4")["frames"] == 17
