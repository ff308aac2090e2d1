"""Nothing finished is lost when a run is killed, and bad input is one line and exit code 2.

* ``lv2 rollout`` (ground truth and a generated world), ``lv2 play`` recordings and ``lv2 eval`` rollouts are
  killed with SIGKILL mid-run; what they wrote is read back and checked against itself.
* ``lv2 eval`` refuses paths it cannot read or write before any work.
* ``lv2 play``'s first world, without a seed, is one a person can see (sunny, snow or desert).

The relation between a killed rollout's two files: each clip goes to the MP4 before its records go to the side
file's journal, and the MP4 (:class:`lv2_env.media.video.Mp4Writer`) keeps every fragment but the open one, a
fragment running from one keyframe to the next, at most ``fps`` = 16 frames apart (x264 may put one earlier, at
a scene cut such as a clip boundary of a generated world). So a killed run's video decodes at least all the
frames its journal describes but the last 16, and at most one clip (16 frames) more than it describes:
``described - 16 <= decoded <= described + 15``. Video frame ``i`` is the frame the journal describes as ``i``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import lv2_env  # noqa: F401  (registers the environments)
from agents.play import FIRST_WORLD_STYLES, KeyboardPlayer
from agents.rollout import journal_path, read_side_file
from agents.scripted import load_states
from agents.cli import main
from lv2_env.media.video import read_video

KEYFRAME_INTERVAL = 16  # Mp4Writer's default at 16 fps: one fragment per second of video
REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _clips_in(journal: Path) -> int:
    """Finished clips (steps) in a journal being written, 0 while it is absent or has only its header."""
    if not journal.exists() or journal.stat().st_size == 0:
        return 0
    try:
        return len(read_side_file(journal)["steps"])
    except ValueError:  # the header line itself is being written
        return 0


def _kill_when(process: subprocess.Popen, journal: Path, clips: int, timeout: float) -> None:
    """SIGKILL ``process`` once ``journal`` holds ``clips`` finished clips (polled); fail if it ends first."""
    deadline = time.monotonic() + timeout
    while _clips_in(journal) < clips:
        if process.poll() is not None:
            _, err = process.communicate()
            pytest.fail(f"the run ended (exit code {process.returncode}) before {clips} clips were written:\n{err}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"{journal} did not reach {clips} clips in {timeout} s")
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL


def _decoded(video: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a tail cut by the kill is expected
        return read_video(video)


def _check_killed_recording(video: Path, side_file: Path, new_frames: int) -> tuple[dict, np.ndarray]:
    """The checks every killed recording passes; the side file's records and the decoded video."""
    journal = journal_path(side_file)
    assert not side_file.exists(), "the side file is written when the run ends; a killed run leaves its journal"
    side = read_side_file(journal)
    assert side["finished"] is False
    clips = len(side["steps"])
    described = len(side["frames"])
    assert clips >= 3 and described == 1 + clips * new_frames  # the reset's frame, then every finished clip
    assert [f["index"] for f in side["frames"]] == list(range(described))
    for frame in side["frames"]:
        assert len(frame["state"]) == 6 and np.asarray(frame["pose"]).shape == (4, 4) and frame["prompt"]
    assert len(load_states(journal)) == described  # --policy file replays a killed run's journal
    frames = _decoded(video)
    decoded = len(frames)
    assert described - KEYFRAME_INTERVAL <= decoded <= described + new_frames - 1, (described, decoded)
    return side, frames


