"""The LongVie 2 control DiT, the sampler and the long-video generator on small shapes."""

import dataclasses
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from model.generator import HistoryBuffer, LongVideoGenerator, history_frames_for
from model.pipeline import HISTORY_NOISE_BLEND, SamplingOptions, denoise, first_frame_mask, unified_noise
from model.presets import PRESETS, TINY_SHIPPED, TINY_TRAINING, WAN21_I2V_14B_480P, get_preset
from model.transformer import LongVieTransformer
from model.vae import VideoVAE, frames_to_tensor, tensor_to_frames

B, T, H, W = 2, 3, 8, 8
ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "model" / "shipped"


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return LongVieTransformer(**TINY_TRAINING.transformer).eval()


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, 16, T, H, W, generator=g)
    cond = torch.randn(B, 20, T, H, W, generator=g)
    ctx = torch.randn(B, 6, 64, generator=g)
    controls = {"dense": torch.randn(B, 16, T, H, W, generator=g), "sparse": torch.randn(B, 16, T, H, W, generator=g)}
    return x, torch.tensor([700.0, 50.0]), ctx, cond, controls


def _perturb_fusion(model: LongVieTransformer, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in [*model.control.initial_linears.values(), *model.control.combine_linears]:
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * 0.05)


@torch.no_grad()
def test_zero_initialised_model_equals_its_base_exactly(tiny):
    x, t, ctx, cond, controls = _inputs()
    base_out = tiny.base(torch.cat([x, cond], dim=1), t, ctx, return_dict=False)[0]
    out = tiny(x, t, ctx, cond, controls=controls, control_scales={"dense": 0.4})
    assert torch.equal(out, base_out)
    assert torch.equal(tiny(x, t, ctx, cond, controls=None), base_out)


def test_half_copy_takes_alternate_channels_of_the_base_blocks():
    model = LongVieTransformer(**TINY_TRAINING.transformer)
    model.init_control_from_base()
    base_q = model.base.blocks[1].attn1.to_q.weight  # [128, 128]
    dense_q = model.control.branches["dense"][1].attn1.to_q.weight  # [64, 64]
    sparse_q = model.control.branches["sparse"][1].attn1.to_q.weight
    assert torch.equal(dense_q, base_q[0::2, 0::2]) and torch.equal(sparse_q, base_q[1::2, 1::2])
    base_ffn = model.base.blocks[0].ffn.net[0].proj.weight  # [512, 128]
    assert torch.equal(model.control.branches["sparse"][0].ffn.net[0].proj.weight, base_ffn[1::2, 1::2])
    table = model.base.blocks[3].scale_shift_table  # [1, 6, 128]
    assert torch.equal(model.control.branches["dense"][3].scale_shift_table, table[:, :, 0::2])
    # The fusion stays zero: still exactly the base model.
    x, t, ctx, cond, controls = _inputs()
    with torch.no_grad():
        assert torch.equal(model(x, t, ctx, cond, controls=controls),
                           model.base(torch.cat([x, cond], 1), t, ctx, return_dict=False)[0])


