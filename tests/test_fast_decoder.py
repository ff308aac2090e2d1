"""The distilled decoder: the same encoder (so the same latents), a narrower decoder, selectable in the world."""

import shutil

import gymnasium as gym
import numpy as np
import pytest
import torch

import lv2_env  # noqa: F401
from model.training.distill_decoder import build_student
from model.vae import VideoVAE


def _parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_the_student_keeps_the_teachers_latent_space_with_a_narrower_decoder(world_checkpoint):
    teacher = VideoVAE.from_pretrained(world_checkpoint / "vae").eval()
    student = build_student(teacher, decoder_base_dim=4).eval()
    video = torch.rand(1, 3, 5, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(student.encode(video), teacher.encode(video))
        latents = teacher.encode(video)
        assert student.decode(latents).shape == teacher.decode(latents).shape == video.shape
    assert _parameters(student.model.decoder) < _parameters(teacher.model.decoder) / 2
    assert student.model.config.latents_std == teacher.model.config.latents_std


def test_the_world_runs_on_the_fast_decoder_and_refuses_one_it_lacks(world_checkpoint, tmp_path):
    with pytest.raises(ValueError, match=r"no distilled decoder \(vae-fast/\)"):
        gym.make("LV2/World-v0", checkpoint=str(world_checkpoint), preset="test", decoder="fast")
    with pytest.raises(ValueError, match=r"decoder must be one of \['full', 'fast'\], got 'tiny'"):
        gym.make("LV2/World-v0", checkpoint=str(world_checkpoint), preset="test", decoder="tiny")
    directory = tmp_path / "model"
    shutil.copytree(world_checkpoint, directory)
    build_student(VideoVAE.from_pretrained(directory / "vae"), decoder_base_dim=4).save_pretrained(directory / "vae-fast")
    env = gym.make("LV2/World-v0", checkpoint=str(directory), preset="test", decoder="fast", obs_mode="clip")
    full = gym.make("LV2/World-v0", checkpoint=str(directory), preset="test", obs_mode="clip")
    vae = env.unwrapped.model.checkpoint.vae
    assert _parameters(vae.model.decoder) < _parameters(full.unwrapped.model.checkpoint.vae.model.decoder) / 2
    obs, info = env.reset(seed=0)
    obs, *_ = env.step(1)
    assert obs.shape == (4, 32, 32, 3) and obs.dtype == np.uint8
