"""The shared training loop (checkpoints, resume, determinism, metrics) through the VAE stage on tiny data."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lv2_env.data.procedural import SequenceSpec, build_procedural
from model.presets import TINY_TRAINING, Preset
from model.training import loop as loop_module
from model.training.loop import Checkpointer, LoopConfig, train
from model.training.vae_stage import VaeStage, VaeStageConfig

SMALL_VAE = dict(TINY_TRAINING.vae, base_dim=8)
PRESET = Preset(**{**TINY_TRAINING.__dict__, "name": "test", "height": 32, "width": 32, "frames": 5, "vae": SMALL_VAE})


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    spec = SequenceSpec(height=32, width=32, frames=5, clips_per_sequence=1, history_frames=4)
    build_procedural(root / "train", "train", 1, spec, progress=False)
    build_procedural(root / "eval", "validation", 1, spec, progress=False)
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
        VaeStage(TINY_TRAINING, data / "train", None, VaeStageConfig())


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
    cmd = [sys.executable, "-m", "agents.cli", "train", "vae", "--data", str(data / "train"), "--out",
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


# ------------------------------------------------------------------------------------------------ SIGKILL


# Runs `lv2 train` with the checkpoint writer slowed down (so kills land inside writes) and markers on stdout:
# START once imported, SAVE/SAVED around each checkpoint, LOADED with the step a resumed run continues from.
_KILLABLE_TRAIN = """
import sys, time
import torch
from model.training import loop

save_file, torch_save, save, load = loop.save_file, torch.save, loop.Checkpointer.save, loop.Checkpointer.load
loop.save_file = lambda *a, **k: (time.sleep(0.1), save_file(*a, **k))[1]
torch.save = lambda *a, **k: (time.sleep(0.1), torch_save(*a, **k))[1]

def marked_save(self, step, module, state):
    print(f"SAVE {step}", flush=True)
    path = save(self, step, module, state)
    print(f"SAVED {step}", flush=True)
    return path

def marked_load(self, module):
    state = load(self, module)
    print(f"LOADED {state['step']}", flush=True)
    return state

loop.Checkpointer.save, loop.Checkpointer.load = marked_save, marked_load
from agents.cli import main
print("START", flush=True)
sys.exit(main(sys.argv[1:]))
"""


def _watch(process):
    """A queue that receives the process's stdout lines as they come."""
    import queue
    import threading

    lines: "queue.Queue[str]" = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.strip()) for line in process.stdout], daemon=True).start()
    return lines


def _wait_for(lines, prefix: str, seen: list[str], process, timeout: float = 120.0) -> bool:
    """Read lines into ``seen`` until one starts with ``prefix`` (True), the process ends or time runs out."""
    import queue
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            line = lines.get(timeout=0.05)
        except queue.Empty:
            if process.poll() is not None and lines.empty():
                return False
            continue
        seen.append(line)
        if line.startswith(prefix):
            return True
    return False


def test_lv2_train_killed_at_20_moments_resumes_to_the_uninterrupted_weights(tmp_path):
    """SIGKILL at 20 random moments (half of them inside checkpoint writes), a resume after each: every resume
    continues from the last complete checkpoint, none fails, and the final weights equal a run never stopped."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    spec = SequenceSpec(height=128, width=128, frames=17, clips_per_sequence=1, history_frames=4)
    data = build_procedural(tmp_path / "data", "train", 1, spec, progress=False)
    steps = 80
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def command(out):
        return ["train", "vae", "--data", str(data), "--out", str(out), "--steps", str(steps), "--checkpoint-every", "2",
                "--log-every", "1", "--plot-every", str(steps), "--crop", "32", "--frames", "5", "--batch-size", "1", "--warmup-steps", "2",
                "--precision", "fp32", "--quiet"]

    straight = subprocess.run([sys.executable, "-m", "agents.cli", *command(tmp_path / "straight")], env=env,
                              capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr
    (tmp_path / "train.py").write_text(_KILLABLE_TRAIN)
    out, picks, inside_writes = tmp_path / "killed", random.Random(0), 0
    for kill in range(20):
        latest = Checkpointer(out).latest
        resume = ["--resume"] if latest is not None else []
        process = subprocess.Popen([sys.executable, str(tmp_path / "train.py"), *command(out), *resume], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines, seen = _watch(process), []
        assert _wait_for(lines, "START", seen, process), process.stderr.read()
        if kill % 2 == 0:  # inside (or just after) a checkpoint write, which takes >= 0.2 s here
            assert _wait_for(lines, "SAVE ", seen, process), (seen, process.stderr.read())
            time.sleep(picks.uniform(0.0, 0.3))
        else:  # after this run's first complete checkpoint: in training steps or the next write
            assert _wait_for(lines, "SAVED ", seen, process), (seen, process.stderr.read())
            time.sleep(picks.uniform(0.0, 0.6))
        process.send_signal(signal.SIGKILL)
        process.wait()
        time.sleep(0.1)
        while not lines.empty():
            seen.append(lines.get())
        assert process.returncode == -signal.SIGKILL, ("the run ended before its kill", seen)
        saving = [s for s in seen if s.startswith("SAVE ")]
        inside_writes += bool(saving) and f"SAVED {saving[-1].split()[1]}" not in seen
        loaded = [s for s in seen if s.startswith("LOADED")]
        if latest is not None and loaded:  # the resume got as far as loading: from the last complete checkpoint
            assert loaded == [f"LOADED {int(latest.name.split('_')[1])}"]
        now = Checkpointer(out).latest
        assert now is None or {p.name for p in now.iterdir()} == {"weights.safetensors", "state.pt"}
    assert inside_writes >= 5, f"only {inside_writes} of 20 kills landed inside a checkpoint write"

    done = subprocess.run([sys.executable, "-m", "agents.cli", *command(out), "--resume"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    name = f"step_{steps:07d}"
    a = load_file(str(tmp_path / "straight" / "checkpoints" / name / "weights.safetensors"))
    b = load_file(str(out / "checkpoints" / name / "weights.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    final_a = load_file(str(next((tmp_path / "straight" / "final").rglob("*.safetensors"))))
    final_b = load_file(str(next((out / "final").rglob("*.safetensors"))))
    assert all(torch.equal(final_a[k], final_b[k]) for k in final_a)
    logged = [r["step"] for r in loop_module.read_metrics(out / "metrics.jsonl") if "loss" in r]
    assert logged == list(range(1, steps + 1))  # each step once, in order, after all the resumes
    assert not list((out / "checkpoints").glob(".tmp-*")) and (out / "loss.png").stat().st_size > 0
