"""The GPU path: the env, the batched worlds, the generator and a training step with ``device="cuda"``.

Skipped without CUDA; ``bash benchmarks/gpu_check.sh`` runs these on a machine with a GPU, with the speed benchmark.
"""

import gymnasium as gym
import numpy as np
import pytest
import torch

import lv2_env  # noqa: F401

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/gpu_check.sh)")


def test_the_world_env_steps_on_the_gpu_in_the_precision_auto_picks(world_checkpoint):
    env = gym.make("LV2/World-v0", checkpoint=str(world_checkpoint), preset=None, device="cuda", goal_radius=None)
    world = env.unwrapped
    assert next(world.model.checkpoint.transformer.parameters()).device.type == "cuda"
    assert world.precision == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")
    env.reset(seed=0)
    observation, reward, terminated, truncated, info = env.step(1)
    assert observation.dtype == np.uint8 and observation.shape == env.observation_space.shape
    assert info["frames"].shape[0] == world.clip.new_frames


def test_gpu_and_cpu_worlds_agree_in_float32(world_checkpoint):
    frames = {}
    for device in ("cpu", "cuda"):
        env = gym.make("LV2/World-v0", checkpoint=str(world_checkpoint), preset=None, device=device, precision="fp32",
                       goal_radius=None, composite=False)
        env.reset(seed=1)
        frames[device] = env.step(1)[-1]["frames"].astype(np.float32)
    assert np.abs(frames["cpu"] - frames["cuda"]).mean() < 2.0  # the same clip, to float32 rounding (uint8 levels)


def test_batched_worlds_step_together_on_the_gpu(world_checkpoint):
    vec = gym.make_vec("LV2/World-v0", num_envs=4, checkpoint=str(world_checkpoint), preset=None, device="cuda",
                       goal_radius=None)
    vec.reset(seed=0)
    observations, rewards, *_ = vec.step(np.ones(4, dtype=np.int64))
    assert observations.shape[0] == 4 and rewards.shape == (4,)

    # The same batched step on the CPU, both in float32 and without compositing (the frames are the model's own):
    # the same observations, to float32 rounding, as test_gpu_and_cpu_worlds_agree_in_float32 asks of one world.
    stepped = {}
    for device in ("cpu", "cuda"):
        vec = gym.make_vec("LV2/World-v0", num_envs=4, checkpoint=str(world_checkpoint), preset=None, device=device,
                           precision="fp32", goal_radius=None, composite=False)
        vec.reset(seed=0)
        stepped[device] = vec.step(np.ones(4, dtype=np.int64))
        vec.close()
    cpu, cuda = (stepped[d][0].astype(np.float32) for d in ("cpu", "cuda"))
    assert cpu.shape == cuda.shape == observations.shape
    assert np.abs(cpu - cuda).mean() < 2.0, np.abs(cpu - cuda).mean()  # uint8 levels
    assert np.array_equal(stepped["cpu"][1], stepped["cuda"][1])  # rewards come from the camera path, not the frames


def test_the_control_encoder_trains_on_the_gpu():
    from model.control_encoder import ControlEncoder

    encoder = ControlEncoder(widths=(8, 16, 16), blocks=1, groups=4).cuda()
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-3)
    video = torch.rand(2, 3, 9, 32, 32, device="cuda") * 2 - 1
    target = torch.randn(2, 16, 3, 4, 4, device="cuda")
    losses = []
    for _ in range(20):
        loss = ((encoder(video) - target) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < losses[0]
