"""The training loop every stage shares: accelerate, autocast, atomic checkpoints, resume, metrics, a loss plot.

A stage (see :class:`Stage`) says what is trained, how a batch is drawn and what the loss is; this module does
the rest the same way for all of them:

* **Distributed**: the trained module and its optimizer go through ``accelerate.Accelerator.prepare``, so the
  same code runs in one process or under ``accelerate launch`` (DDP; gloo on CPU). Each rank draws its own
  batches from its own seeded generator.
* **Checkpoints** every ``checkpoint_every`` steps under ``OUT/checkpoints/step_NNNNNNN/``: the trained
  module's weights (safetensors) and ``state.pt`` (optimizer, LR schedule, step, every RNG state). A checkpoint
  is written to a temporary directory and renamed into place, then ``OUT/checkpoints/latest`` is replaced the
  same way, so a run killed at any moment leaves the previous checkpoint whole. ``resume=True`` continues from
  ``latest`` with the same optimizer state, step and random streams; the last two checkpoints are kept.
* **Metrics**: ``OUT/metrics.jsonl`` (one JSON object per ``log_every`` steps and per evaluation) and
  ``OUT/loss.png`` (redrawn every ``plot_every`` steps, or with every checkpoint). A resumed run first drops the
  lines logged after its checkpoint (and a line cut by the kill), so the log has each step once.
* **Kill-safety**: a process killed at any moment (SIGKILL included) leaves the last complete checkpoint, a
  readable metrics log and no half-written ``final/`` (the export is written aside and renamed into place); the
  resumed run continues from that checkpoint and ends with the weights of a run that was never stopped
  (tests/test_training.py kills ``lv2 train`` at 20 moments, during checkpoint writes too).
* **Determinism**: for a seed, on CPU, a run (and a resumed run) repeats exactly.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from model.precision import autocast_context, resolve_precision
from model.training.config import LoopConfig  # defined with the other run settings; importable from here too


class Stage(Protocol):
    """What a training stage provides to :func:`train`.

    ``module()`` is an ``nn.Module`` whose ``forward(**batch)`` returns ``(loss, metrics)``; computing the loss
    inside ``forward`` is what lets DDP synchronise its gradients. Its trainable parameters are optimised and
    saved in checkpoints.
    """

    name: str

    def module(self) -> torch.nn.Module: ...

    def batch(self, rng: np.random.Generator, step: int) -> dict[str, Any]:
        """Draw a training batch with ``rng`` (each rank has its own)."""

    def evaluate(self, step: int) -> dict[str, float]:
        """Held-out metrics (called on rank 0)."""

    def export(self, directory: Path) -> None:
        """Write the stage's result in the checkpoint layout of :mod:`model.checkpoint`."""


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of tensors' exact bytes, in name order: equal digests mean bit-identical tensors."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].detach().float().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _trainable_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    names = {n for n, p in module.named_parameters() if p.requires_grad}
    return {k: v.detach().contiguous().clone() for k, v in module.state_dict().items() if k in names}


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": json.dumps(rng.bit_generator.state)}


def _set_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    rng.bit_generator.state = json.loads(state["numpy"])


def _lr_lambda(config: LoopConfig):
    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))  # cosine to 10%

    return factor


