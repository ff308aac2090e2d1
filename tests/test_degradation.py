"""Statistics of LongVie 2's degradation operators and the Stage-3 loss weights."""

import numpy as np
import pytest
import torch

from model.training import degradation as d


def test_feature_degradation_probability_and_range():
    lambdas = d.dense_scales(200_000, np.random.default_rng(0)).numpy()
    degraded = lambdas < 1.0
    assert abs(degraded.mean() - 0.15) < 0.005
    assert lambdas[degraded].min() >= 0.05 and lambdas[degraded].max() <= 1.0
    assert abs(lambdas[degraded].mean() - 0.525) < 0.01  # uniform on [0.05, 1]


def test_data_degradation_probability_and_kinds():
    rng = np.random.default_rng(1)
    video = torch.rand(1, 3, 2, 32, 32)
    kinds = [d.degrade_dense(video, rng)[1] for _ in range(4000)]
    applied = [k for k in kinds if k != "none"]
    assert abs(len(applied) / len(kinds) - 0.1) < 0.015
    fusion = sum(k == "fusion" for k in applied) / len(applied)
    assert 0.4 < fusion < 0.6
    kernels = {int(k[4:]) for k in applied if k.startswith("blur")}
    assert kernels <= set(range(3, 16, 2)) and len(kernels) >= 5


def test_random_scale_fusion_blends_resampled_copies():
    rng = np.random.default_rng(2)
    constant = torch.full((1, 3, 2, 32, 32), 0.7)
    torch.testing.assert_close(d.random_scale_fusion(constant, rng), constant)  # weights sum to 1
    noise = torch.rand(1, 3, 2, 32, 32)
    fused = d.random_scale_fusion(noise, rng)
    assert fused.shape == noise.shape and fused.std() < noise.std()  # coarser scales smooth it


def test_adaptive_blur_is_an_odd_box_filter():
    impulse = torch.zeros(1, 1, 1, 9, 9)
    impulse[..., 4, 4] = 1.0
    blurred = d.adaptive_blur(impulse, 3)
    assert torch.allclose(blurred[0, 0, 0, 3:6, 3:6], torch.full((3, 3), 1 / 9))
    assert blurred.sum().item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="odd"):
        d.adaptive_blur(impulse, 4)


def test_first_frame_degradation_statistics():
    rng = np.random.default_rng(3)
    draws = [d.sample_first_frame_degradation(rng) for _ in range(40_000)]
    degraded = [x for x in draws if x.kind != "none"]
    assert abs(len(degraded) / len(draws) - 0.2) < 0.01
    encoding = [x.level for x in degraded if x.kind == "encoding"]
    generation = [x.level for x in degraded if x.kind == "generation"]
    assert abs(len(encoding) / len(degraded) - 0.2) < 0.02
    assert min(encoding) >= 1 and max(encoding) <= 10
    assert min(generation) >= 1 and max(generation) < 15
    # Milder levels are drawn more often.
    assert np.mean(np.array(generation) <= 3) > np.mean(np.array(generation) >= 11) * 2
    assert encoding.count(1) > encoding.count(10) * 3


def test_degrade_first_frame_applies_the_operator():
    latent = torch.randn(1, 16, 1, 4, 4)
    calls = {"encode": 0, "decode": 0}

    def encode(x):
        calls["encode"] += 1
        return x * 0.9

    def decode(x):
        calls["decode"] += 1
        return x

    rounds = d.degrade_first_frame(latent, d.FirstFrameDegradation("encoding", 3), encode, decode, None)
    assert calls == {"encode": 3, "decode": 3} and torch.allclose(rounds, latent * 0.9**3)
    seen = {}

    def denoise(noisy, sigma):
        seen["sigma"] = sigma
        return noisy

    d.degrade_first_frame(latent, d.FirstFrameDegradation("generation", 12), encode, decode, denoise)
    assert seen["sigma"] == pytest.approx(0.012)
    assert d.degrade_first_frame(latent, d.FirstFrameDegradation("none"), encode, decode, denoise) is latent


def test_boundary_weights_and_history_losses():
    assert d.boundary_weights(5).tolist() == pytest.approx([0.05, 0.325, 0.757, 1.0, 1.0])
    assert d.boundary_weights(2).tolist() == pytest.approx([0.05, 0.325])
    gt = torch.randn(1, 16, 3, 8, 8)
    terms = d.history_losses(gt, gt, gt[:, :, :1], gt[:, :, :1])
    assert all(float(v) == pytest.approx(0.0, abs=1e-10) for v in terms.values())
    # A smooth offset changes the low frequencies only, a checkerboard the high ones only.
    offset = d.history_losses(gt + 1.0, gt, gt[:, :, :1], None)
    assert offset["deg"] > 0.5 and offset["gt"] < 1e-6 and offset["cons"] == 0
    checker = torch.ones(8, 8)
    checker[::2, ::2] = checker[1::2, 1::2] = -1
    high = d.history_losses(gt + checker, gt, gt[:, :, :1], None)
    assert high["gt"] > 0.5 and high["deg"] < 1e-6
    total = d.weighted_history_loss(torch.tensor(1.0), {"deg": torch.tensor(1.0), "gt": torch.tensor(1.0), "cons": torch.tensor(1.0)})
    assert float(total) == pytest.approx(1 + 0.2 + 0.15 + 0.5)


def test_consistency_loss_only_against_a_history_of_the_first_frame_alone():
    predicted = torch.zeros(1, 16, 3, 8, 8)
    one = d.history_losses(predicted, predicted, predicted[:, :, :1], torch.ones(1, 16, 1, 8, 8))
    assert float(one["cons"]) == pytest.approx(1.0)
    # Two latent frames: the last encodes a 4-frame chunk, not the frame z_hat[0] encodes, so L_cons is left out.
    chunked = d.history_losses(predicted, predicted, predicted[:, :, :1], torch.ones(1, 16, 2, 8, 8))
    assert float(chunked["cons"]) == 0.0