@torch.no_grad()
def test_dense_scale_lambda_is_the_dense_weight():
    model = LongVieTransformer(**TINY_TRAINING.transformer).eval()
    model.init_control_from_base()
    _perturb_fusion(model)
    x, t, ctx, cond, controls = _inputs()
    full = model(x, t, ctx, cond, controls=controls)
    no_dense = model(x, t, ctx, cond, controls={"sparse": controls["sparse"]})
    lam0 = model(x, t, ctx, cond, controls=controls, control_scales={"dense": 0.0})
    assert not torch.allclose(full, no_dense)
    torch.testing.assert_close(lam0, no_dense, rtol=1e-5, atol=1e-5)
    per_sample = model(x, t, ctx, cond, controls=controls, control_scales={"dense": torch.tensor([1.0, 0.0])})
    torch.testing.assert_close(per_sample[0], full[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(per_sample[1], no_dense[1], rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_history_on_and_off(tiny):
    x, t, ctx, cond, controls = _inputs()
    without = tiny(x, t, ctx, cond, controls=controls)
    empty = tiny(x, t, ctx, cond, controls=controls, history=torch.zeros(B, 16, 0, H, W))
    history = torch.randn(B, 16, 2, H, W, generator=torch.Generator().manual_seed(5))
    with_history = tiny(x, t, ctx, cond, controls=controls, history=history)
    assert torch.equal(without, empty)  # N_H = 0 is no history
    assert with_history.shape == without.shape  # history tokens are dropped before the head
    assert not torch.allclose(with_history, without)  # the clip attends to its history
    other = tiny(x, t, ctx, cond, controls=controls, history=history * 0.5)
    assert not torch.allclose(other, with_history)


@torch.no_grad()
def test_control_residual_goes_to_clip_tokens_only():
    """Between base blocks 0 and 1 the history tokens are untouched and the clip tokens get W_0(branches)."""
    model = LongVieTransformer(**TINY_TRAINING.transformer).eval()
    model.init_control_from_base()
    _perturb_fusion(model)
    x, t, ctx, cond, controls = _inputs()
    history = torch.randn(B, 16, 2, H, W)
    seen = {}
    hooks = [
        model.base.blocks[0].register_forward_hook(lambda m, a, out: seen.__setitem__("after_block_0", out)),
        model.base.blocks[1].register_forward_pre_hook(lambda m, a: seen.__setitem__("into_block_1", a[0])),
        model.control.combine_linears[0].register_forward_hook(lambda m, a, out: seen.__setitem__("residual", out)),
    ]
    out = model(x, t, ctx, cond, controls=controls, history=history)
    for hook in hooks:
        hook.remove()
    n_clip = T * (H // 2) * (W // 2)
    n_history = 2 * (H // 2) * (W // 2)
    after, into = seen["after_block_0"], seen["into_block_1"]
    assert after.shape[1] == n_history + n_clip
    assert torch.equal(into[:, :n_history], after[:, :n_history])  # no residual on history tokens
    torch.testing.assert_close(into[:, n_history:], after[:, n_history:] + seen["residual"])
    assert seen["residual"].abs().max() > 0 and out.shape == (B, 16, T, H, W)


def _wan_parameter_count(dim, ffn, layers, heads, text_dim, freq_dim, image_dim, in_ch, out_ch, patch):
    """Independent count of Wan2.1-I2V parameters from the architecture description."""
    linear = lambda i, o: i * o + o  # noqa: E731
    attn = 4 * linear(dim, dim) + 2 * dim  # q, k, v, o + RMS norms of q and k
    cross = attn + 2 * linear(dim, dim) + dim  # + image k, v and the image key norm
    block = attn + cross + 2 * dim + linear(dim, ffn) + linear(ffn, dim) + 6 * dim  # + cross norm, ffn, modulation
    patch_embed = in_ch * dim * math.prod(patch) + dim
    time = linear(freq_dim, dim) + linear(dim, dim) + linear(dim, 6 * dim)
    text = linear(text_dim, dim) + linear(dim, dim)
    image = 2 * image_dim + linear(image_dim, image_dim) + linear(image_dim, dim) + 2 * dim  # LN, MLP, LN
    head = linear(dim, out_ch * math.prod(patch)) + 2 * dim
    return layers * block + patch_embed + time + text + image + head


def test_full_preset_builds_on_meta_with_the_published_shape():
    with torch.device("meta"):
        model = LongVieTransformer(**WAN21_I2V_14B_480P.transformer)
    counts = model.num_parameters_by_part()
    expected_base = _wan_parameter_count(5120, 13824, 40, 40, 4096, 256, 1280, 36, 16, (1, 2, 2))
    assert counts["base"] == expected_base
    assert 16.3e9 < counts["base"] < 16.5e9
    # Two branches of 12 half-width blocks with image attention, plus the fusion layers: ~2.63B (published).
    branch_block = 2 * (4 * (2560 * 2560 + 2560) + 2 * 2560) + 2 * (2560 * 2560 + 2560) + 2560 + 2 * 2560
    branch_block += (2560 * 6912 + 6912) + (6912 * 2560 + 2560) + 6 * 2560
    fusion = 2 * (5120 * 2560 + 2560) + 2 * (5120 * 2560 + 2560) + 12 * (2560 * 5120 + 5120)
    assert counts["control"] == 24 * branch_block + fusion
    assert abs(counts["control"] / 1e9 - 2.63) < 0.01
    assert model.config.num_layers == 40 and model.config.control_layers == 12
    assert model.base.blocks[0].attn1.heads == 40 and model.control.branches["dense"][0].attn1.heads == 20


def _shipped_parameter_counts() -> dict[str, int]:
    """Parameters of each component the shipped model's READMEs count, as the loaded modules hold them."""
    from model.checkpoint import load_checkpoint
    from model.depth import TinyDepthNet

    checkpoint = load_checkpoint(SHIPPED)
    modules = {"transformer": checkpoint.transformer, "vae": checkpoint.vae.model,
               "depth": TinyDepthNet.from_pretrained(SHIPPED / "depth"), "text_encoder": checkpoint.text_encoder}
    return {name: sum(p.numel() for p in module.parameters()) for name, module in modules.items()}


def _millions(text: str, pattern: str) -> str:
    """The figure ``pattern`` (a regex with one group; a space in it matches any run of white space, line breaks
    included) captures in ``text``; fails naming the pattern if absent."""
    found = re.search(pattern.replace(" ", r"\s+"), text)
    assert found, f"no {pattern!r} in the README"
    return found.group(1)


def test_the_shipped_model_has_the_parameter_count_the_readmes_state():
    """README.md states the shipped model's size (6.07M when written) and model/shipped/README.md its parts: the
    figures are read from them, so a drift of either the model or the text fails here."""
    counts = _shipped_parameter_counts()
    readme = (ROOT / "README.md").read_text()
    stated = _millions(readme, r"model \(`model/shipped/`[^)]*?(\d+\.\d+)M parameters\)")
    assert f"{sum(counts.values()) / 1e6:.2f}" == stated, (counts, stated)
    parts = (SHIPPED / "README.md").read_text()
    assert _millions(parts, r"(\d+\.\d+)M parameters \(DiT") == stated
    for name, label in (("transformer", r"DiT \+ control branches"), ("vae", "VAE"), ("depth", "depth network"),
                        ("text_encoder", "word-level text encoder")):
        assert f"{counts[name] / 1e6:.2f}" == _millions(parts, label + r" (\d+\.\d+)M"), (name, counts[name])
    # The preset builds the shipped DiT's shape.
    model = LongVieTransformer(**TINY_TRAINING.transformer)
    assert sum(model.num_parameters_by_part().values()) == counts["transformer"]


def test_presets_and_their_names():
    assert TINY_TRAINING.latent_shape == (16, 5, 16, 16)
    assert set(PRESETS) == {"tiny", "wan2.1-i2v-14b-480p"}
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("huge")


def test_the_shipped_preset_is_what_the_shipped_model_records():
    """TINY_SHIPPED equals the preset model/shipped/lv2.json records (in full and in its top-level fields) and, on
    every key it sets, each component's config.json, except the VAE's latent mean and std, which the vae stage
    measures on the training latents (the preset's zeros and ones are where it starts). TINY_TRAINING is the same
    model before training settled its sampling steps, history and conditioning."""
    as_json = lambda value: json.loads(json.dumps(value))  # noqa: E731  (tuples -> lists, as lv2.json holds them)
    meta = json.loads((SHIPPED / "lv2.json").read_text())
    assert as_json(dataclasses.asdict(TINY_SHIPPED)) == meta["preset_config"]
    assert meta["preset"] == TINY_SHIPPED.name == TINY_TRAINING.name == "tiny"
    for key in ("height", "width", "frames", "fps", "history_latent_frames", "history_frames", "control_condition",
                "sampling"):
        assert meta[key] == as_json(getattr(TINY_SHIPPED, key)), key
    measured = {"latents_mean", "latents_std"}
    for component, section in (("transformer", "transformer"), ("vae", "vae"), ("text_encoder", "text_encoder")):
        config = json.loads((SHIPPED / component / "config.json").read_text())
        wanted = {k: v for k, v in as_json(getattr(TINY_SHIPPED, section)).items() if k not in measured}
        assert {k: config.get(k) for k in wanted} == wanted, component
    differences = {k for k, v in dataclasses.asdict(TINY_SHIPPED).items() if getattr(TINY_TRAINING, k) != v}
    assert differences == {"sampling", "history_latent_frames", "trained_conditioning"}


def test_input_shape_errors_name_both_shapes(tiny):
    x, t, ctx, cond, controls = _inputs()
    with pytest.raises(ValueError, match=r"control 'dense' latent \(2, 16, 2, 8, 8\) does not match hidden_states \(2, 16, 3, 8, 8\)"):
        tiny(x, t, ctx, cond, controls={"dense": controls["dense"][:, :, :2]})
    with pytest.raises(ValueError, match="condition must be"):
        tiny(x, t, ctx, cond[:, :4])
    with pytest.raises(ValueError, match="unknown control modality 'normals'"):
        tiny(x, t, ctx, cond, controls={"normals": controls["dense"]})


def test_extra_modality_is_a_config_entry():
    config = {**TINY_TRAINING.transformer, "control_modalities": ("dense", "sparse", "warped")}
    model = LongVieTransformer(**config)
    assert set(model.control.branches) == {"dense", "sparse", "warped"}
    assert "control.initial_linears.warped.weight" in model.state_dict()


# ---------------------------------------------------------------------------------------------- sampler


def test_first_frame_mask_and_unified_noise():
    mask = first_frame_mask(5, 4, 4)
    assert mask.shape == (1, 4, 5, 4, 4) and mask[:, :, 0].eq(1).all() and mask[:, :, 1:].eq(0).all()
    noise = torch.randn(1, 16, 5, 4, 4)
    assert torch.equal(unified_noise(noise, None), noise)
    history = torch.randn(1, 16, 2, 4, 4)
    blended = unified_noise(noise, history)
    torch.testing.assert_close(blended[:, :, 0], HISTORY_NOISE_BLEND * history[:, :, -1] + (1 - HISTORY_NOISE_BLEND) * noise[:, :, 0])
    assert torch.equal(blended[:, :, 1:], noise[:, :, 1:])


class _CountingModel(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self.inner(*args, **kwargs)


def test_denoise_steps_guidance_and_determinism(tiny):
    x, _, ctx, cond, controls = _inputs()
    counting = _CountingModel(tiny)
    out = denoise(counting, x, cond, ctx, SamplingOptions(steps=3), controls=controls)
    assert counting.calls == 3 and out.shape == x.shape and torch.isfinite(out).all()
    again = denoise(tiny, x, cond, ctx, SamplingOptions(steps=3), controls=controls)
    assert torch.equal(out, again)
    counting.calls = 0
    guided = denoise(counting, x, cond, ctx, SamplingOptions(steps=3, guidance_scale=4.0), controls=controls,
                     negative_context=torch.zeros_like(ctx))
    assert counting.calls == 6 and not torch.allclose(guided, out)
    with pytest.raises(ValueError, match="negative_context"):
        denoise(tiny, x, cond, ctx, SamplingOptions(steps=1, guidance_scale=2.0))
    with pytest.raises(ValueError, match="steps"):
        SamplingOptions(steps=0)


# ---------------------------------------------------------------------------------------------- generator


class _FixedText:
    """A stand-in text encoder: a different fixed embedding per prompt."""

    def encode(self, prompts):
        return torch.stack([torch.full((4, 64), float(len(p)) / 10) for p in prompts])


def _small_generator(history_latent_frames=1, seed=0):
    torch.manual_seed(0)
    transformer = LongVieTransformer(**TINY_TRAINING.transformer)
    vae = VideoVAE.from_config(**TINY_TRAINING.vae)
    return LongVideoGenerator(transformer, vae, _FixedText(), frames=9, history_latent_frames=history_latent_frames,
                              options=SamplingOptions(steps=2), seed=seed)


def _controls(rng, frames=9, size=32):
    return {name: rng.integers(0, 255, (frames, size, size, 3), dtype=np.uint8) for name in ("dense", "sparse")}


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 / 2**20


def test_generator_chains_clips_with_bounded_history_and_flat_memory():
    generator = _small_generator(history_latent_frames=2)
    rng = np.random.default_rng(0)
    first = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    generator.reset(first)
    clip = generator.generate_clip(_controls(rng), "a sunny meadow")
    assert clip.shape == (9, 32, 32, 3) and clip.dtype == np.uint8
    assert np.array_equal(clip[0], first)
    rss = []
    for k in range(10):
        previous_last = generator.last_frame.copy()
        clip = generator.generate_clip(_controls(rng), "a snowy field" if k % 2 else "a field at dusk")
        assert np.array_equal(clip[0], previous_last)  # one shared frame between clips
        assert len(generator.history) == history_frames_for(2) == 5
        rss.append(_rss_mb())
    assert max(rss[3:]) - rss[3] < 30, f"memory grew over ten clips: {rss}"


def test_generator_is_deterministic_and_history_matters():
    rng = np.random.default_rng(1)
    first = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    controls = [_controls(rng) for _ in range(2)]
    runs = []
    for history in (1, 1, 0):
        generator = _small_generator(history_latent_frames=history)
        generator.reset(first)
        runs.append([generator.generate_clip(c, "a field") for c in controls])
    assert all(np.array_equal(a, b) for a, b in zip(runs[0], runs[1]))
    assert np.array_equal(runs[0][0], runs[2][0])  # the first clip has no history either way
    assert not np.array_equal(runs[0][1], runs[2][1])  # the second clip sees the first one's frames


def test_generator_bad_input():
    generator = _small_generator()
    rng = np.random.default_rng(2)
    with pytest.raises(RuntimeError, match="reset"):
        generator.generate_clip(_controls(rng), "x")
    generator.reset(np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match=r"control 'dense' video has \(5, 32, 32\).*but the clip is \(9, 32, 32\)"):
        generator.generate_clip({"dense": np.zeros((5, 32, 32, 3), np.uint8)}, "x")
    with pytest.raises(ValueError, match="uint8"):
        generator.reset(np.zeros((32, 32, 3), np.float32))


def test_history_buffer_is_bounded():
    buffer = HistoryBuffer(3)
    buffer.extend(np.arange(5)[:, None, None, None] * np.ones((5, 2, 2, 3), np.uint8))
    assert len(buffer) == 3 and buffer.full and buffer.frames()[:, 0, 0, 0].tolist() == [2, 3, 4]
    assert len(HistoryBuffer(0)) == 0 and history_frames_for(0) == 0 and history_frames_for(4) == 13


def test_vae_round_trip_shapes_and_normalisation():
    vae = VideoVAE.from_config(**TINY_TRAINING.vae)
    frames = np.random.default_rng(0).integers(0, 255, (5, 32, 32, 3), dtype=np.uint8)
    video = frames_to_tensor(frames)
    assert video.shape == (1, 3, 5, 32, 32) and video.min() >= -1 and video.max() <= 1
    with torch.no_grad():
        latents = vae.encode(video)
        assert latents.shape == (1, 16, 2, 4, 4)
        vae.set_latent_statistics(torch.full((16,), 0.5), torch.full((16,), 2.0))
        torch.testing.assert_close(vae.encode(video), (latents - 0.5) / 2.0)
        assert tensor_to_frames(vae.decode(vae.encode(video))).shape == (1, 5, 32, 32, 3)
    assert vae.model.config.latents_mean[0] == 0.5
    with pytest.raises(ValueError, match="4k\\+1"):
        vae.encode(torch.zeros(1, 3, 4, 32, 32))


# Measured (CPU, float32) on 9-frame clips of LV2/GroundTruth-v0 walking forward, scene seeds 0-7: the shipped VAE
# reconstructs them at 23.9-36.2 dB PSNR (32.1 for seed 1, the dusk scene below); broken VAEs score 7.1-17.0 dB
# (randomly initialised: 7.5-11.9; the shipped one with one convolution's weights shuffled, in the decoder: 7.1-17.0,
# in the encoder: 9.0-12.8). The bound sits between the two ranges.
VAE_ROUND_TRIP_MIN_PSNR = 20.0


def _world_clip(frames: int = 9) -> np.ndarray:
    """``frames`` uint8 frames [F, 128, 128, 3] of a procedural world (seed 1), walking forward."""
    import gymnasium as gym

    import lv2_env  # noqa: F401  (registers the environments)

    env = gym.make("LV2/GroundTruth-v0")
    observation, _ = env.reset(seed=1)
    clip = [observation]
    while len(clip) < frames:
        clip += list(env.step(1)[-1]["frames"])  # 1: forward
    env.close()
    return np.stack(clip[:frames])


def test_the_shipped_vae_round_trip_gives_back_the_clip():
    from model.metrics import psnr

    clip = _world_clip()
    shipped = VideoVAE.from_pretrained(SHIPPED / "vae").eval()
    torch.manual_seed(0)
    untrained = VideoVAE.from_config(**TINY_TRAINING.vae).eval()
    scores = {}
    with torch.no_grad():
        for name, vae in (("shipped", shipped), ("untrained", untrained)):
            reconstruction = tensor_to_frames(vae.decode(vae.encode(frames_to_tensor(clip))))[0]
            assert reconstruction.shape == clip.shape and reconstruction.dtype == np.uint8
            scores[name] = psnr(clip, reconstruction)
    assert scores["shipped"] > VAE_ROUND_TRIP_MIN_PSNR, scores
    assert scores["untrained"] < VAE_ROUND_TRIP_MIN_PSNR, scores  # the bound tells a broken VAE apart


def test_fast_vae_norm_matches_diffusers():
    from diffusers import AutoencoderKLWan
    from diffusers.models.autoencoders.autoencoder_kl_wan import WanRMS_norm

    torch.manual_seed(0)
    reference = AutoencoderKLWan(**TINY_TRAINING.vae)
    fast = VideoVAE(AutoencoderKLWan(**TINY_TRAINING.vae))
    fast.model.load_state_dict(reference.state_dict())
    assert not any(type(m) is WanRMS_norm for m in fast.model.modules())
    video = torch.rand(1, 3, 5, 32, 32) * 2 - 1
    with torch.no_grad():
        expected = reference.encode(video).latent_dist.mode()
        got = fast.model.encode(video).latent_dist.mode()
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