class Checkpointer:
    """Atomic checkpoints of a stage's trainable weights and loop state under ``out/checkpoints``."""

    def __init__(self, out: Path, keep: int = 2) -> None:
        self.root = Path(out) / "checkpoints"
        self.keep = keep

    @property
    def latest(self) -> Path | None:
        pointer = self.root / "latest"
        if not pointer.is_file():
            return None
        path = self.root / pointer.read_text().strip()
        return path if path.is_dir() else None

    def save(self, step: int, module: torch.nn.Module, state: dict[str, Any]) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in [*self.root.glob(".tmp-*"), *self.root.glob(".latest-*")]:  # left by killed runs
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
        name = f"step_{step:07d}"
        temporary = self.root / f".tmp-{name}-{os.getpid()}"
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir()
        save_file(_trainable_state(module), str(temporary / "weights.safetensors"))
        torch.save(state, temporary / "state.pt")
        final = self.root / name
        shutil.rmtree(final, ignore_errors=True)
        os.replace(temporary, final)
        pointer = self.root / f".latest-{os.getpid()}"
        pointer.write_text(name)
        os.replace(pointer, self.root / "latest")
        for old in sorted(p for p in self.root.glob("step_*") if p.is_dir())[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def load(self, module: torch.nn.Module) -> dict[str, Any]:
        path = self.latest
        if path is None:
            raise ValueError(f"nothing to resume: no checkpoint in {self.root} (expected {self.root / 'latest'})")
        weights = load_file(str(path / "weights.safetensors"))
        missing = set(_trainable_state(module)) - set(weights)
        if missing:
            raise ValueError(f"checkpoint {path} lacks trained weights {sorted(missing)[:5]}... of this stage's model")
        module.load_state_dict(weights, strict=False)
        return torch.load(path / "state.pt", weights_only=True)


def read_metrics(metrics_path: Path) -> list[dict[str, Any]]:
    """The rows of ``metrics.jsonl``; a last line cut by a kill is left out, and a missing file has none."""
    if not metrics_path.is_file():
        return []
    rows = []
    for line in metrics_path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break  # only the last line can be torn (lines are appended whole); nothing after it is trusted
    return rows


def _truncate_metrics(metrics_path: Path, step: int) -> None:
    """Keep the rows up to ``step`` (where a resumed run continues), rewritten atomically."""
    if metrics_path.is_file():
        kept = [json.dumps(r) + "\n" for r in read_metrics(metrics_path) if r.get("step", 0) <= step]
        temporary = metrics_path.with_suffix(".jsonl.tmp")
        temporary.write_text("".join(kept))
        os.replace(temporary, metrics_path)


def plot_metrics(metrics_path: Path, png_path: Path, keys: tuple[str, ...] = ("loss",)) -> None:
    """Loss curve (and any ``eval/*`` series) from ``metrics.jsonl`` into a PNG (nothing while no row is logged)."""
    rows = read_metrics(metrics_path)
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [r for r in rows if "loss" in r]
    evals = [r for r in rows if any(k.startswith("eval/") for k in r)]
    n_eval_keys = sorted({k for r in evals for k in r if k.startswith("eval/")})
    fig, axes = plt.subplots(1, 1 + bool(n_eval_keys), figsize=(10 if n_eval_keys else 6, 4), squeeze=False)
    ax = axes[0, 0]
    for key in keys:
        steps = [r["step"] for r in train if key in r]
        values = [r[key] for r in train if key in r]
        if values:
            ax.plot(steps, values, alpha=0.35, label=f"{key}")
            window = max(1, len(values) // 30)
            smooth = np.convolve(values, np.ones(window) / window, mode="valid")
            ax.plot(steps[window - 1 :], smooth, label=f"{key} (mean of {window})")
    ax.set_xlabel("step"), ax.set_yscale("log"), ax.set_title("training loss"), ax.legend()
    if n_eval_keys:
        ax = axes[0, 1]
        for key in n_eval_keys:
            ax.plot([r["step"] for r in evals if key in r], [r[key] for r in evals if key in r], marker="o", label=key)
        ax.set_xlabel("step"), ax.set_title("held-out"), ax.legend()
    fig.tight_layout()
    temporary = png_path.with_name(f".{png_path.name}.tmp.png")  # a viewer never sees half a PNG
    fig.savefig(temporary, dpi=100)
    plt.close(fig)
    os.replace(temporary, png_path)


def train(stage: Stage, config: LoopConfig) -> dict[str, Any]:
    """Run (or resume) a stage to ``config.steps`` and export its result to ``config.out / "final"``."""
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    torch.manual_seed(config.seed)
    rng = np.random.default_rng([config.seed, accelerator.process_index])
    config.out.mkdir(parents=True, exist_ok=True)
    module = stage.module()
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"stage {stage.name!r} has no trainable parameters")
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, betas=(0.9, 0.99))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(config))
    checkpointer = Checkpointer(config.out)

    step = 0
    if config.resume:
        state = checkpointer.load(module)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = int(state["step"])
        # The schedule follows this run's --steps (a resumed run may extend it): recompute the current LR.
        for group, base_lr in zip(optimizer.param_groups, scheduler.base_lrs):
            group["lr"] = base_lr * _lr_lambda(config)(step)
        _set_rng_state(rng, state["rng"][min(accelerator.process_index, len(state["rng"]) - 1)])
        if accelerator.is_main_process:
            _truncate_metrics(config.out / "metrics.jsonl", step)
    elif checkpointer.latest is not None:
        raise ValueError(f"{config.out} already has checkpoints; pass --resume to continue, or choose another --out")
    elif accelerator.is_main_process:
        _truncate_metrics(config.out / "metrics.jsonl", 0)  # lines of a run killed before its first checkpoint
    wrapped, optimizer = accelerator.prepare(module, optimizer)
    (config.out / "config.json").write_text(json.dumps({**asdict(config), "out": str(config.out), "stage": stage.name}, indent=1))

    metrics_path = config.out / "metrics.jsonl"
    autocast = autocast_context(resolve_precision(config.precision, accelerator.device), accelerator.device)
    is_main = accelerator.is_main_process
    bar = tqdm(total=config.steps, initial=step, desc=f"train {stage.name}", unit="step", disable=not (config.progress and is_main))
    wrapped.train()
    tick = time.perf_counter()
    first_batch = None
    while step < config.steps:
        with autocast:  # a stage that encodes while drawing a batch computes in the run's precision
            batch = stage.batch(rng, step)
        if first_batch is None and accelerator.num_processes > 1:  # only ranks.json needs it
            first_batch = _digest({k: v for k, v in batch.items() if isinstance(v, torch.Tensor)})
        with autocast:
            loss, metrics = wrapped(**batch)
        metrics = {k: float(v) for k, v in metrics.items()}
        if not torch.isfinite(loss):
            raise FloatingPointError(f"stage {stage.name}: loss is {loss.item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        if config.grad_clip:
            accelerator.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
        scheduler.step()
        step += 1
        bar.update(1)
        if is_main and (step % config.log_every == 0 or step == config.steps):
            row = {"step": step, "loss": float(loss.detach()), **metrics, "lr": scheduler.get_last_lr()[0],
                   "seconds_per_step": (time.perf_counter() - tick) / config.log_every}
            tick = time.perf_counter()
            with metrics_path.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            bar.set_postfix(loss=f"{row['loss']:.4f}")
        if is_main and (step % config.eval_every == 0 or step == config.steps):
            wrapped.eval()
            with torch.no_grad(), autocast:
                scores = stage.evaluate(step)
            wrapped.train()
            with metrics_path.open("a") as handle:
                handle.write(json.dumps({"step": step, **{f"eval/{k}": v for k, v in scores.items()}}) + "\n")
        if step % config.checkpoint_every == 0 or step == config.steps:
            accelerator.wait_for_everyone()
            rng_states = accelerator.gather_for_metrics([_rng_state(rng)], use_gather_object=True) if accelerator.num_processes > 1 else [_rng_state(rng)]
            if is_main:
                state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step,
                         "rng": rng_states}
                checkpointer.save(step, accelerator.unwrap_model(wrapped), state)
                if not config.plot_every:
                    plot_metrics(metrics_path, config.out / "loss.png")
        if is_main and config.plot_every and (step % config.plot_every == 0 or step == config.steps):
            plot_metrics(metrics_path, config.out / "loss.png")
    bar.close()
    accelerator.wait_for_everyone()
    if accelerator.num_processes > 1:
        # Each rank drew its own batches; DDP must still leave every rank with the same weights. Record both.
        mine = {"rank": accelerator.process_index, "first_batch_sha256": first_batch,
                "weights_sha256": _digest(_trainable_state(accelerator.unwrap_model(wrapped)))}
        ranks = accelerator.gather_for_metrics([mine], use_gather_object=True)
        if is_main:
            (config.out / "ranks.json").write_text(json.dumps(sorted(ranks, key=lambda r: r["rank"]), indent=1))
    if is_main:
        _export_atomically(stage, config.out / "final")
    return {"step": step, "out": str(config.out)}


def _export_atomically(stage: Stage, final: Path) -> None:
    """``stage.export`` into a temporary directory renamed to ``final``: ``train all`` skips a stage whose
    ``final/`` exists, so a half-written one must never be there."""
    temporary = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    stage.export(temporary)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(temporary, final)
