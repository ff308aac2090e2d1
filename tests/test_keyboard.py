"""The keyboard player, driven by posted pygame events on SDL's dummy video driver."""

import json

import gymnasium as gym
import numpy as np
import pytest

import lv2_env  # noqa: F401
from agents.keyboard import KeyboardPlayer
from lv2_env.media.video import read_video


def _key(player, key, unicode=""):
    pg = player.pygame
    return pg.event.Event(pg.KEYDOWN, key=key, unicode=unicode, mod=0, scancode=0)


def _ground_truth_player(tmp_path, **kwargs):
    env = gym.make("LV2/GroundTruth-v0", height=32, width=32, clip_frames=5, goal_radius=None, max_episode_steps=10**6)
    return KeyboardPlayer(env, scale=2, record_dir=tmp_path, seed=0, **kwargs)


def test_movement_keys_are_the_envs_key_map(tmp_path):
    player = _ground_truth_player(tmp_path)
    pg = player.pygame
    keys = player.keys_to_action
    assert keys[("w",)] == 1 and keys[(pg.K_LEFT,)] == 5 and keys[(pg.K_UP,)] == 7 and keys[("r",)] == 9
    assert player.action_for({ord("w")}) == 1 and player.action_for({pg.K_RIGHT}) == 6
    assert player.action_for(set()) == 0
    player.handle_event(_key(player, pg.K_DOWN))
    assert player.last_pressed == pg.K_DOWN


def test_recording_survives_closing_the_window(tmp_path):
    player = _ground_truth_player(tmp_path)
    pg = player.pygame
    player.reset()
    player.handle_event(_key(player, pg.K_v))  # start recording
    for _ in range(2):
        player.handle_event(_key(player, ord("w")))
        player.step()
    recording = player.recording
    pg.event.post(pg.event.Event(pg.QUIT))
    player.step()  # the window closes while this clip plays
    assert not player.running
    player.run(max_steps=0)  # leaves the loop at once and closes everything, the recording included
    frames = read_video(recording.video)
    side = json.loads(recording.side_file.read_text())
    assert len(frames) == len(side["frames"]) == 1 + 3 * 4
    # Two clips of 'w' (4 new frames at 16 fps, 1.5 m/s), then one with no key: 0.75 m walked.
    states = np.array([f["state"] for f in side["frames"]])
    assert np.linalg.norm(states[-1, :2] - states[0, :2]) == pytest.approx(0.75, abs=1e-4)


def test_enter_opens_a_prompt_line(world_checkpoint, tmp_path):
    env = gym.make("LV2/World-v0", checkpoint=str(world_checkpoint), preset="test", goal_radius=None)
    player = KeyboardPlayer(env, scale=2, record_dir=tmp_path, seed=0, compare=True)
    pg = player.pygame
    player.reset()
    player.handle_event(_key(player, pg.K_RETURN))
    for ch in "snowy field":
        player.handle_event(_key(player, ord(ch) if ch != " " else pg.K_SPACE, unicode=ch))
    player.handle_event(_key(player, pg.K_BACKSPACE))
    player.handle_event(_key(player, pg.K_RETURN))
    assert player.prompt_line is None
    player.step()
    assert player.info["prompt"] == "snowy fiel"
    # Typing does not move the camera: 'w' while typing is a letter.
    player.handle_event(_key(player, pg.K_RETURN))
    player.handle_event(_key(player, ord("w"), unicode="w"))
    assert player.last_pressed is None and player.prompt_line == "w"
    player.handle_event(_key(player, pg.K_ESCAPE))  # cancel the line, keep playing
    assert player.prompt_line is None and player.running
    # Side by side: the window holds two panels.
    assert player.screen.get_width() == 2 * 32 * 2
