"""Long-rollout evaluation on the small random checkpoint: every figure is computed and lands in the report."""

import json
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest

from lv2_env.envs.world import WorldEnv
from model.metrics import psnr
from lv2_env.evaluation.rollouts import LOOP, depth_following, evaluate_world, run_path, score_rollout
from lv2_env.evaluation.phantoms import phantom_share


def test_scores_of_a_rollout(world_checkpoint):
    env = WorldEnv(checkpoint=world_checkpoint, preset="test", goal_radius=None)
    video = run_path(env, (1, 5), 3, scene_seed=1_000_000)
    assert video["generated"].shape == video["truth"].shape == (1 + 3 * 4, 32, 32, 3)
    scores = score_rollout(video, estimate_depth=lambda frames: np.full(frames.shape[:3], 5.0, np.float32))
    assert len(scores["model"]["psnr_per_frame"]) == 12
    # The repeat baseline is exact on frame 0 only; the truth's own depth is the one the env rendered.
    assert scores["repeat"]["psnr_per_frame"][0] < 100
    assert scores["boundaries"]["truth"]["ratio"] > 0 and np.isfinite(scores["boundaries"]["model"]["jump"])
    assert set(scores["depth_following"]) == {"model", "truth", "repeat"}
    # The model-only measures: where the world memory held nothing (composited everywhere else).
    assert video["known"].shape == video["truth"].shape[:3] and video["known"][0].all()
    assert 0.0 < scores["revealed_fraction"] < 1.0
    revealed = ~video["known"][1:]
    assert scores["model"]["psnr_revealed"] == psnr(video["generated"][1:], video["truth"][1:], revealed)
    assert np.isfinite(scores["model"]["psnr_revealed"]) and scores["model"]["psnr_revealed"] < scores["model"]["psnr"]
    # Phantoms and the goal's colour, on the frames sampled every 4th: the truth's own frames have none.
    sampled = np.arange(1, len(video["truth"]), 4)
    assert video["goal_id"] == env.scene.landmark + 1
    assert scores["model"]["phantom_share"] == pytest.approx(np.mean(
        [phantom_share(video["generated"][i:i + 1], video["truth"][i:i + 1], video["object_ids"][i:i + 1]) for i in sampled]))
    assert 0.0 < scores["model"]["phantom_share"] < 1.0  # an untrained model draws structure the truth has not
    assert phantom_share(video["truth"], video["truth"], video["object_ids"]) == 0.0
    assert len(scores["model"]["phantom_share_per_minute"]) == 1 and "goal_colour_error" in scores["repeat"]


def test_the_loop_path_turns_a_full_circle():
    # 12 one-second turns of 30 deg/s make a full circle: the truth's last frame is its first.
    from lv2_env.signals.actions import CameraActions, ClipSpec

    trajectory_yaw = sum(CameraActions("discrete", ClipSpec(17)).to_trajectory(a).relative[-1, 3] for a in LOOP)
    assert trajectory_yaw == pytest.approx(2 * np.pi)


def test_depth_following_leaves_the_sky_out_and_is_bounded():
    reference = np.array([[[2.0, 2.0, 4.0, 150.0]]])
    assert depth_following(np.array([[[1.0, 1.0, 2.0, 1.0]]]), reference) == 1.0  # right up to scale; sky ignored
    # A pixel taken for sky costs one pixel's share, not 75x the mean.
    assert depth_following(np.array([[[2.0, 2.0, 150.0, 150.0]]]), reference) == pytest.approx(2 / 3)


