"""The distilled control encoder (model/control_encoder.py): its shapes and causality, how a model directory
chooses it, what a missing or broken one does, and that generation really runs through it."""

import shutil
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch

import lv2_env  # noqa: F401
from model.checkpoint_files import CheckpointWeightsError
from model.control_encoder import ControlEncoder
from model.precision import check_device
from model.world_model import CONTROL_ENCODER_FOLDER, WorldModel


def test_it_gives_the_vae_latent_shape_and_is_causal_in_time():
    torch.manual_seed(0)
    encoder = ControlEncoder(z_dim=16, widths=(8, 16, 16), blocks=1, groups=4).eval()
    video = torch.rand(2, 3, 17, 32, 48) * 2 - 1
    with torch.no_grad():
        latents = encoder(video)
        changed = video.clone()
        changed[:, :, 13:] = -1.0  # frames 13-16 belong to latent frame 4 alone
        after = encoder(changed)
    assert latents.shape == (2, 16, 5, 4, 6)
    assert torch.equal(after[:, :, :4], latents[:, :, :4])  # nothing later leaks into an earlier latent frame
    assert not torch.allclose(after[:, :, 4], latents[:, :, 4])


def test_a_video_of_the_wrong_shape_is_refused_with_its_shape():
    encoder = ControlEncoder(widths=(8, 16, 16), blocks=1, groups=4)
    with pytest.raises(ValueError, match=r"multiples of 8, got \(1, 3, 5, 30, 32\)"):
        encoder(torch.zeros(1, 3, 5, 30, 32))
    with pytest.raises(ValueError, match="4k \\+ 1|frames"):
        encoder(torch.zeros(1, 3, 6, 32, 32))


def _step_frames(checkpoint, control_encoder: str) -> tuple[np.ndarray, str]:
    """The frames of one generated step and the name of the encoder that conditioned them."""
    env = gym.make("LV2/World-v0", checkpoint=str(checkpoint), preset=None, precision="fp32", goal_radius=None,
                   control_encoder=control_encoder, composite=False)
    env.reset(seed=3)
    info = env.step(1)[-1]
    return info["frames"], env.unwrapped.model.control_encoder_name


def test_full_is_the_default_and_distilled_runs_through_the_models_control_encoder(world_checkpoint):
    default = gym.make("LV2/World-v0", checkpoint=str(world_checkpoint), preset=None, precision="fp32")
    assert default.unwrapped.model.control_encoder_name == "full"
    full, full_name = _step_frames(world_checkpoint, "full")
    distilled, distilled_name = _step_frames(world_checkpoint, "distilled")
    again, _ = _step_frames(world_checkpoint, "distilled")
    assert (full_name, distilled_name) == ("full", "distilled")
    np.testing.assert_array_equal(distilled, again)
    assert not np.array_equal(distilled, full)  # the (untrained) control encoder's latents are not the VAE's


def test_distilled_is_refused_for_a_model_without_one_and_a_bad_choice_is_named(world_checkpoint, tmp_path):
    directory = tmp_path / "model"
    shutil.copytree(world_checkpoint, directory, ignore=shutil.ignore_patterns(CONTROL_ENCODER_FOLDER))
    with pytest.raises(ValueError, match=r"has no distilled control encoder \(control-encoder/\): use "
                                         r"control_encoder='full'"):
        WorldModel.load(directory, preset=None, precision="fp32", control_encoder="distilled")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default asks for nothing that is missing
        assert WorldModel.load(directory, preset=None, precision="fp32").control_encoder_name == "full"
    with pytest.raises(ValueError, match=r"control_encoder must be one of \['full', 'distilled'\], got 'fast'"):
        WorldModel.load(directory, preset=None, precision="fp32", control_encoder="fast")


def test_broken_control_encoder_weights_are_named(world_checkpoint, tmp_path):
    from safetensors.torch import load_file, save_file

    directory = tmp_path / "model"
    shutil.copytree(world_checkpoint, directory)
    weights = directory / CONTROL_ENCODER_FOLDER / "diffusion_pytorch_model.safetensors"
    state = load_file(str(weights))
    state.pop("out.weight")
    save_file(state, str(weights))
    with pytest.raises(CheckpointWeightsError, match=r"out\.weight") as error:
        WorldModel.load(directory, preset=None, precision="fp32", control_encoder="distilled")
    assert str(weights) in str(error.value)


def test_a_device_this_machine_lacks_is_refused_naming_what_it_has(world_checkpoint):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match=r"device 'cuda' is not available here .*available: cpu"):
        check_device("cuda")
    with pytest.raises(ValueError, match=r"device 'cuda:0' is not available here"):
        gym.make("LV2/World-v0", checkpoint=str(world_checkpoint), preset=None, device="cuda:0")
    with pytest.raises(ValueError, match=r"device must be a torch device such as 'cpu' or 'cuda', got 'gpu'"):
        check_device("gpu")
    assert check_device("cpu") == torch.device("cpu")


def test_recorded_pairs_are_what_the_vae_encoder_saw_and_distillation_learns_from_them(world_checkpoint, tmp_path,
                                                                                      monkeypatch):
    import json
    import sys

    from lv2_env.data.encoder_pairs import collect_encoder_pairs, pair_file
    from model.training import distill_control_encoder
    from model.vae import VideoVAE, frames_to_tensor

    data = collect_encoder_pairs(tmp_path / "pairs", episodes=2, steps=2, checkpoint=world_checkpoint, precision="fp32")
    files = sorted((data / "pairs").glob("*.npz"))
    assert [f.name for f in files] == [pair_file(data, e, s).name for e in range(2) for s in range(2)]
    with np.load(files[0]) as stored:
        videos, latents = stored["videos"], stored["latents"]
    assert videos.dtype == np.uint8 and videos.shape == (3, 5, 32, 32, 3)  # dense, sparse, rendered; 5-frame clips
    vae = VideoVAE.from_pretrained(world_checkpoint / "vae").eval()
    with torch.no_grad():
        again = vae.encode(frames_to_tensor(videos)).numpy()
    np.testing.assert_allclose(latents.astype(np.float32), again, atol=2e-2, rtol=1e-2)

    out = tmp_path / "run"
    monkeypatch.setattr(sys, "argv", ["distill", "--data", str(data), "--out", str(out), "--steps", "4",
                                      "--batch-size", "2", "--precision", "fp32", "--save-every", "2",
                                      "--teacher", str(world_checkpoint / "vae")])
    distill_control_encoder.main()
    report = json.loads((out / "control-encoder" / "distillation.json").read_text())
    assert report["videos_held_out"] == 6 and report["videos_train"] == 6  # one of the two episodes held out
    assert np.isfinite(report["held_out"]["relative_mse"])
    loaded = ControlEncoder.from_pretrained(str(out / "control-encoder"))
    assert loaded(frames_to_tensor(videos)).shape == latents.shape
