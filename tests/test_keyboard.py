"""The keyboard player, driven by posted pygame events on SDL's dummy video driver."""

import json
import time

import gymnasium as gym
import numpy as np
import pytest

import lv2_env  # noqa: F401
from lv2_env import UNLIMITED_EPISODE_STEPS
from agents.play import KeyboardPlayer
from lv2_env.envs.keys import KEYS, KEYS_HELP, MOVEMENT_KEYS, PLAYER_KEYS
from lv2_env.media.video import read_video
from lv2_env.signals.actions import DISCRETE_ACTIONS


def _key(player, key, unicode=""):
    pg = player.pygame
    return pg.event.Event(pg.KEYDOWN, key=key, unicode=unicode, mod=0, scancode=0)


def _ground_truth_player(tmp_path, **kwargs):
    env = gym.make("LV2/GroundTruth-v0", height=32, width=32, clip_frames=5, goal_radius=None,
                   max_episode_steps=UNLIMITED_EPISODE_STEPS)
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


def test_each_bound_key_asks_for_its_own_action(tmp_path):
    """Every movement binding of lv2_env.envs.keys, pressed in the player, is the macro it names; the player's
    command keys are the bindings' pygame codes."""
    player = _ground_truth_player(tmp_path)
    pg = player.pygame
    expected = {"forward": pg.K_w, "back": pg.K_s, "strafe_left": pg.K_a, "strafe_right": pg.K_d,
                "turn_left": pg.K_LEFT, "turn_right": pg.K_RIGHT, "look_up": pg.K_UP, "look_down": pg.K_DOWN,
                "rise": pg.K_r, "sink": pg.K_f}
    assert set(MOVEMENT_KEYS) == set(expected) == set(DISCRETE_ACTIONS) - {"noop"}
    for name, key in expected.items():
        player.handle_event(_key(player, key))
        assert player.last_pressed == key
        assert player.action_for({key}) == DISCRETE_ACTIONS.index(name), name
    assert player.command_keys == {pg.K_g: "agent", pg.K_RETURN: "prompt", pg.K_v: "record", pg.K_n: "new_world",
                                   pg.K_h: "keys", pg.K_ESCAPE: "quit"}
    assert set(PLAYER_KEYS) == set(player.command_keys.values())


def test_the_key_table_and_help_are_made_from_the_bindings():
    assert KEYS == (
        ("W / S", "forward / back"), ("A / D", "strafe left / right"), ("left / right", "turn"),
        ("up / down", "look up / down"), ("R / F", "rise / sink"), ("G", "agent walks to the goal"),
        ("Enter", "type a new prompt"), ("V", "start / stop recording"), ("N", "new world"),
        ("H", "show / hide these keys"), ("Esc", "quit"),
    )
    lines = KEYS_HELP.splitlines()
    assert lines[0] == ("Keys (the movement map is the env's ``get_keys_to_action()``; H shows this table in the "
                        "window):")
    assert lines[2] == "    W / S         forward / back"
    assert lines[8] == "    Enter         type a new prompt (Enter again applies it, Esc cancels)"
    assert len(lines) == 2 + len(KEYS)
    assert all(line.startswith(f"    {keys:<14}") for line, (keys, _) in zip(lines[2:], KEYS))


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
    # Side by side: generated, truth and (the world keeps a memory by default) the memory's render.
    assert player.screen.get_width() == 3 * 32 * 2
    generated, truth, memory = player._on_screen
    assert np.array_equal(generated, player.info["frames"][-1])
    assert np.array_equal(truth, player.info["ground_truth_frames"][-1])
    assert np.array_equal(memory, player.info["memory_frames"][-1])


def test_compare_without_a_memory_shows_two_panels(world_checkpoint, tmp_path):
    env = gym.make("LV2/World-v0", checkpoint=str(world_checkpoint), preset="test", goal_radius=None,
                   conditioning="last_frame")
    player = KeyboardPlayer(env, scale=2, record_dir=tmp_path, seed=0, compare=True)
    player.reset()
    player.step()
    assert player.screen.get_width() == 2 * 32 * 2 and player._on_screen[2] is None


def test_wrap_and_fit_keep_lines_within_the_width():
    from agents.play.text import fit_line, wrap_lines

    assert fit_line("short", 10, len) == "short"
    assert fit_line("a long prompt here", 10, len) == "a long..."
    assert fit_line("new prompt: snowy field_", 12, len, keep_end=True) == "...wy field_"
    lines = wrap_lines("a sunny meadow with a red pillar and two blue boxes", 16, len, max_lines=2)
    assert lines == ["a sunny meadow", "with a red..."] and all(len(line) <= 16 for line in lines)
    assert wrap_lines("one two", 16, len, max_lines=2) == ["one two"]
    assert wrap_lines("new prompt: a b c d e f g h_", 8, len, 2, keep_end=True) == ["...b c d", "e f g h_"]