def test_lv2_eval_writes_the_world_report(world_checkpoint, tmp_path):
    cmd = [sys.executable, "-m", "agents.cli", "eval", "--checkpoint", str(world_checkpoint), "--rollouts", "1",
           "--rollout-seconds", "1", "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "world_report.json").read_text())
    assert report["settings"]["steps"] == 4 and "loop" in report["mean"] and "depth_following" in report["mean"]
    assert report["settings"]["split"] == "test" and report["rollouts"][0]["scene_seed"] == 1_100_000
    assert np.isfinite(report["mean"]["loop"]["model_only_last_vs_first"])  # composited, it is inf
    assert "held-out scenes of the test split" in done.stdout and "compositing off" in done.stdout
    # Whether the history context was on is part of what was measured (and of what --resume must match).
    from model.checkpoint import read_checkpoint_info

    history = read_checkpoint_info(world_checkpoint)["history_latent_frames"]
    assert report["settings"]["history_latent_frames"] == history
    assert json.loads((tmp_path / "world_run.json").read_text())["history_latent_frames"] == history
    assert f"history {history or 'off'}" in done.stdout
    assert (tmp_path / "world_psnr.png").stat().st_size > 0 and (tmp_path / "world_strip.png").stat().st_size > 0
    assert "drift" in done.stdout
    assert "phantom share" in done.stdout and 0.0 <= report["mean"]["model"]["phantom_share"] <= 1.0
    bad = subprocess.run([sys.executable, "-m", "agents.cli", "eval", "--checkpoint", str(world_checkpoint), "--out",
                          str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "nothing to evaluate" in bad.stderr


def test_evaluate_world_hands_over_each_rollout_as_it_finishes(world_checkpoint):
    env = WorldEnv(checkpoint=world_checkpoint, preset="test", goal_radius=None)
    seen = []
    report = evaluate_world(env, 2, 1, progress=False,
                            on_rollout=lambda partial, video: seen.append((partial, len(video["generated"]))))
    assert [len(partial["rollouts"]) for partial, _ in seen] == [1, 2] and [n for _, n in seen] == [5, 5]
    assert [partial["settings"]["rollouts_finished"] for partial, _ in seen] == [1, 2]
    assert seen[0][0]["rollouts"][0] == report["rollouts"][0] and report["settings"]["rollouts"] == 2
    assert "depth_following" not in report["mean"]  # no depth network given


def test_lv2_eval_writes_a_line_per_rollout(world_checkpoint, tmp_path):
    cmd = [sys.executable, "-m", "agents.cli", "eval", "--checkpoint", str(world_checkpoint), "--rollouts", "2",
           "--rollout-seconds", "1", "--grid-clips", "1", "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in (tmp_path / "world_rollouts.jsonl").read_text().splitlines()]
    report = json.loads((tmp_path / "world_report.json").read_text())
    assert lines == report["rollouts"] and report["settings"]["rollouts_finished"] == 2
    assert "scene 2/2" in done.stdout


def test_lv2_eval_resume_runs_only_the_scenes_left_and_writes_the_same_report(world_checkpoint, tmp_path):
    base = [sys.executable, "-m", "agents.cli", "eval", "--checkpoint", str(world_checkpoint), "--rollout-seconds", "1",
            "--there-and-back-seconds", "1"]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    for out, rollouts in ((whole, "2"), (cut, "1")):
        done = subprocess.run(base + ["--rollouts", rollouts, "--out", str(out)], capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr
    resumed = subprocess.run(base + ["--rollouts", "2", "--out", str(cut), "--resume"], capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "1 already done" in resumed.stdout and "scene 1/2" not in resumed.stdout and "scene 2/2" in resumed.stdout
    lines = lambda out: (out / "world_rollouts.jsonl").read_text().splitlines()  # noqa: E731
    assert lines(cut) == lines(whole)  # the same scenes, scored the same, nothing run twice
    report = lambda out: json.loads((out / "world_report.json").read_text())  # noqa: E731
    assert report(cut)["mean"] == report(whole)["mean"]
    assert iio.imread(cut / "world_strip.png").shape == iio.imread(whole / "world_strip.png").shape  # both scenes
    # Other settings than the finished scenes were run with: refused, naming what differs.
    other = subprocess.run(base[:-2] + ["--there-and-back-seconds", "0", "--rollouts", "2", "--out", str(cut),
                                        "--resume"], capture_output=True, text=True, timeout=600)
    assert other.returncode == 2 and "there_and_back_seconds was 1, now 0" in other.stderr


def test_object_colour_error_and_visibility():
    from lv2_env.evaluation.objects import object_scores

    truth = np.full((1, 32, 32, 3), 40, np.uint8)  # dark ground
    ids = np.zeros((1, 32, 32), np.int16)
    truth[0, 8:16, 8:16] = (220, 30, 30)  # a red box
    ids[0, 8:16, 8:16] = 1
    same = object_scores(truth, truth, ids)
    assert same["colour_error"] == 0 and same["visible"] == 1 and same["judged"] == 1
    washed = truth.copy()
    washed[0, 8:16, 8:16] = 40  # the box blurred into the ground: gone
    gone = object_scores(washed, truth, ids)
    assert gone["visible"] == 0 and gone["colour_error"] == pytest.approx(np.linalg.norm([180, 10, 10]), rel=1e-4)
    faded = truth.copy()
    faded[0, 8:16, 8:16] = (160, 35, 35)  # paler, but still nearer red than the ground
    assert object_scores(faded, truth, ids)["visible"] == 1
    with pytest.raises(ValueError, match="of the same N, H, W"):
        object_scores(truth, truth, ids[:, :16])


def test_memory_inpaint_fills_every_hole_and_keeps_frame_0():
    from lv2_env.evaluation.baselines import memory_inpaint
    from lv2_env.signals.camera import Intrinsics, poses_from_states
    from lv2_env.worlds import Renderer, generate_scene

    pytest.importorskip("cv2")
    k = Intrinsics.from_fov(70, 48, 48)
    poses = poses_from_states(np.array([[0, 0, 1.6, a, 0, 0] for a in (0.0, 0.3, 0.6)]))
    out = Renderer(generate_scene(5, style="sunny"), k).render(poses)
    frames = memory_inpaint(out.rgb[0], out.depth[0], poses, k.matrix)
    assert frames.shape == out.rgb.shape and np.array_equal(frames[0], out.rgb[0])
    assert (frames[2].sum(axis=-1) > 0).all()  # the turn reveals a third of the view: inpainted, not black
    assert psnr(frames[1], out.rgb[1]) > psnr(out.rgb[0], out.rgb[1])  # better than standing still


def test_there_and_back_returns_to_the_start_pose(world_checkpoint):
    from lv2_env.evaluation.rollouts import comes_back, there_and_back

    env = WorldEnv(checkpoint=world_checkpoint, preset="test", goal_radius=None)
    assert there_and_back(2) == (1, 1, 2, 2)
    result = comes_back(env, there_and_back(2), scene_seed=1_000_000)
    assert result["truth_last_vs_first"] == float("inf")  # the truth's last frame is its first, exactly
    # Composited, the start pose shows the start frame's surfels and sky first, so the picture comes back exactly.
    assert result["psnr_last_vs_first"] == float("inf")
    raw = WorldEnv(checkpoint=world_checkpoint, preset="test", goal_radius=None, composite=False)
    alone = comes_back(raw, there_and_back(2), scene_seed=1_000_000)["psnr_last_vs_first"]
    assert np.isfinite(alone)
    # Beside the composited figure, the same path with compositing off: the model's own drawing, not the memory's.
    assert result["model_only_last_vs_first"] == pytest.approx(alone) and env.composite  # and switched back on


def test_the_picture_strip_is_at_0_1_3_and_5_minutes():
    from lv2_env.evaluation.rollouts import strip_frames

    assert strip_frames(4801, 16) == [("0.0 min", 0), ("1.0 min", 960), ("3.0 min", 2880), ("5.0 min", 4800)]
    assert [i for _, i in strip_frames(161, 16)] == [0, 32, 96, 160]  # 10 s: the same fractions of the walk
    assert strip_frames(161, 16)[1][0] == "2 s"


def test_cache_diagnosis_finds_where_a_cache_world_breaks():
    from lv2_env.evaluation.rollouts import cache_diagnosis

    truth = np.full((9, 4, 4), 10.0, np.float32)
    truth[:, 0] = 150.0  # a row of sky, left out of the depth error
    cached = truth.copy()
    cached[5:, 1:] = 15.0  # step 2's depth is 50% off: none of it within 1.25x
    holes = np.zeros((9, 4, 4), bool)
    holes[5:, 3] = True  # a quarter of step 2's pixels had no cached depth
    video = {"depth": truth, "control_depth": cached, "depth_holes": holes, "clip_frames": 5}
    out = cache_diagnosis(video, {"model": [30.0, 18.0], "repeat": [20.0, 20.0]})
    assert out["depth_right_per_step"] == pytest.approx([1.0, 0.0]) and out["holes_per_step"] == [0.0, 0.25]
    assert out["first_step_below_repeat"] == 2
    assert cache_diagnosis(video, {"model": [30.0, 28.0], "repeat": [20.0, 20.0]})["first_step_below_repeat"] is None
    frames = {"model": [30.0, 18.0, 16.0, 25.0], "repeat": [20.0, 20.0, 20.0, 20.0]}  # one frame 4 dB below
    assert cache_diagnosis(video, {"model": [30.0, 18.0], "repeat": [20.0, 20.0]}, frames)["collapsed"] == 0.25
    assert "collapsed" not in out


def test_a_cache_world_is_scored_against_the_true_depth(world_checkpoint):
    env = WorldEnv(checkpoint=world_checkpoint, preset="test", goal_radius=None, control_source="cache")
    video = run_path(env, (1, 5), 3, scene_seed=1_100_000)
    assert video["control_depth"].shape == video["depth"].shape == video["depth_holes"].shape
    # The baselines get the scene's exact depth; the model was steered by the cache's, which is not exact.
    assert not np.allclose(video["control_depth"][1:], video["depth"][1:])
    assert not video["depth_holes"][0].any() and video["depth_holes"].dtype == bool
    scores = score_rollout(video)
    assert len(scores["cache"]["depth_right_per_step"]) == 3 and 0.0 <= scores["cache"]["depth_right"] <= 1.0
    assert 0.0 <= scores["cache"]["holes"] <= 1.0
