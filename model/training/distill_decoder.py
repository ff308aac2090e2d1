"""Distil a lighter VAE decoder from a trained one: the same latents in, the full decoder's frames as targets.

    python -m model.training.distill_decoder --data data/train --eval-data data/eval --out runs/fast-decoder

On a CPU, decoding is the largest part of a generated step (BENCHMARKS.md). As TAEHV does for Wan, a narrower
decoder is trained to reproduce what the full decoder outputs for the same latents; the encoder, and with it
the latent space the DiT was trained in, is copied unchanged, so the result is a drop-in VAE (``vae-fast/`` of
a model directory, chosen with ``decoder="fast"``). It reads top to bottom:

1. Encode every clip of ``--data`` with the teacher's encoder and decode it with the teacher's decoder once:
   the (latent, frames) pairs to learn from.
2. Build the student: the teacher's config with ``decoder_base_dim`` narrower, the encoder and both 1x1 latent
   convolutions copied.
3. Train the student's decoder on random latent crops (L1 + MSE against the teacher's pixels).
4. Score it on ``--eval-data`` against the teacher's frames and the truth, time both decoders, save it.
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

from model.precision import autocast_context, precision_name, resolve_precision
from model.clips import ClipDataset
from model.metrics import psnr_finite
from model.vae import VideoVAE, frames_to_tensor, tensor_to_frames


@dataclass
class Args:
    data: Path
    out: Path
    eval_data: Path | None = None
    teacher: Path = Path(__file__).resolve().parents[1] / "shipped" / "vae"
    decoder_base_dim: int = 8
    steps: int = 3000
    batch_size: int = 8
    crop: int = 8  # latent pixels (x8 in frames)
    lr: float = 1e-3
    clips: int = 600
    eval_clips: int = 16
    precision: str = "auto"
    seed: int = 0


@torch.no_grad()
def teacher_pairs(teacher: VideoVAE, data: Path, count: int, autocast) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Latents ``[N, 16, T, h, w]``, the teacher's frames and the true frames (uint8 ``[N, F, H, W, 3]``)."""
    dataset = ClipDataset(data, ("rgb",))
    indices = np.linspace(0, len(dataset) - 1, min(count, len(dataset))).astype(int)
    latents, decoded, truth = [], [], []
    for i in tqdm(indices, desc=f"teacher on {data.name}", unit="clip"):
        rgb = dataset[int(i)]["rgb"]
        with autocast_context(autocast):
            z = teacher.encode(frames_to_tensor(rgb)).float()
            decoded.append(tensor_to_frames(teacher.decode(z))[0])
        latents.append(z[0].half())
        truth.append(rgb)
    return torch.stack(latents), np.stack(decoded), np.stack(truth)


def build_student(teacher: VideoVAE, decoder_base_dim: int) -> VideoVAE:
    config = {k: v for k, v in teacher.model.config.items() if not k.startswith("_")}
    config["decoder_base_dim"] = decoder_base_dim
    student = VideoVAE.from_config(**config)
    for part in ("encoder", "quant_conv", "post_quant_conv"):
        getattr(student.model, part).load_state_dict(getattr(teacher.model, part).state_dict())
    return student


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, default in asdict(Args(data=Path(), out=Path())).items():
        kind = type(default) if default is not None and not isinstance(default, Path) else str
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None if name in ("data", "out") else default,
                            required=name in ("data", "out"))
    args = Args(**{k: (Path(v) if k in ("data", "out", "eval_data", "teacher") and v is not None else v)
                   for k, v in vars(parser.parse_args()).items()})
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    autocast = resolve_precision(args.precision)
    args.out.mkdir(parents=True, exist_ok=True)

    # 1. What the teacher makes of the training clips.
    teacher = VideoVAE.from_pretrained(args.teacher).eval()
    latents, targets, _ = teacher_pairs(teacher, args.data, args.clips, autocast)

    # 2. The student: same encoder, narrower decoder.
    student = build_student(teacher, args.decoder_base_dim)
    params = list(student.model.decoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.99))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=args.steps, pct_start=0.05)

    # 3. Train on latent crops against the teacher's pixels of the same crop.
    log = (args.out / "metrics.jsonl").open("w")
    student.train()
    h = latents.shape[-1]
    bar = tqdm(range(args.steps), desc="distil decoder", unit="step")
    for step in bar:
        picks = rng.integers(0, len(latents), args.batch_size)
        y, x = (int(v) for v in rng.integers(0, h - args.crop + 1, 2))
        z = latents[picks][..., y : y + args.crop, x : x + args.crop].float()
        target = frames_to_tensor(targets[picks][:, :, 8 * y : 8 * (y + args.crop), 8 * x : 8 * (x + args.crop)])
        with autocast_context(autocast):
            out = student.decode(z).float()
        loss = (out - target).abs().mean() + ((out - target) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        if step % 25 == 0 or step == args.steps - 1:
            log.write(json.dumps({"step": step, "loss": float(loss)}) + "\n")
            log.flush()
            bar.set_postfix(loss=f"{float(loss):.4f}")
    student.eval()

    # 4. Held-out scores and timings, then save.
    report: dict = {"args": {k: str(v) for k, v in asdict(args).items()}, "precision": precision_name(autocast)}
    if args.eval_data is not None:
        z, teacher_frames, truth = teacher_pairs(teacher, args.eval_data, args.eval_clips, autocast)
        with torch.no_grad(), autocast_context(autocast):
            student_frames = np.stack([tensor_to_frames(student.decode(z[i : i + 1].float()))[0] for i in range(len(z))])
        report.update({
            "psnr_student_vs_teacher": float(np.mean([psnr_finite(s, t) for s, t in zip(student_frames, teacher_frames)])),
            "psnr_teacher_vs_truth": float(np.mean([psnr_finite(t, g) for t, g in zip(teacher_frames, truth)])),
            "psnr_student_vs_truth": float(np.mean([psnr_finite(s, g) for s, g in zip(student_frames, truth)])),
        })
    with torch.no_grad():
        z = latents[:1].float()
        for name, vae in (("teacher", teacher), ("student", student)):
            vae.decode(z)
            tick = time.perf_counter()
            for _ in range(3):
                vae.decode(z)
            report[f"decode_seconds_fp32_{name}"] = (time.perf_counter() - tick) / 3
    student.save_pretrained(args.out / "vae-fast")
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
