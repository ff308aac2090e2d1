"""Frames handed over as the causal VAE decodes them, and a player that stays live while a clip is generated."""

import threading

import gymnasium as gym
import numpy as np
import torch

import lv2_env  # noqa: F401
from agents.play import KeyboardPlayer


def test_decoded_chunks_are_exactly_what_diffusers_decodes():
    from model.presets import TINY_TRAINING
    from model.vae import VideoVAE

    torch.manual_seed(0)
    vae = VideoVAE.from_config(**TINY_TRAINING.vae).eval()
    latents = torch.randn(2, 16, 3, 4, 4)
    with torch.no_grad():
        chunks = list(vae.decode_chunks(latents))
        reference = vae.model.decode(vae.denormalise(latents)).sample.clamp(-1.0, 1.0)
    assert [c.shape[2] for c in chunks] == [1, 4, 4]
    assert torch.equal(torch.cat(chunks, dim=2), reference)


def test_a_world_step_streams_its_new_frames_before_it_returns(world_checkpoint):
    env = gym.make("LV2/World-v0", checkpoint=str(world_checkpoint), preset="test", obs_mode="clip")
    env.reset(seed=0)
    received = []
    env.unwrapped.on_frames = lambda chunk: received.append(chunk.copy())
    obs, *_ = env.step(1)
    assert [c.shape for c in received] == [(4, 32, 32, 3)]  # 5-frame clips: one chunk of 4 new frames
    assert np.array_equal(np.concatenate(received), obs)


def test_the_player_generates_off_the_ui_thread_and_plays_streamed_frames(world_checkpoint, tmp_path):
    env = gym.make("LV2/World-v0", checkpoint=str(world_checkpoint), preset="test", goal_radius=None)
    player = KeyboardPlayer(env, scale=2, record_dir=tmp_path, seed=0)
    player.reset()
    step_threads, shown, idle_while_stepping = [], [], []
    step = env.unwrapped.step

    def recording_step(action):
        step_threads.append(threading.current_thread())
        return step(action)

    env.unwrapped.step = recording_step
    show, idle = player._show_clip, player._draw_idle
    player._show_clip = lambda frames, truth: (shown.append(len(frames)), show(frames, truth))
    player._draw_idle = lambda: (idle_while_stepping.append(player.stepping), idle())
    player.step()
    assert step_threads and step_threads[0] is not threading.main_thread()
    assert shown == [4]  # the streamed chunk, played once, not again after the step
    assert idle_while_stepping and all(idle_while_stepping)  # the window was redrawn while the step ran
    assert not player.stepping and env.unwrapped.on_frames is None  # the stream is detached afterwards
    assert player.clip_index == 1 and np.isfinite(player.generated_fps)


def test_new_world_pressed_during_a_step_waits_for_it(world_checkpoint, tmp_path):
    env = gym.make("LV2/World-v0", checkpoint=str(world_checkpoint), preset="test", goal_radius=None)
    player = KeyboardPlayer(env, scale=2, record_dir=tmp_path, seed=0)
    player.reset()
    pg = player.pygame
    pg.event.post(pg.event.Event(pg.KEYDOWN, key=pg.K_n, unicode="n", mod=0, scancode=0))
    player.step()  # the key is read while the clip is generated; the reset happens after it
    assert player.clip_index == 0 and not player.pending_reset and player.message == "a new world"
