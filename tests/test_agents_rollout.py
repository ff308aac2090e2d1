import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

import lv2_env  # noqa: F401
from agents.rollout import run_rollout
from agents.scripted import ActionEncoder, OrbitPolicy, ReplayPolicy, load_states, make_policy
from lv2_env.cli.options import whole_clips
from lv2_env.signals.actions import CameraActions, ClipSpec
from lv2_env.media.video import probe_video, read_video

SMALL = dict(height=32, width=32, clip_frames=5, goal_radius=None)


def make(**kwargs):
    return gym.make("LV2/GroundTruth-v0", **{**SMALL, **kwargs})


@pytest.mark.parametrize("mode", ["discrete", "continuous", "trajectory"])
@pytest.mark.parametrize("name", ["orbit", "dolly", "random"])
def test_policies_give_valid_actions_in_every_mode(name, mode):
    env = make(action_mode=mode)
    policy = make_policy(name, env, seed=1)
    obs, info = env.reset(seed=0)
    policy.reset(info)
    start = info["camera_state"]
    for _ in range(4):
        action = policy(obs, info)
        assert env.action_space.contains(action)
        obs, _, _, _, info = env.step(action)
    assert not np.allclose(info["camera_state"], start), f"{name} did not move the camera"


def test_orbit_turns_while_strafing():
    env = make(action_mode="continuous", clip_frames=17)
    policy = OrbitPolicy.for_env(env)
    obs, info = env.reset(seed=0, options={"start_pose": [0, 0, 1.6, 0, 0, 0]})
    policy.reset(info)
    obs, _, _, _, info = env.step(policy(obs, info))
    right, yaw = info["camera_state"][0], info["camera_state"][3]
    assert yaw == pytest.approx(np.radians(14.0), rel=1e-5) and right > 0  # strafed east while turning left


def test_discrete_encoder_follows_a_path_on_average():
    actions = CameraActions("discrete", ClipSpec(frames=17))
    encoder = ActionEncoder(actions)
    wanted = np.array([0.75, 0.0, 0.0, 0.0, 0.0, 0.0])  # half the forward macro per clip
    path = np.linspace(0, 1, 17)[:, None] * wanted
    chosen = [encoder.encode(path) for _ in range(10)]
    assert chosen.count(1) == 5 and chosen.count(0) == 5  # forward every other clip


def test_rollout_writes_video_and_side_file(tmp_path):
    env = make(action_mode="continuous", max_episode_steps=6)
    policy = make_policy("dolly", env)
    summary = run_rollout(env, policy, steps=6, video_path=tmp_path / "out.mp4", seed=0, progress=False)
    assert summary.frames == 1 + 6 * 4 and summary.steps == 6
    video = read_video(tmp_path / "out.mp4")
    assert video.shape == (25, 32, 32, 3)
    assert probe_video(tmp_path / "out.mp4")["codec"] == "h264"
    side = json.loads((tmp_path / "out.json").read_text())
    assert len(side["frames"]) == 25 and len(side["steps"]) == 6
    frame = side["frames"][7]
    assert frame["step"] == 2 and len(frame["state"]) == 6 and np.asarray(frame["pose"]).shape == (4, 4)
    assert frame["caption"] == side["caption"] and "reward" in frame
    # Frames of the video move with the camera: the first and last differ.
    assert np.abs(video[0].astype(int) - video[-1].astype(int)).mean() > 2


def test_replay_reproduces_a_recorded_path_exactly(tmp_path):
    recorder = make(action_mode="continuous", max_episode_steps=5)
    run_rollout(recorder, make_policy("random", recorder, seed=3), 5, tmp_path / "rec.mp4", seed=2, progress=False)
    recorded = json.loads((tmp_path / "rec.json").read_text())
    states = load_states(tmp_path / "rec.json")
    start = recorded["frames"][0]["state"]

    player = make(action_mode="trajectory", max_episode_steps=5)
    policy = ReplayPolicy.for_env(player, states=states)
    options = {"scene_seed": recorded["scene_seed"], "start_pose": start}
    run_rollout(player, policy, 5, tmp_path / "play.mp4", seed=2, options=options, progress=False)
    replayed = load_states(tmp_path / "play.json")
    np.testing.assert_allclose(replayed, states, atol=1e-5)


def test_load_states_formats_and_errors(tmp_path):
    states = np.array([[0, 0, 1.6, 0, 0, 0], [0, 1, 1.6, 0.1, 0, 0], [0, 2, 1.6, 0.2, 0, 0]], dtype=float)
    (tmp_path / "p.csv").write_text("x,y,z,yaw,pitch,roll\n" + "\n".join(",".join(map(str, s)) for s in states))
    np.testing.assert_allclose(load_states(tmp_path / "p.csv"), states)
    from lv2_env.signals.camera import poses_from_states

    np.save(tmp_path / "p.npy", poses_from_states(states))
    np.testing.assert_allclose(load_states(tmp_path / "p.npy"), states, atol=1e-9)
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="expected CSV columns"):
        load_states(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="does not exist"):
        load_states(tmp_path / "missing.json")
    with pytest.raises(ValueError, match=".json, .csv or .npy"):
        (tmp_path / "p.txt").write_text("")
        load_states(tmp_path / "p.txt")


def test_rollout_seconds_are_whole_clips():
    # A rollout's --seconds as the rollout verb counts it (whole_clips): clips of 16 new frames at 16 fps, the nearer
    # whole number of them, with a note when the duration was not one.
    clip = ClipSpec(frames=17, fps=16)
    assert whole_clips(30, "--seconds", clip.duration) == (30, None)
    assert whole_clips(1.1, "--seconds", clip.duration) == (1, "--seconds 1.1 is 1.1 clips; rolling out 1 clip = 1.0 s")
    with pytest.raises(ValueError):
        whole_clips(0, "--seconds", clip.duration)