def test_killed_ground_truth_rollout_keeps_every_finished_clip(tmp_path):
    video = tmp_path / "X.mp4"
    process = _start(["-m", "agents.cli", "rollout", "--env", "groundtruth", "--policy", "orbit", "--seconds", "30",
                      "--out", str(video), "--quiet"], cwd=REPO)
    _kill_when(process, journal_path(video.with_suffix(".json")), clips=3, timeout=120)
    side, frames = _check_killed_recording(video, video.with_suffix(".json"), new_frames=16)
    assert all(set(s) >= {"reward", "collision", "goal_distance", "seconds", "rss_mb"} for s in side["steps"])
    assert {f["reward"] for f in side["frames"][1:17]} == {side["steps"][0]["reward"]}
    # The two agree frame by frame: the video's frame i is the render of the pose the side file gives frame i.
    env = gym.make("LV2/GroundTruth-v0")
    env.reset(options={"scene_seed": side["scene_seed"], "style": side["style"]})
    shared = min(len(frames), len(side["frames"]))
    poses = np.array([f["pose"] for f in side["frames"][:shared]])
    rendered = env.unwrapped.world.renderer.render(poses).rgb
    error = np.abs(rendered.astype(np.float32) - frames[:shared].astype(np.float32)).mean(axis=(1, 2, 3))
    assert error.max() < 4.0, f"video frames differ from the renders of their recorded poses: {error.round(2)}"
    assert np.abs(frames[0].astype(int) - frames[shared - 1].astype(int)).mean() > 2  # the orbit moved


def test_killed_world_rollout_keeps_every_finished_clip(tmp_path):
    """The shipped tiny model (17-frame clips, ~0.2-2 s each on a shared 2-core CPU)."""
    video = tmp_path / "W.mp4"
    process = _start(["-m", "agents.cli", "rollout", "--env", "world", "--policy", "random", "--seconds", "60",
                      "--out", str(video), "--quiet", "--prompt", "a snowy field"], cwd=REPO)
    _kill_when(process, journal_path(video.with_suffix(".json")), clips=3, timeout=240)
    side, _ = _check_killed_recording(video, video.with_suffix(".json"), new_frames=16)
    assert {f["prompt"] for f in side["frames"]} == {"a snowy field"}
    assert all("denoising" in s["timings"] and s["rss_mb"] > 0 for s in side["steps"])
    assert side["precision"] in ("bf16", "fp32")


PLAY_SCRIPT = """
import sys
import gymnasium as gym
import lv2_env
from agents.play import KeyboardPlayer

env = gym.make("LV2/GroundTruth-v0", goal_radius=None, max_episode_steps=10**9)
KeyboardPlayer(env, scale=2, record_dir=sys.argv[1], seed=0).run(max_steps=1000, record=True)
"""


def test_killed_play_recording_keeps_every_finished_clip(tmp_path):
    """``lv2 play``'s scripted demo mode (``max_steps``), recording from the first frame, killed mid-run."""
    recordings = tmp_path / "recordings"
    process = _start(["-c", PLAY_SCRIPT, str(recordings)], cwd=REPO)
    deadline = time.monotonic() + 120
    while not list(recordings.glob("*.jsonl")):
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "no recording started"
        time.sleep(0.05)
    (journal,) = recordings.glob("*.jsonl")
    _kill_when(process, journal, clips=3, timeout=120)
    side, _ = _check_killed_recording(journal.with_suffix(".mp4"), journal.with_suffix(".json"), new_frames=16)
    assert side["fps"] == 16
    assert all(s["action"] == 0 and s["seconds"] > 0 for s in side["steps"])  # no key held: the no-op


def test_killed_eval_keeps_every_finished_rollout(world_checkpoint, tmp_path):
    out = tmp_path / "eval"
    process = _start(["-m", "agents.cli", "eval", "--checkpoint", str(world_checkpoint), "--rollouts", "20",
                      "--split", "validation", "--rollout-seconds", "1", "--out", str(out)], cwd=REPO)
    journal = out / "world_rollouts.jsonl"
    deadline = time.monotonic() + 300
    while not journal.exists() or len(journal.read_text().splitlines()) < 2:
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "fewer than 2 rollouts in 300 s"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate()
    lines = journal.read_text().splitlines()
    try:
        rollouts = [json.loads(line) for line in lines]
    except json.JSONDecodeError:  # the kill cut the last line
        rollouts = [json.loads(line) for line in lines[:-1]]
    assert len(rollouts) >= 2 and all(len(r["model"]["psnr_per_frame"]) == 4 * 4 for r in rollouts)
    report = json.loads((out / "world_report.json").read_text())  # rewritten atomically: always whole
    finished = report["settings"]["rollouts_finished"]
    assert finished == len(report["rollouts"]) and len(rollouts) - 1 <= finished <= len(rollouts)
    assert report["rollouts"] == rollouts[:finished] and report["settings"]["rollouts"] == 20
    assert (out / "world_psnr.png").stat().st_size > 0 and (out / "world_strip.png").stat().st_size > 0


