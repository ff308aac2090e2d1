"""Precision chosen by what the machine does well, torch threads per process, and kernels that need neither."""

import os
import warnings

import gymnasium as gym
import pytest
import torch

import lv2_env  # noqa: F401  (registers LV2/)
from lv2_env.envs.threads import apply_torch_threads, available_cores, check_torch_threads, sibling_workers
from model import precision
from model.precision import Bf16Probe, parse_precision, precision_name, resolve_precision


@pytest.fixture
def fake_probe(monkeypatch):
    """Make the CPU probe report a chosen bf16 speed-up, and forget earlier warnings."""

    def set_speedup(matmul: float, conv3d: float) -> None:
        monkeypatch.setattr(precision, "bf16_speedup", lambda: Bf16Probe(matmul, conv3d, torch.get_num_threads()))
        monkeypatch.setattr(precision, "_warned", set())

    return set_speedup


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_parse_precision_accepts_the_three_choices_and_names_them_otherwise():
    assert [parse_precision(p) for p in ("auto", "bf16", "fp32", None)] == ["auto", "bf16", "fp32", "auto"]
    for bad in ("float16", "BF16", "", 16):
        with pytest.raises(ValueError, match=r"precision must be one of \['auto', 'bf16', 'fp32'\]"):
            parse_precision(bad)


def test_auto_takes_bf16_only_where_the_probe_finds_it_clearly_faster(fake_probe):
    fake_probe(matmul=4.0, conv3d=2.2)  # AVX512-BF16 / AMX
    assert resolve_precision("auto") is torch.bfloat16
    fake_probe(matmul=0.005, conv3d=0.04)  # AVX2 only: emulated bf16
    assert resolve_precision("auto") is None
    fake_probe(matmul=3.0, conv3d=1.05)  # matmul faster, convolutions not clearly: float32
    assert resolve_precision("auto") is None