def test_cli_rollout(tmp_path):
    out = tmp_path / "cli.mp4"
    cmd = [sys.executable, "-m", "agents.cli", "rollout", "--env", "groundtruth", "--policy", "orbit", "--seconds", "2", "--out", str(out),
           "--height", "32", "--width", "32", "--quiet", "--style", "snow"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert probe_video(out)["frames"] == 33
    assert json.loads(out.with_suffix(".json").read_text())["style"] == "snow"
    bad = subprocess.run(cmd[:-1] + ["mars"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown style 'mars'" in bad.stderr and "Traceback" not in bad.stderr


def test_cli_rollout_of_a_generated_world(tmp_path, world_checkpoint):
    out = tmp_path / "world.mp4"
    cmd = [sys.executable, "-m", "agents.cli", "rollout", "--env", "world", "--checkpoint", str(world_checkpoint),
           "--policy", "random", "--seconds", "1", "--out", str(out), "--quiet", "--prompt", "a snowy field"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    side = json.loads(out.with_suffix(".json").read_text())
    assert probe_video(out)["frames"] == len(side["frames"]) == 1 + 4 * 4  # 5-frame clips: 4 steps for 1 s
    assert {f["prompt"] for f in side["frames"]} == {"a snowy field"}
    assert all(s["rss_mb"] > 0 and "denoising" in s["timings"] for s in side["steps"])


def test_side_file_is_a_journal_until_the_run_ends(tmp_path):
    from agents.rollout import SideFile, journal_path, read_side_file

    path = tmp_path / "run.json"
    path.write_text('{"frames": [], "stale": true}')  # an earlier run's side file must not pass for this one's
    side = SideFile(path, {"fps": 16, "caption": "a snowy field"})
    assert not path.exists() and journal_path(path) == tmp_path / "run.jsonl"
    side.add([{"index": 0, "state": [0.0] * 6}])
    side.add([{"index": 1, "state": [1.0] * 6}, {"index": 2, "state": [2.0] * 6}], {"step": 1, "reward": 0.5})
    during = read_side_file(journal_path(path))
    assert during == {"fps": 16, "caption": "a snowy field", "frames": side.frames, "steps": [{"step": 1, "reward": 0.5}],
                      "finished": False}
    side.close({"finished": True, "wall_seconds": 1.5})
    assert not journal_path(path).exists()
    assert json.loads(path.read_text()) == {**during, "finished": True, "wall_seconds": 1.5}
    assert read_side_file(path) == json.loads(path.read_text())
    with pytest.raises(ValueError, match="closed"):
        side.add([{"index": 3}])


def test_a_journal_cut_mid_line_reads_up_to_its_last_whole_clip(tmp_path):
    env = make(action_mode="continuous", max_episode_steps=6)
    run_rollout(env, make_policy("dolly", env), 6, tmp_path / "out.mp4", seed=0, progress=False)
    finished = json.loads((tmp_path / "out.json").read_text())
    assert finished["finished"] is True and "stopped_by" not in finished
    # The journal a kill after 3 clips would have left, its 4th line half written.
    header = {k: v for k, v in finished.items() if k not in ("frames", "steps", "finished", "wall_seconds")}
    lines = [json.dumps({"header": header}), json.dumps({"frames": finished["frames"][:1]})]
    for k in range(3):
        lines.append(json.dumps({"frames": finished["frames"][1 + 4 * k: 5 + 4 * k], "step": finished["steps"][k]}))
    cut = json.dumps({"frames": finished["frames"][13:17], "step": finished["steps"][3]})
    journal = tmp_path / "killed.jsonl"
    journal.write_text("\n".join(lines) + "\n" + cut[: len(cut) // 2])
    from agents.rollout import read_side_file

    side = read_side_file(journal)
    assert side["finished"] is False and side["frames"] == finished["frames"][:13] and side["steps"] == finished["steps"][:3]
    assert side["scene_seed"] == finished["scene_seed"]
    np.testing.assert_allclose(load_states(journal), load_states(tmp_path / "out.json")[:13])
    # A broken line before the last is not a cut tail: refused, naming the line.
    journal.write_text("\n".join(lines[:2] + ["{not json"] + lines[2:]) + "\n")
    with pytest.raises(ValueError, match=r"killed.jsonl:3: expected a clip of the journal"):
        read_side_file(journal)
    # A missing side file whose journal exists: the error says to pass the journal.
    with pytest.raises(ValueError, match="killed.jsonl"):
        load_states(tmp_path / "killed.json")


def test_an_interrupted_rollout_still_writes_its_side_file(tmp_path):
    env = make(action_mode="continuous", max_episode_steps=10)
    policy = make_policy("orbit", env)
    calls = []

    def interrupted(observation, info):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return policy(observation, info)

    with pytest.raises(KeyboardInterrupt):
        run_rollout(env, interrupted, 10, tmp_path / "cut.mp4", seed=0, progress=False)
    side = json.loads((tmp_path / "cut.json").read_text())
    assert side["finished"] is False and side["stopped_by"] == "KeyboardInterrupt"
    assert len(side["steps"]) == 2 and len(side["frames"]) == 1 + 2 * 4 == len(read_video(tmp_path / "cut.mp4"))
    assert not (tmp_path / "cut.jsonl").exists()
