"""Depth estimators (tiny U-Net, Depth Anything from a local directory) and the `depth` training stage."""

import json
import math
import socket

import numpy as np
import pytest
import torch

from lv2_env.data.procedural import SequenceSpec, build_procedural
from model.depth import (
    DepthAnythingEstimator,
    DepthEstimator,
    TinyDepthConfig,
    TinyDepthEstimator,
    TinyDepthNet,
    disparity_to_depth,
    load_depth_estimator,
)
from model.training.depth_stage import (
    DepthObjective,
    DepthStage,
    DepthStageConfig,
    evaluate_estimator,
    held_out_frames,
)
from model.metrics import depth_metrics
from model.training.loop import LoopConfig, train

SPEC = SequenceSpec(height=32, width=32, frames=5, clips_per_sequence=1, history_frames=4)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("depth")
    build_procedural(root / "train", "train", 1, SPEC, progress=False)
    return root / "train"


def _frames(n=3, h=37, w=50, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _trained_like_net(seed=0):
    """A net whose output varies with the input (a fresh head is zero: constant 10 m everywhere)."""
    torch.manual_seed(seed)
    net = TinyDepthNet(TinyDepthConfig(channels=[8, 16, 32], groups=4))
    torch.nn.init.normal_(net.head.weight, std=0.1)
    return net


def test_tiny_net_shapes_any_size_and_initial_depth():
    net = TinyDepthNet()
    params = sum(p.numel() for p in net.parameters())
    assert 100_000 < params < 1_000_000, params
    for h, w in ((32, 32), (37, 50), (8, 8)):
        out = net(torch.zeros(2, 3, h, w))
        assert out.shape == (2, h, w)
    assert torch.allclose(out, torch.full_like(out, math.log(10.0)))  # the head starts at 10 m
    with pytest.raises(ValueError, match=r"expected images \[B, 3, H, W\]"):
        net(torch.zeros(2, 4, 8, 8))
    with pytest.raises(ValueError, match="multiple of groups"):
        TinyDepthConfig(channels=[12, 16], groups=8)


def test_tiny_estimator_protocol_batching_and_autocast():
    estimator = TinyDepthEstimator(_trained_like_net(), batch_size=2)
    assert isinstance(estimator, DepthEstimator)
    frames = _frames()
    depth = estimator(frames)
    assert depth.shape == (3, 37, 50) and depth.dtype == np.float32
    assert np.all(depth > 0) and np.all(np.isfinite(depth)) and depth.std() > 0
    np.testing.assert_allclose(TinyDepthEstimator(estimator.net, batch_size=3)(frames), depth, rtol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        np.testing.assert_array_equal(estimator(frames), depth)  # float32 whatever the ambient autocast
    assert estimator(frames[:0]).shape == (0, 37, 50)
    with pytest.raises(ValueError, match="expected uint8 frames"):
        estimator(frames.astype(np.float32))
    with pytest.raises(ValueError, match=r"expected frames \[N, H, W, 3\]"):
        estimator(frames[0])


def test_save_load_round_trip(tmp_path):
    estimator = TinyDepthEstimator(_trained_like_net())
    estimator.net.save_pretrained(tmp_path / "depth")
    assert {p.name for p in (tmp_path / "depth").iterdir()} == {"config.json", "model.safetensors"}
    loaded = load_depth_estimator(tmp_path / "depth")
    assert isinstance(loaded, TinyDepthEstimator) and loaded.net.config == estimator.net.config
    frames = _frames(seed=1)
    np.testing.assert_array_equal(loaded(frames), estimator(frames))
    with pytest.raises(ValueError, match="expected config.json and model.safetensors"):
        TinyDepthNet.from_pretrained(tmp_path / "missing")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="expected a TinyDepthNet"):
        load_depth_estimator(tmp_path / "other")


def test_disparity_to_depth_is_relative_inverse():
    disparity = np.array([[[0.0, 1.0], [3.0, 9.0]]])
    depth = disparity_to_depth(disparity, eps=0.01)
    assert depth.dtype == np.float32
    assert depth.max() == pytest.approx(100.0) and depth.min() == pytest.approx(1.0)  # [1, 1 / eps]
    assert np.all(np.diff(depth.ravel()) < 0)  # larger disparity = nearer
    np.testing.assert_allclose(disparity_to_depth(5 * disparity + 2), depth, rtol=1e-6)  # affine-invariant
    np.testing.assert_array_equal(disparity_to_depth(np.full((2, 3, 3), 0.5)), np.ones((2, 3, 3)))


def test_depth_metrics_perfect_and_scaled():
    target = np.random.default_rng(0).uniform(1.0, 150.0, (3, 8, 8))
    assert depth_metrics(target, target) == pytest.approx({"abs_rel": 0.0, "abs_rel_unscaled": 0.0, "delta1": 1.0,
                                                           "delta1_unscaled": 1.0})
    scores = depth_metrics(2 * target, target)
    assert scores["abs_rel"] == pytest.approx(0.0, abs=1e-12) and scores["delta1"] == 1.0
    assert scores["abs_rel_unscaled"] == pytest.approx(1.0) and scores["delta1_unscaled"] == 0.0
    assert depth_metrics(1.2 * target, target)["delta1_unscaled"] == 1.0
    with pytest.raises(ValueError, match="one shape"):
        depth_metrics(target[:2], target)


def test_objective_masks_invalid_depth():
    objective = DepthObjective(_trained_like_net())
    depth = torch.full((2, 16, 16), 5.0)
    depth[0, 0, :4] = torch.tensor([0.0, float("inf"), float("nan"), -1.0])
    loss, metrics = objective(torch.zeros(2, 3, 16, 16), depth)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(v) for v in metrics.values())
    assert all(torch.isfinite(p.grad).all() for p in objective.parameters() if p.grad is not None)