def test_explicit_choices_are_honoured_and_slow_bf16_warns_once_with_the_ratio(fake_probe):
    fake_probe(matmul=0.005, conv3d=0.04)
    assert resolve_precision("fp32") is None
    with pytest.warns(RuntimeWarning, match=r"matmul 200x slower, Conv3d 25x slower"):
        assert resolve_precision("bf16") is torch.bfloat16
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("bf16") is torch.bfloat16  # once per process
    fake_probe(matmul=4.0, conv3d=2.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_precision("bf16") is torch.bfloat16  # fast here: no warning


def test_the_real_probe_is_quick_and_measures_both_kinds_of_op():
    import time

    precision._probe.cache_clear()
    tick = time.perf_counter()
    probe = precision.bf16_speedup()
    assert time.perf_counter() - tick < 1.0  # "a few tens of milliseconds" on both kinds of CPU measured
    assert probe.matmul > 0 and probe.conv3d > 0 and probe.threads == torch.get_num_threads()
    assert precision.bf16_speedup() is probe  # once per process
    assert precision_name(resolve_precision("auto")) == ("bf16" if probe.faster else "fp32")


def test_precision_names():
    assert precision_name(None) == "fp32" and precision_name(torch.float32) == "fp32"
    assert precision_name(torch.bfloat16) == "bf16"
    with pytest.raises(ValueError, match="float16"):
        precision_name(torch.float16)


def test_world_env_reports_the_precision_in_use_and_refuses_unknown_ones(world_checkpoint, fake_probe):
    fake_probe(matmul=0.005, conv3d=0.04)
    env = gym.make("LV2/World-v0", checkpoint=str(world_checkpoint), preset="test")
    assert env.unwrapped.precision == "fp32"
    with pytest.warns(RuntimeWarning, match="slower"):
        bf16 = gym.make("LV2/World-v0", checkpoint=str(world_checkpoint), preset="test", precision="bf16")
    assert bf16.unwrapped.precision == "bf16"
    with pytest.raises(ValueError, match=r"precision must be one of \['auto', 'bf16', 'fp32'\], got 'half'"):
        gym.make("LV2/World-v0", checkpoint=str(world_checkpoint), preset="test", precision="half")


def test_torch_threads_are_checked_and_applied(world_checkpoint, restore_threads):
    for bad in (0, -2, 1.5, "2", True):
        with pytest.raises(ValueError, match=r"torch_threads must be an integer >= 1"):
            check_torch_threads(bad)
    with pytest.raises(ValueError, match=r"torch_threads must be an integer >= 1 .* got 0"):
        gym.make("LV2/GroundTruth-v0", torch_threads=0)
    env = gym.make("LV2/World-v0", checkpoint=str(world_checkpoint), preset="test", torch_threads=1)
    env.reset(seed=0)
    assert torch.get_num_threads() == 1 and env.unwrapped.torch_threads == 1
    torch.set_num_threads(available_cores())
    assert apply_torch_threads(None) == available_cores()  # a main process keeps all of its cores
    torch.set_num_threads(1)
    assert apply_torch_threads(None) == 1  # and a limit its user set (a job beside another) stays
    assert sibling_workers() == 1


def _threads_of_async_workers(workers: int, context: str | None) -> list[int]:
    vec = gym.vector.AsyncVectorEnv([lambda: gym.make("lv2_env:LV2/GroundTruth-v0")] * workers, context=context)
    try:
        vec.reset(seed=0)
        return list(vec.get_attr("torch_threads"))
    finally:
        vec.close()


def _share(workers: int) -> int:
    """A fresh worker's threads: its share of the cores, or less if OMP_NUM_THREADS says so."""
    share = max(1, available_cores() // workers)
    return min(share, int(os.environ["OMP_NUM_THREADS"])) if os.environ.get("OMP_NUM_THREADS") else share


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_subprocess_workers_share_the_cores(workers):
    expected = _share(workers)
    assert _threads_of_async_workers(workers, "forkserver") == [expected] * workers


def test_forked_workers_compute_with_one_thread_and_do_not_hang(restore_threads):
    torch.randn(256, 256) @ torch.randn(256, 256)  # the parent's OpenMP pool exists: >1 thread would hang
    assert _threads_of_async_workers(1, "fork") == [1]


def test_sb3_subproc_workers_share_the_cores():
    from stable_baselines3.common.vec_env import SubprocVecEnv

    vec = SubprocVecEnv([lambda: gym.make("lv2_env:LV2/GroundTruth-v0")] * 2, start_method="forkserver")
    try:
        vec.reset()
        assert vec.get_attr("torch_threads") == [_share(2)] * 2
    finally:
        vec.close()


def test_vae_float32_inference_through_onednn_equals_the_stock_kernel():
    from model.presets import TINY_TRAINING
    from model.vae import VideoVAE

    torch.manual_seed(0)
    vae = VideoVAE.from_config(**TINY_TRAINING.vae).eval()
    video = torch.rand(1, 3, 5, 64, 64) * 2 - 1
    with torch.no_grad():
        latents = vae.encode(video)
        fast = vae.decode(latents)
    with torch.enable_grad():  # gradients on: the stock kernels (as in training)
        stock_latents = vae.encode(video)
        stock = vae.decode(stock_latents)
    torch.testing.assert_close(latents, stock_latents.detach(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(fast, stock.detach(), atol=1e-4, rtol=1e-4)


def test_attention_norms_run_in_float32_without_a_dtype_warning():
    from model.transformer import Float32RMSNorm

    norm = Float32RMSNorm(64, eps=1e-6)
    torch.nn.init.normal_(norm.weight)
    x = torch.randn(2, 7, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's "Mismatch dtype between input and weight" would raise here
        out = norm(x.bfloat16())
    assert out.dtype == torch.bfloat16
    expected = torch.nn.functional.rms_norm(x.bfloat16().float(), (64,), norm.weight, 1e-6)
    torch.testing.assert_close(out.float(), expected, atol=2e-2, rtol=1e-2)


def test_a_bf16_world_step_prints_no_warning(world_checkpoint):
    env = gym.make("LV2/World-v0", checkpoint=str(world_checkpoint), preset="test", precision="bf16")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env.reset(seed=0)
        env.step(1)
    messages = [str(w.message) for w in caught if not issubclass(w.category, RuntimeWarning)]
    assert not [m for m in messages if "Mismatch dtype" in m], messages
    transformer = env.unwrapped.model.checkpoint.transformer
    assert not [m for m in transformer.modules() if type(m) is torch.nn.RMSNorm]
