"""Distil the light control encoder from the VAE encoder: the videos a world encodes in, the VAE's latents out.

    python -m lv2_env.data.encoder_pairs --out data/encoder-pairs --episodes 90 --steps 16   # the data
    python -m model.training.distill_control_encoder --data data/encoder-pairs --out runs/control-encoder

The VAE encoder is most of a generated step's arithmetic (BENCHMARKS.md); :class:`model.control_encoder.ControlEncoder`
learns to give the latents it gives for the conditioning videos LV2/World-v0 encodes (recorded by
``lv2_env.data.encoder_pairs``, so this module needs no env). It reads top to bottom:

1. Load the recorded (video, latents) pairs; the last ``val_fraction`` of the episodes are held out.
2. Build the student (or resume it and its optimiser from ``OUT/resume.pt``).
3. Train on batches of whole videos: L1 + MSE against the teacher's normalised latents.
4. Score it on the held-out episodes (error relative to the latents' variance, per latent frame), time both
   encoders on one step's batch, and save ``OUT/control-encoder/`` (config, weights, ``distillation.json``):
   copy that folder into a model directory to use it.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from model.control_encoder import CONTROL_ENCODER_FOLDER, ControlEncoder
from model.precision import autocast_context, precision_name, resolve_precision
from model.vae import VideoVAE, frames_to_tensor


@dataclass
class Args:
    data: Path
    out: Path
    teacher: Path = Path(__file__).resolve().parents[1] / "shipped" / "vae"
    steps: int = 4000
    batch_size: int = 8
    lr: float = 2e-3
    val_fraction: float = 0.1
    precision: str = "auto"
    save_every: int = 250
    seed: int = 0


def load_pairs(data: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Episode names, videos (uint8 ``[N, F, H, W, 3]``) and latents (float16 ``[N, C, T, h, w]``) of ``data``."""
    files = sorted((data / "pairs").glob("*.npz"))
    if not files:
        raise ValueError(f"{data / 'pairs'} holds no recorded pairs: record them with `python -m lv2_env.data.encoder_pairs`")
    names, videos, latents = [], [], []
    for path in tqdm(files, desc=f"load {data.name}", unit="file"):
        with np.load(path) as stored:
            videos.append(stored["videos"])
            latents.append(stored["latents"])
        names += [path.stem.split("_")[0]] * len(videos[-1])
    return names, np.concatenate(videos), np.concatenate(latents)


def latent_error(student: ControlEncoder, videos: np.ndarray, latents: np.ndarray, autocast,
                 batch_size: int = 8) -> dict[str, float | list[float]]:
    """Mean squared error over the teacher's variance (0 is exact, 1 is no better than the mean), overall and
    per latent frame, and the mean absolute error."""
    squared, absolute = [], []
    with torch.no_grad(), autocast_context(autocast):
        for i in range(0, len(videos), batch_size):
            z = student(frames_to_tensor(videos[i : i + batch_size])).float()
            target = torch.from_numpy(latents[i : i + batch_size]).float()
            squared.append(((z - target) ** 2).mean(dim=(0, 1, 3, 4)) * len(z))
            absolute.append((z - target).abs().mean() * len(z))
    variance = float(latents.astype(np.float32).var())
    per_frame = (torch.stack(squared).sum(0) / len(videos)).tolist()
    return {"relative_mse": float(np.mean(per_frame)) / variance,
            "relative_mse_per_latent_frame": [v / variance for v in per_frame],
            "mae": float(torch.stack(absolute).sum() / len(videos))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, default in asdict(Args(data=Path(), out=Path())).items():
        kind = type(default) if not isinstance(default, Path) else str
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None if name in ("data", "out") else default,
                            required=name in ("data", "out"))
    args = Args(**{k: (Path(v) if k in ("data", "out", "teacher") else v) for k, v in vars(parser.parse_args()).items()})
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    autocast = resolve_precision(args.precision)
    args.out.mkdir(parents=True, exist_ok=True)

    # 1. The recorded pairs, held-out episodes last.
    names, videos, latents = load_pairs(args.data)
    episodes = sorted(set(names))
    held_out = set(episodes[len(episodes) - max(1, int(round(args.val_fraction * len(episodes)))):])
    val = np.array([n in held_out for n in names])
    train_idx = np.flatnonzero(~val)
    print(f"{len(videos)} videos from {len(episodes)} episodes; {int(val.sum())} held out ({len(held_out)} episodes)")

    # 2. The student, resumed where a run stopped.
    student = ControlEncoder(z_dim=latents.shape[1])
    optimizer = torch.optim.AdamW(student.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=args.steps, pct_start=0.05)
    start = 0
    resume = args.out / "resume.pt"
    if resume.is_file():
        state = torch.load(resume, weights_only=True)
        student.load_state_dict(state["student"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        start = int(state["step"])
        rng = np.random.default_rng([args.seed, start])
        print(f"resumed at step {start}")

    # 3. Whole videos against the teacher's latents.
    log = (args.out / "metrics.jsonl").open("a")
    student.train()
    bar = tqdm(range(start, args.steps), desc="distil control encoder", unit="step", initial=start, total=args.steps)
    for step in bar:
        picks = rng.choice(train_idx, args.batch_size, replace=False)
        target = torch.from_numpy(latents[picks]).float()
        with autocast_context(autocast):
            z = student(frames_to_tensor(videos[picks])).float()
        loss = (z - target).abs().mean() + ((z - target) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if step % 25 == 0 or step == args.steps - 1:
            log.write(json.dumps({"step": step, "loss": loss.item()}) + "\n")
            log.flush()
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if (step + 1) % args.save_every == 0 or step == args.steps - 1:
            torch.save({"student": student.state_dict(), "optimizer": optimizer.state_dict(),
                        "schedule": schedule.state_dict(), "step": step + 1}, resume)
    student.eval()

    # 4. Held-out error, timings, save.
    report: dict = {"args": {k: str(v) for k, v in asdict(args).items()}, "precision": precision_name(autocast),
                    "videos_train": int(len(train_idx)), "videos_held_out": int(val.sum()),
                    "held_out": latent_error(student, videos[val], latents[val], autocast),
                    "parameters": sum(p.numel() for p in student.parameters())}
    teacher = VideoVAE.from_pretrained(args.teacher).eval()
    batch = frames_to_tensor(videos[np.flatnonzero(val)[:3]])
    with torch.no_grad(), autocast_context(autocast):
        for name, encode in (("vae_encoder", teacher.encode), ("control_encoder", student)):
            encode(batch)
            tick = time.perf_counter()
            for _ in range(3):
                encode(batch)
            report[f"seconds_per_step_batch_{name}"] = (time.perf_counter() - tick) / 3
    folder = args.out / CONTROL_ENCODER_FOLDER
    student.save_pretrained(folder, safe_serialization=True)
    (folder / "distillation.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