@pytest.mark.parametrize("scale", [4, 2])
def test_the_hud_and_the_key_table_fit_the_window(tmp_path, scale):
    # 128x128, as lv2 play
    env = gym.make("LV2/GroundTruth-v0", goal_radius=None, max_episode_steps=UNLIMITED_EPISODE_STEPS)
    player = KeyboardPlayer(env, scale=scale, record_dir=tmp_path, seed=0)
    pg = player.pygame
    player.reset()
    width = player.screen.get_width()
    assert width == 128 * scale and player.frames_height() == 128 * scale
    assert player.show_keys  # shown at the start
    keys_width, keys_height, _ = player.keys_panel()
    assert keys_width + 8 <= width and keys_height + 8 <= player.frames_height()
    player.toggle_recording()
    player.say("recording " + "a-very-long-recording-name" * 4 + ".mp4")
    player.stepping = True
    for typing in (None, "a snowy field at dusk with " * 5):
        player.prompt_line = typing
        top, bottom = player.hud_lines()
        assert top.startswith("REC") and len(bottom) == 3
        for line in [top, *bottom]:
            assert player.font.size(line)[0] <= width - 8, line
    assert bottom[1].endswith("_")  # the end of a long line being typed stays in view
    player.prompt_line = None
    player.handle_event(_key(player, pg.K_h))
    assert not player.show_keys
    player.handle_event(_key(player, pg.K_h))
    player.handle_event(_key(player, ord("w")))
    assert not player.show_keys  # moving hides the table
    player.recording.close()


def test_a_recording_side_file_describes_each_clip(tmp_path):
    player = _ground_truth_player(tmp_path)
    player.reset()
    player.toggle_recording()
    journal = player.recording.side.journal
    returned = []  # what the env gave the player, and the wall time around its step
    env_step = player.env.unwrapped.step

    def timed_step(action):
        start = time.perf_counter()
        out = env_step(action)
        returned.append((out[1], time.perf_counter() - start))
        return out

    player.env.unwrapped.step = timed_step
    player.handle_event(_key(player, ord("w")))
    player.step()
    from agents.rollout import read_side_file

    during = read_side_file(journal)  # a kill now would leave this
    assert during["finished"] is False and len(during["frames"]) == 5
    [(reward, env_seconds)] = returned
    step = during["steps"][0]
    assert {k: v for k, v in step.items() if k != "seconds"} == {"clip": 1, "action": 1, "reward": reward,
                                                                 "collision": False}
    assert reward != 0.0  # a forward step changes the distance to the goal
    assert env_seconds <= step["seconds"] < env_seconds + 5.0  # the step's wall time, the env's part inside it
    recording = player.recording
    player.toggle_recording()
    side = json.loads(recording.side_file.read_text())
    assert side["finished"] is True and side["frames"] == during["frames"] and not journal.exists()


def test_g_hands_the_walk_to_the_pixel_agent_and_a_key_takes_it_back(tmp_path):
    # the shipped agent's 128x128
    env = gym.make("LV2/GroundTruth-v0", goal_radius=None, max_episode_steps=UNLIMITED_EPISODE_STEPS)
    player = KeyboardPlayer(env, scale=1, record_dir=tmp_path, seed=0)
    pg = player.pygame
    player.reset()
    asked, stepped = [], []
    player.agent_action = lambda fallback: asked.append(fallback) or 5  # the agent says: turn left
    step = env.unwrapped.step
    env.unwrapped.step = lambda action: (stepped.append(action), step(action))[1]
    player.handle_event(_key(player, pg.K_g))
    assert player.autopilot and "agent" in player.message
    yaw = player.info["camera_state"][3]
    player.step()
    assert len(asked) == 1 and player.info["camera_state"][3] > yaw  # turned left
    player.handle_event(_key(player, ord("w")))  # a key overrides the agent for that clip
    player.step()
    assert len(asked) == 1
    assert stepped == [DISCRETE_ACTIONS.index("turn_left"), DISCRETE_ACTIONS.index("forward")]
    player.handle_event(_key(player, pg.K_g))
    assert not player.autopilot


def test_the_agent_sees_the_frame_and_the_goal_of_the_caption(tmp_path):
    env = gym.make("LV2/GroundTruth-v0", goal_radius=None, max_episode_steps=UNLIMITED_EPISODE_STEPS)
    player = KeyboardPlayer(env, scale=1, record_dir=tmp_path, seed=0, autopilot=True)
    player.reset()
    action = player.agent_action(fallback=0)
    # The goal comes from the env, as an env made with goal_observation=True gives it beside the same frame.
    goal_env = gym.make("LV2/GroundTruth-v0", goal_observation=True, goal_radius=None)
    assert goal_env.unwrapped.goal_indices() is None  # no scene before reset
    seen = goal_env.reset(seed=0)[0]
    assert np.array_equal(seen["image"], player.info["frames"][-1])
    assert np.array_equal(env.unwrapped.goal_indices(), seen["goal"])
    expected, _ = player.pilot.agent.predict(seen, state=np.array([0]), deterministic=True)
    assert action == int(expected) and player.pilot.previous == action and player.autopilot
    player.info = {**player.info, "goal": ""}  # a world from a picture: nothing to walk to
    assert player.agent_action(fallback=0) == 0 and not player.autopilot
