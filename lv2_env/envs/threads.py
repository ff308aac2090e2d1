"""How many torch threads an environment's process computes with.

Two torch processes at 2 threads each on 2 cores slowed each other 30-100x (OpenMP threads spinning against
each other): a float32 World-v0 step took 73-100 s instead of ~3 s. That is what a subprocess vector env
(gymnasium's ``AsyncVectorEnv``, ``gymnasium.make_vec(..., vectorization_mode="async")``, SB3's
``SubprocVecEnv``) does if every worker keeps torch's default of one thread per core. So by default an env
gives its process at most ``max(1, cores // workers)`` threads, where ``cores`` are the cores this process may run on
and ``workers`` the multiprocessing workers started beside it (1 in an ordinary process); ``torch_threads=N``
overrides it.

A worker *forked* from a process that has already run torch gets one thread: libgomp's thread pool does not
survive ``fork``, and the child's first parallel op with two or more threads hangs for ever (measured with
torch 2.13: a matmul in the child of a parent that had run one). gymnasium's ``AsyncVectorEnv`` forks on Linux
by default; ``context="forkserver"`` or ``"spawn"`` (SB3's ``SubprocVecEnv`` default) gives workers their share.
"""

from __future__ import annotations

import multiprocessing
import os
import warnings

import torch

# A fork child inherits this module's state from its parent, so a pid other than this one means "forked".
_IMPORTED_IN = os.getpid()

# Helper processes of multiprocessing that are children of the same parent but do no env work.
_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver", "multiprocessing.semaphore_tracker")


def _is_helper(command: str, parent_command: str) -> bool:
    # Under forkserver the workers are forked from the fork server and carry its command line.
    return command != parent_command and any(helper in command for helper in _HELPERS)


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def sibling_workers() -> int:
    """Worker processes started by multiprocessing beside this one, this one included; 1 in a main process.

    The workers of a vector env are the children of one process (the main process under ``fork`` and
    ``spawn``, the fork server under ``forkserver``); multiprocessing's own helpers among them are not counted.
    """
    if multiprocessing.parent_process() is None:
        return 1
    import psutil

    try:
        parent = psutil.Process().parent()
        if parent is None:
            return 1
        parent_command = " ".join(parent.cmdline())
        workers = 0
        for child in parent.children():
            try:
                if not _is_helper(" ".join(child.cmdline()), parent_command):
                    workers += 1
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return max(1, workers)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 1


def check_torch_threads(torch_threads: int | None) -> int | None:
    """``torch_threads`` checked: ``None`` (decide from the cores and workers) or an integer >= 1."""
    if torch_threads is None:
        return None
    if isinstance(torch_threads, bool) or not isinstance(torch_threads, int) or torch_threads < 1:
        raise ValueError(f"torch_threads must be an integer >= 1 or None (one share of the cores per worker), "
                         f"got {torch_threads!r}")
    return torch_threads


def forked() -> bool:
    """Whether this process was forked from the one that imported torch and this module."""
    return os.getpid() != _IMPORTED_IN


def default_torch_threads() -> int:
    """``max(1, cores // workers)``: this process's share of the cores; 1 in a forked process."""
    if forked():
        return 1
    return max(1, available_cores() // sibling_workers())


def apply_torch_threads(torch_threads: int | None = None) -> int:
    """Set torch's intra-op threads to ``torch_threads``, or by default lower them to this process's share of
    the cores (never raise them: ``OMP_NUM_THREADS=1`` or ``torch.set_num_threads(1)`` set by the user for a job
    beside another one stays in force); returns the number in force."""
    threads = check_torch_threads(torch_threads) or min(torch.get_num_threads(), default_torch_threads())
    if threads > 1 and forked():
        warnings.warn(f"torch_threads={threads} in a forked worker: torch's OpenMP pool does not survive fork and "
                      "may hang; start the workers with context='forkserver' or 'spawn'", RuntimeWarning, stacklevel=2)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads
