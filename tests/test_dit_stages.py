"""The four DiT stages on one tiny clip: each lowers its loss, and each starts from the previous one's result."""

import numpy as np
import pytest
import torch

from lv2_env.data.procedural import SequenceSpec, build_procedural
from lv2_env.conditioning.warp import render_clip
from model.presets import TINY_TRAINING, Preset
from model.training.dit_stage import RECIPES, DitStage, DitStageConfig
from model.training.latents import LatentDataset, cache_latents
from model.training.loop import LoopConfig, train
from model.vae import VideoVAE

PRESET = Preset(**{**TINY_TRAINING.__dict__, "name": "tiny", "height": 32, "width": 32, "frames": 5,
                   "vae": dict(TINY_TRAINING.vae, base_dim=8)})


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("dit")
    spec = SequenceSpec(height=32, width=32, frames=5, clips_per_sequence=1, history_frames=13)
    build_procedural(root / "train", "train", 1, spec, progress=False)
    torch.manual_seed(0)
    VideoVAE.from_config(**PRESET.vae).save_pretrained(root / "vae")
    cache_latents(root / "train", root / "vae", progress=False, render=render_clip)
    return root


def _fixed_batch_loss(stage, seed=123):
    batch = stage.batch(np.random.default_rng(seed), step=10**6)
    with torch.no_grad():
        return float(stage.module()(**batch)[0])


def _run(setup, name, init):
    stage = DitStage(RECIPES[name], PRESET, setup / "train", setup / "vae", None, DitStageConfig(batch_size=2), init=init)
    before = _fixed_batch_loss(stage)
    out = setup / name
    train(stage, LoopConfig(out=out, steps=30, lr=1e-3, warmup_steps=2, checkpoint_every=30, eval_every=10**6,
                            log_every=5, progress=False, precision="fp32"))
    return stage, before, _fixed_batch_loss(stage), out / "final"


def test_latent_cache(setup):
    item = LatentDataset(setup / "train", setup / "vae", "rendered")[0]
    assert item["rgb"].shape == (16, 2, 4, 4) and item["condition"].shape == (16, 2, 4, 4)
    assert item["history_13"].shape == (16, 4, 4, 4) and item["history_1"].shape == (16, 1, 4, 4)
    with pytest.raises(ValueError, match="no latents of VAE"):
        other = setup / "other_vae"
        VideoVAE.from_config(**dict(PRESET.vae, base_dim=16)).save_pretrained(other)
        LatentDataset(setup / "train", other, "rendered")


@pytest.fixture(scope="module")
def chain(setup):
    """Train the four stages one after another, each from the previous one's result."""
    results, init = {}, None
    for name in ("base", "control", "degradation", "history"):
        results[name] = _run(setup, name, init)
        init = results[name][3]
    return results


def test_stages_chain_and_each_lowers_its_loss(chain):
    for name, (stage, before, after, _) in chain.items():
        assert after < before, f"stage {name}: loss on a fixed batch went {before:.4f} -> {after:.4f}"
        trainable = {n.split(".")[1] for n, p in stage.module().named_parameters() if p.requires_grad}
        expected = {"base": {"base", "text_encoder"}, "control": {"control"}}.get(name, {"control", "base"})
        if name == "base":
            assert {n.split(".")[0] for n, p in stage.module().named_parameters() if p.requires_grad} == {"transformer", "text_encoder"}
        else:
            assert trainable <= expected
        if name in ("degradation", "history"):
            names = [n for n, p in stage.module().named_parameters() if p.requires_grad and ".base." in n]
            assert names and all(".attn1." in n for n in names)  # only the base's self-attention


def test_control_stage_needs_an_init(setup):
    with pytest.raises(ValueError, match="--init"):
        DitStage(RECIPES["control"], PRESET, setup / "train", setup / "vae", None, DitStageConfig())


def test_history_batches_follow_the_recipe(setup, chain):
    stage = DitStage(RECIPES["history"], PRESET, setup / "train", setup / "vae", None, DitStageConfig(batch_size=2),
                     init=chain["degradation"][3])
    rng = np.random.default_rng(0)
    lengths = []
    for _ in range(60):
        batch = stage.batch(rng, step=0)
        lengths.append(batch["history"].shape[2] if "history" in batch else 0)
        assert batch["frame_weights"][0].tolist() == pytest.approx([0.05, 0.325])
    assert {0, 1, 2, 3, 4} >= set(lengths) and lengths.count(0) > 3 and len(set(lengths)) >= 4