def test_evaluate_on_a_perfect_prediction(data):
    stage = DepthStage(data, data, DepthStageConfig(batch_size=2, crop=16, eval_frames=4))
    rgb, depth = held_out_frames(stage.eval_set, 4)
    assert rgb.shape == (4, 32, 32, 3) and depth.shape == (4, 32, 32)
    truth = {frame.tobytes(): d for frame, d in zip(rgb, depth)}

    def oracle(frames: np.ndarray) -> np.ndarray:
        return np.stack([truth[frame.tobytes()] for frame in frames]).astype(np.float32)

    stage.estimator = lambda: oracle
    assert stage.evaluate(0) == pytest.approx({"abs_rel": 0.0, "abs_rel_unscaled": 0.0, "delta1": 1.0,
                                               "delta1_unscaled": 1.0})
    assert evaluate_estimator(lambda f: 3 * oracle(f), rgb, depth)["abs_rel_unscaled"] == pytest.approx(2.0)


def test_stage_batches(data):
    stage = DepthStage(data, None, DepthStageConfig(batch_size=3, crop=16))
    batch = stage.batch(np.random.default_rng(0), 0)
    assert batch["images"].shape == (3, 3, 16, 16) and batch["depth"].shape == (3, 16, 16)
    assert batch["images"].min() >= -1 and batch["images"].max() <= 1 and batch["depth"].min() > 0
    assert stage.evaluate(0) == {}
    whole = DepthStage(data, None, DepthStageConfig(batch_size=1, crop=0)).batch(np.random.default_rng(0), 0)
    assert whole["depth"].shape == (1, 32, 32)
    with pytest.raises(ValueError, match="at most the frame size"):
        DepthStage(data, None, DepthStageConfig(crop=48))


def _fixed_batch_loss(stage, seed=123):
    batch = stage.batch(np.random.default_rng(seed), step=10**6)
    with torch.no_grad():
        return float(stage.module()(**batch)[0])


def test_training_lowers_the_loss_and_exports(data, tmp_path):
    config = DepthStageConfig(batch_size=4, crop=24, eval_frames=4, net=TinyDepthConfig(channels=[8, 16, 32], groups=4))
    stage = DepthStage(data, data, config)
    before = _fixed_batch_loss(stage)
    train(stage, LoopConfig(out=tmp_path, steps=30, lr=1e-2, warmup_steps=2, checkpoint_every=30, eval_every=15,
                            log_every=5, progress=False, precision="fp32"))
    after = _fixed_batch_loss(stage)
    assert after < 0.6 * before, f"loss on a fixed batch went {before:.4f} -> {after:.4f}"
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "eval/abs_rel" in r] == [15, 30]
    exported = TinyDepthEstimator.from_pretrained(tmp_path / "final" / "depth")
    frames = _frames(2, 32, 32)
    np.testing.assert_array_equal(exported(frames), stage.estimator()(frames))
    resumed = DepthStage(data, None, config, init=tmp_path / "final")  # fine-tuning starts from the export
    np.testing.assert_array_equal(resumed.estimator()(frames), stage.estimator()(frames))


def test_depth_anything_from_a_local_tiny_checkpoint(tmp_path, monkeypatch):
    transformers = pytest.importorskip("transformers")
    if not hasattr(transformers, "DepthAnythingConfig"):
        pytest.skip(f"transformers {transformers.__version__} has no Depth Anything")
    torch.manual_seed(0)
    backbone = transformers.Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2,
                                         image_size=28, patch_size=14, out_features=["stage1", "stage2"],
                                         reshape_hidden_states=False)
    config = transformers.DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=32, patch_size=14,
                                              neck_hidden_sizes=[8, 16], reassemble_factors=[2, 1],
                                              fusion_hidden_size=8, head_hidden_size=8)
    model = transformers.DepthAnythingForDepthEstimation(config)
    model.head.conv3.bias.data.fill_(0.5)  # a random head can be all-ReLU-zero; make the disparity positive
    model.save_pretrained(tmp_path)
    processor_class = getattr(transformers, "DPTImageProcessorPil", None) or transformers.DPTImageProcessor
    processor = processor_class(do_resize=True, size={"height": 28, "width": 28}, keep_aspect_ratio=True,
                                ensure_multiple_of=14, do_normalize=True, image_mean=[0.485, 0.456, 0.406],
                                image_std=[0.229, 0.224, 0.225])
    processor.save_pretrained(tmp_path)

    def refuse(*args, **kwargs):
        raise OSError("network access refused in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    estimator = DepthAnythingEstimator.from_pretrained(tmp_path, batch_size=2)
    assert isinstance(estimator, DepthEstimator) and not estimator.metric
    frames = _frames(3, 40, 50)
    raw = estimator.predict(frames)
    assert raw.shape == (3, 40, 50) and raw.dtype == np.float32
    depth = estimator(frames)
    assert depth.shape == (3, 40, 50) and depth.dtype == np.float32
    assert np.all(np.isfinite(depth)) and depth.min() >= 1.0 - 1e-5 and depth.max() <= 100.0 + 1e-3
    np.testing.assert_allclose(depth, disparity_to_depth(raw), rtol=1e-6)
    assert isinstance(load_depth_estimator(tmp_path), DepthAnythingEstimator)
    (tmp_path / "preprocessor_config.json").unlink()
    with pytest.raises(ValueError, match="no preprocessor_config.json"):
        DepthAnythingEstimator.from_pretrained(tmp_path)