# --- lv2 eval: paths it cannot use -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["no checkpoint", "not a checkpoint", "checkpoint is a file", "no data",
                                  "out is a file", "out under a file"])
def test_eval_refuses_paths_it_cannot_use(case, tmp_path, capsys):
    shipped = REPO / "model" / "shipped"
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a directory")
    checkpoint, data, out, named = shipped, None, tmp_path / "out", None
    if case == "no checkpoint":
        checkpoint = named = tmp_path / "missing"
    elif case == "not a checkpoint":
        checkpoint = named = tmp_path
    elif case == "checkpoint is a file":
        checkpoint = named = a_file
    elif case == "no data":
        data = named = tmp_path / "no-data"
    elif case == "out is a file":
        out = named = a_file
    else:
        out = named = a_file / "eval"
    argv = ["eval", "--checkpoint", str(checkpoint), "--out", str(out)]
    argv += ["--data", str(data)] if data is not None else ["--rollouts", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lv2 eval: error: ") and str(named) in err, err
    if case not in ("out is a file", "out under a file"):
        assert not (tmp_path / "out").exists()  # refused before the output directory was made


def test_eval_bad_path_from_the_command_line_is_one_line(tmp_path):
    missing = tmp_path / "missing-checkpoint"
    done = subprocess.run([sys.executable, "-m", "agents.cli", "eval", "--checkpoint", str(missing), "--rollouts",
                           "1", "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120, env=ENV,
                          cwd=REPO)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"lv2 eval: error: --checkpoint {str(missing)!r}: no such directory"
    assert not (tmp_path / "out").exists()  # refused before anything was made


# --- lv2 play: the first world --------------------------------------------------------------------------------------


class _RecordResets(gym.Wrapper):
    """Remembers the options of every reset."""

    def __init__(self, env):
        super().__init__(env)
        self.options: list[dict | None] = []

    def reset(self, *, seed=None, options=None):
        self.options.append(options)
        return self.env.reset(seed=seed, options=options)


def _player(tmp_path, seed=None, options=None, **env_kwargs):
    env = _RecordResets(gym.make("LV2/GroundTruth-v0", height=32, width=32, clip_frames=5, goal_radius=None,
                                 **env_kwargs))
    return KeyboardPlayer(env, scale=2, record_dir=tmp_path, seed=seed, options=options), env


def test_play_starts_in_a_bright_style_when_no_seed_is_given(tmp_path):
    assert set(FIRST_WORLD_STYLES) == {"sunny", "snow", "desert"}  # dusk too is dark in the generated world
    styles = set()
    for _ in range(12):
        player, env = _player(tmp_path)
        player.reset()
        first = player.info["style"]
        assert env.options == [{"style": first}] and first in FIRST_WORLD_STYLES
        styles.add(first)
        player.reset()  # N: a new world, drawn from every style
        assert env.options[1] is None
    assert styles <= set(FIRST_WORLD_STYLES) and len(styles) > 1  # a bright style, not always the same one


def test_play_keeps_the_first_world_it_is_asked_for(tmp_path):
    # A seed picks the scene, and its style with it (seed 0 is a night scene: asked for, so kept).
    player, env = _player(tmp_path, seed=0)
    player.reset()
    assert env.options == [None]
    assert player.info["style"] == gym.make("LV2/GroundTruth-v0").reset(seed=0)[1]["style"]
    # A style in the options or the env's own style wins too.
    player, env = _player(tmp_path, options={"style": "night"})
    player.reset()
    assert env.options == [{"style": "night"}] and player.info["style"] == "night"
    player, env = _player(tmp_path, style="fog")
    player.reset()
    assert env.options == [None] and player.info["style"] == "fog"