def test_train_all_runs_every_stage_and_skips_finished_ones(tmp_path):
    import json

    from lv2_env.data.procedural import SequenceSpec, build_procedural
    from model.checkpoint import load_checkpoint
    from model.training.stages import STAGE_ORDER, train_all

    build_procedural(tmp_path / "data", "train", 1, SequenceSpec(clips_per_sequence=1), progress=False)
    steps = {name: 1 for name in STAGE_ORDER}  # every stage, the depth network included
    model = train_all(TINY_TRAINING, tmp_path / "data", None, tmp_path / "runs", steps=steps, precision="fp32", progress=False,
                      render=render_clip)
    assert model == tmp_path / "runs" / "model"
    checkpoint = load_checkpoint(model, expect_preset="tiny")
    assert checkpoint.notes["stage"] == "history"
    # The model carries the fine-tuned decoder (not the history stage's copy of the first VAE) and the depth net.
    decoder = (tmp_path / "runs" / "vae-decoder" / "final" / "vae" / "diffusion_pytorch_model.safetensors").read_bytes()
    assert (model / "vae" / "diffusion_pytorch_model.safetensors").read_bytes() == decoder
    assert (model / "depth" / "config.json").is_file()
    stages = {json.loads(line)["stage"] for line in (model / "training_log.jsonl").read_text().splitlines()}
    assert stages == set(STAGE_ORDER)
    final = tmp_path / "runs" / "history" / "final"
    stamp = (final / "lv2.json").stat().st_mtime_ns
    train_all(TINY_TRAINING, tmp_path / "data", None, tmp_path / "runs", steps=steps, precision="fp32", progress=False,
                      render=render_clip)
    assert (final / "lv2.json").stat().st_mtime_ns == stamp  # nothing retrained


def test_rendered_cache_holds_the_rendered_first_frame(setup):
    from model.pipeline import condition_video
    from model.clips import ClipDataset
    from model.vae import frames_to_tensor

    rendered = LatentDataset(setup / "train", setup / "vae", "rendered")[0]["condition"]
    clip = ClipDataset(setup / "train", ("rgb", "depth", "poses", "intrinsics"))[0]
    vae = VideoVAE.from_pretrained(setup / "vae")
    with torch.no_grad():
        plain = vae.encode(condition_video(frames_to_tensor(clip["rgb"])[:, :, 0], 5))[0]
        expected = vae.encode(frames_to_tensor(render_clip(clip)))[0]
    # Frames 1+ carry the render, not zeros: the cache is nearer the render's latent than the plain one
    # (float16 storage and bf16 encoding leave a small error).
    to_render = (rendered[:, 1:] - expected[:, 1:]).abs().mean()
    to_plain = (rendered[:, 1:] - plain[:, 1:]).abs().mean()
    assert to_render < 0.5 * to_plain  # (a random VAE maps videos close together; the plain cache gives ~1.0)


def test_assembling_refuses_a_vae_with_another_encoder(setup, chain, tmp_path):
    from model.training.stages import assemble_model

    other = tmp_path / "other_vae"
    torch.manual_seed(1)
    VideoVAE.from_config(**PRESET.vae).save_pretrained(other)
    with pytest.raises(ValueError, match="another encoder"):
        assemble_model(chain["history"][3], other, None, tmp_path / "model")
    assert not (tmp_path / "model").exists()
    model = assemble_model(chain["history"][3], setup / "vae", None, tmp_path / "model")
    assert (model / "lv2.json").is_file() and not (model / "depth").exists()


def test_history_windows_end_with_the_clips_shared_first_frame(setup):
    """LongVie 2's history is the previous clip's last frames, the last of which is the clip's first frame (clips
    share it), which L_cons = |z_H[-1] - z_hat[0]|^2 assumes: the cached history ends with that frame."""
    from model.clips import ClipDataset
    from model.training.latents import history_windows

    clip = ClipDataset(setup / "train", ("rgb", "history"))[0]
    windows = history_windows(clip)
    assert sorted(windows) == [1, 5, 9, 13]
    for n, frames in windows.items():
        assert len(frames) == n and np.array_equal(frames[-1], clip["rgb"][0])
        assert np.array_equal(frames[:-1], clip["history"][len(clip["history"]) - (n - 1):])


def test_a_cache_whose_history_ends_before_the_clip_is_refused(setup, tmp_path):
    import json
    import shutil

    from model.training.latents import cache_directory

    cache = cache_directory(setup / "train", setup / "vae", "rendered")
    data = tmp_path / "train"
    shutil.copytree(setup / "train", data)
    old = cache_directory(data, setup / "vae", "rendered")
    index = json.loads((old / "index.json").read_text())
    assert index["history_ends_with_first_frame"] is True and cache.name == old.name
    index.pop("history_ends_with_first_frame")  # as the caches written before the fix
    (old / "index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="history ends one frame before each clip"):
        LatentDataset(data, setup / "vae", "rendered")
    with pytest.raises(ValueError, match="history ends one frame before each clip"):
        cache_latents(data, setup / "vae", progress=False, render=render_clip)
