"""Which floating-point precision to compute in, decided by what the device does well.

Many CPUs have no native bfloat16: on an AVX2-only AMD EPYC of these machines a bf16 matmul ran at 0.28 GFLOP/s
against 53 in float32 and a bf16 Conv3d 24x slower than float32, so a bf16 default made every clip take minutes.
On a CPU with AVX512-BF16 or AMX, bf16 is 2-10x faster than float32. So the default is ``"auto"``: bfloat16
only where it is measurably faster here.

* :data:`PRECISIONS` and :func:`parse_precision`: the one place ``"auto" | "bf16" | "fp32"`` is checked.
* :func:`resolve_precision`: the one function that decides; returns the autocast dtype (``torch.bfloat16``) or
  ``None`` for plain float32. On CPU it runs :func:`bf16_speedup` once per process (a probe of a matmul and a
  Conv3d in both precisions: ~20 ms where bf16 is emulated, ~70 ms where it is native). An explicit ``"bf16"``
  is honoured, with one warning if the probe says it is slower here.
* :func:`precision_name`: the name of a resolved dtype, for logs, side files and benchmark output.
* :func:`autocast_context`: the context a resolved dtype computes under (autocast, or nothing for float32).
"""

from __future__ import annotations

import functools
import time
import warnings
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    import torch

# torch is imported inside the functions: the CLI builds its parsers from this module without loading torch.
PRECISIONS = ("auto", "bf16", "fp32")
# bf16 must beat float32 by this factor on both probes to be chosen automatically ("clearly faster").
AUTO_BF16_MIN_SPEEDUP = 1.2
# A first look at small ops: bf16 this much slower than float32 is emulated (no native bf16 on this CPU).
EMULATED_BF16_BELOW = 0.2


def parse_precision(value: str | None) -> str:
    """``value`` checked against :data:`PRECISIONS` (``None`` means ``"auto"``); a ValueError names the choices."""
    if value is None:
        return "auto"
    if not isinstance(value, str) or value not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {value!r}")
    return value


@dataclass(frozen=True)
class Bf16Probe:
    """How much faster bfloat16 computed than float32 on this CPU (``> 1``: faster), per kind of operation."""

    matmul: float
    conv3d: float
    threads: int

    @property
    def faster(self) -> bool:
        return min(self.matmul, self.conv3d) >= AUTO_BF16_MIN_SPEEDUP

    def describe(self) -> str:
        import torch

        return (f"bf16 vs float32 on this CPU ({torch.backends.cpu.get_cpu_capability()}, {self.threads} threads): "
                f"matmul {_ratio(self.matmul)}, Conv3d {_ratio(self.conv3d)}")


def _ratio(speedup: float) -> str:
    return f"{speedup:.1f}x faster" if speedup >= 1 else f"{1 / speedup:.0f}x slower"


def _seconds(fn, budget: float = 0.01, max_repeats: int = 50) -> float:
    """Best time of ``fn`` over repeats filling ``budget`` seconds (at least 2): slow ops are timed twice,
    fast ones often enough that the best is not noise."""
    fn()  # warm-up: oneDNN picks its kernels on the first call
    best, spent, repeats = float("inf"), 0.0, 0
    while repeats < 2 or (spent < budget and repeats < max_repeats):
        tick = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - tick
        best, spent, repeats = min(best, elapsed), spent + elapsed, repeats + 1
    return max(best, 1e-7)


def _speedups(matmul_size: int, conv_channels: int, conv_shape: tuple[int, int, int], budget: float) -> tuple[float, float]:
    import torch

    a = torch.randn(matmul_size, matmul_size)
    b = a.bfloat16()
    matmul = _seconds(lambda: a @ a, budget) / _seconds(lambda: b @ b, budget)
    conv = torch.nn.Conv3d(conv_channels, conv_channels, 3, padding=1)
    video = torch.randn(1, conv_channels, *conv_shape)

    def conv_bf16():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            conv(video)

    return matmul, _seconds(lambda: conv(video), budget) / _seconds(conv_bf16, budget)


