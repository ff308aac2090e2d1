"""The shared training loop (checkpoints, resume, determinism, metrics) through the VAE stage on tiny data."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lv2_env.data.procedural import SequenceSpec, build_procedural
from model.presets import TINY, Preset
from model.training import loop as loop_module
from model.training.loop import Checkpointer, LoopConfig, train
from model.training.vae_stage import VaeStage, VaeStageConfig

SMALL_VAE = dict(TINY.vae, base_dim=8)
PRESET = Preset(**{**TINY.__dict__, "name": "test", "height": 32, "width": 32, "frames": 5, "vae": SMALL_VAE})


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    spec = SequenceSpec(height=32, width=32, frames=5, clips_per_sequence=1, history_frames=4)
    build_procedural(root / "train", "train", 1, spec, progress=False)
    build_procedural(root / "eval", "eval", 1, spec, progress=False)
    return root


def _stage(data):
    torch.manual_seed(0)
    return VaeStage(PRESET, data / "train", data / "eval", VaeStageConfig(batch_size=2, crop=32, frames=5))


def _config(out, steps, **kwargs):
    return LoopConfig(out=out, steps=steps, lr=2e-3, warmup_steps=2, checkpoint_every=kwargs.pop("every", 4),
                      eval_every=1000, log_every=1, progress=False, precision="fp32", **kwargs)


def _losses(out):
    return [r["loss"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "loss" in r]


def test_vae_stage_overfits_one_clip(data, tmp_path):
    train(_stage(data), _config(tmp_path / "run", 25, every=25))
    losses = _losses(tmp_path / "run")
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])
    assert (tmp_path / "run" / "loss.png").stat().st_size > 0
    assert (tmp_path / "run" / "final" / "vae" / "config.json").is_file()
    scores = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() if "eval/psnr" in l]
    assert scores and scores[-1]["eval/psnr"] > 5


class _Interrupted(Exception):
    pass


def test_interrupted_run_resumes_exactly(data, tmp_path):
    """A run killed after its step-4 checkpoint, resumed, ends bit-identical to one that never stopped."""
    train(_stage(data), _config(tmp_path / "straight", 8))
    stage = _stage(data)
    draw = stage.batch

    def batch_then_die(rng, step):
        if step == 5:
            raise _Interrupted
        return draw(rng, step)

    stage.batch = batch_then_die
    with pytest.raises(_Interrupted):
        train(stage, _config(tmp_path / "interrupted", 8))
    assert Checkpointer(tmp_path / "interrupted").latest.name == "step_0000004"
    train(_stage(data), _config(tmp_path / "interrupted", 8, resume=True))
    a = load_file(str(tmp_path / "straight" / "checkpoints" / "step_0000008" / "weights.safetensors"))
    b = load_file(str(tmp_path / "interrupted" / "checkpoints" / "step_0000008" / "weights.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    straight, resumed = _losses(tmp_path / "straight"), _losses(tmp_path / "interrupted")
    assert resumed[:5] + resumed[-3:] == straight  # steps 1-5 ran before the crash; 5-8 ran again after it
    state = torch.load(tmp_path / "interrupted" / "checkpoints" / "step_0000008" / "state.pt", weights_only=True)
    assert state["step"] == 8 and state["scheduler"]["last_epoch"] == 8


def test_refuses_to_overwrite_and_to_resume_nothing(data, tmp_path):
    train(_stage(data), _config(tmp_path / "run", 2, every=2))
    with pytest.raises(ValueError, match="already has checkpoints"):
        train(_stage(data), _config(tmp_path / "run", 4))
    with pytest.raises(ValueError, match="nothing to resume"):
        train(_stage(data), _config(tmp_path / "empty", 4, resume=True))


def test_a_crash_while_saving_leaves_the_last_checkpoint_whole(data, tmp_path, monkeypatch):
    stage = _stage(data)
    module = stage.module()
    checkpointer = Checkpointer(tmp_path)
    checkpointer.save(1, module, {"step": 1})
    assert checkpointer.latest.name == "step_0000001"

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(loop_module.torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        checkpointer.save(2, module, {"step": 2})
    monkeypatch.undo()
    assert checkpointer.latest.name == "step_0000001"
    assert not (tmp_path / "checkpoints" / "step_0000002").exists()
    assert checkpointer.load(module)["step"] == 1


def test_stage_rejects_data_of_another_shape(data):
    with pytest.raises(ValueError, match="height expected 128, got 32"):
        VaeStage(TINY, data / "train", None, VaeStageConfig())


def test_vae_stage_starts_from_saved_weights(data, tmp_path):
    first = _stage(data)
    with torch.no_grad():
        for p in first.vae.parameters():
            p.add_(0.01)
    first.vae.save_pretrained(tmp_path / "saved")
    second = VaeStage(PRESET, data / "train", None, VaeStageConfig(batch_size=2, crop=32, frames=5), init=tmp_path / "saved")
    for a, b in zip(first.vae.state_dict().values(), second.vae.state_dict().values()):
        assert torch.equal(a, b)


def test_cli_exports_the_latest_checkpoint(data, tmp_path):
    import subprocess
    import sys

    train(_stage(data), _config(tmp_path / "run", 2, every=2))
    # The CLI builds the tiny preset (128x128): data of another size is refused before anything is exported.
    cmd = [sys.executable, "-m", "lv2_env.cli", "train", "vae", "--data", str(data / "train"), "--out",
           str(tmp_path / "run"), "--export-latest", str(tmp_path / "exported"), "--crop", "32", "--frames", "5"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "height expected 128, got 32" in done.stderr
    assert not (tmp_path / "exported").exists()
    stage = _stage(data)
    state = Checkpointer(tmp_path / "run").load(stage.module())
    stage.export(tmp_path / "exported")
    assert state["step"] == 2 and (tmp_path / "exported" / "vae" / "config.json").is_file()


def test_freezing_the_encoder_trains_the_decoder_and_keeps_the_latent_space(data, tmp_path):
    from model.training.latents import vae_id

    train(_stage(data), _config(tmp_path / "first", 4, every=4))
    before = tmp_path / "first" / "final" / "vae"
    config = VaeStageConfig(batch_size=2, crop=32, frames=5, freeze_encoder=True)
    stage = VaeStage(PRESET, data / "train", None, config, init=before)
    train(stage, _config(tmp_path / "decoder", 6, every=6))
    after = tmp_path / "decoder" / "final" / "vae"
    old = load_file(str(before / "diffusion_pytorch_model.safetensors"))
    new = load_file(str(after / "diffusion_pytorch_model.safetensors"))
    encoder = [k for k in old if k.startswith(("encoder.", "quant_conv."))]
    decoder = [k for k in old if k.startswith(("decoder.", "post_quant_conv."))]
    assert encoder and all(torch.equal(old[k], new[k]) for k in encoder)
    assert any(not torch.equal(old[k], new[k]) for k in decoder)
    assert vae_id(before) == vae_id(after)  # cached latents stay valid
    with torch.no_grad():
        next(stage.vae.model.encoder.parameters()).add_(1.0)
    stage.vae.save_pretrained(tmp_path / "other")
    assert vae_id(tmp_path / "other") != vae_id(before)


def test_freezing_the_encoder_needs_a_trained_vae(data):
    with pytest.raises(ValueError, match="--init"):
        VaeStage(PRESET, data / "train", None, VaeStageConfig(crop=32, frames=5, freeze_encoder=True))