@functools.lru_cache(maxsize=None)
def _probe(threads: int) -> Bf16Probe:
    import torch

    with torch.no_grad():
        # 1. Small ops, timed twice: emulated bf16 (~1 GFLOP/s) shows itself here within ~20 ms, 10-80x slower
        #    than float32. Native bf16 is never that slow, though call overheads can make it 2-3x slower on
        #    ops this small (measured), so only a clear gap decides here.
        matmul, conv3d = _speedups(128, 16, (2, 16, 16), budget=0.0)
        if min(matmul, conv3d) >= EMULATED_BF16_BELOW:
            # 2. Plausibly native: ops large enough that the kernels, not call overheads, are compared.
            matmul, conv3d = _speedups(512, 32, (4, 32, 32), budget=0.01)
    return Bf16Probe(matmul=matmul, conv3d=conv3d, threads=threads)


def bf16_speedup() -> Bf16Probe:
    """The CPU probe, measured once per process and thread count."""
    import torch

    return _probe(torch.get_num_threads())


_warned: set[str] = set()


def resolve_precision(value: str | None = "auto", device: str | torch.device = "cpu") -> torch.dtype | None:
    """The autocast dtype for ``value`` on ``device``: ``torch.bfloat16``, or ``None`` (compute in float32).

    ``"auto"``: bf16 on a CUDA device that supports it, and on a CPU where the probe finds bf16 clearly faster
    than float32; float32 everywhere else. ``"bf16"`` and ``"fp32"`` are honoured as given.
    """
    import torch

    value = parse_precision(value)
    kind = torch.device(device).type
    if value == "fp32":
        return None
    if kind == "cuda":
        if value == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
        return torch.bfloat16
    if kind != "cpu":
        return torch.bfloat16 if value == "bf16" else None
    probe = bf16_speedup()
    if value == "auto":
        return torch.bfloat16 if probe.faster else None
    if not probe.faster and "bf16" not in _warned:
        _warned.add("bf16")
        warnings.warn(f"precision='bf16' was asked for, but {probe.describe()}; precision='auto' or 'fp32' "
                      "would be faster here", RuntimeWarning, stacklevel=2)
    return torch.bfloat16


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device`` if this machine has it; a ValueError naming what it has otherwise."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda', got {device!r} ({error})") from None
    available = ["cpu"]
    if torch.cuda.is_available():
        available += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if parsed.type == "cpu":
        return parsed
    if parsed.type == "cuda" and torch.cuda.is_available() and (parsed.index or 0) < torch.cuda.device_count():
        return parsed
    cuda = ("this torch has no CUDA (a CPU build)" if torch.version.cuda is None
            else f"torch {torch.__version__} finds {torch.cuda.device_count()} CUDA devices")
    raise ValueError(f"device {str(device)!r} is not available here ({cuda}); available: {', '.join(available)}")


def precision_name(dtype: torch.dtype | None) -> str:
    """``"bf16"`` or ``"fp32"``: what a resolved precision computes in."""
    import torch

    if dtype is None or dtype == torch.float32:
        return "fp32"
    if dtype == torch.bfloat16:
        return "bf16"
    raise ValueError(f"expected torch.bfloat16 or None (float32), got {dtype}")


def autocast_context(dtype: torch.dtype | None, device: str | torch.device = "cpu") -> AbstractContextManager:
    """``torch.autocast`` to ``dtype`` on ``device``'s kind, or a no-op for ``None`` (float32, or whatever an
    enclosing autocast says)."""
    if dtype is None:
        return nullcontext()
    import torch

    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def add_precision_argument(parser: "argparse.ArgumentParser") -> None:
    """``--precision auto|bf16|fp32`` (default auto), as every ``lv2`` command and benchmark takes it."""
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="auto (default): bfloat16 only where this device computes it faster than float32 "
                        "(a short probe on CPU); bf16; fp32")
