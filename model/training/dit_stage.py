"""The DiT stages: ``base``, then LongVie 2's ``control`` (1), ``degradation`` (2) and ``history`` (3).

All four share one flow-matching objective (Wan's): ``x_t = (1 - s) z + s e`` with ``s`` drawn from the
shifted uniform distribution, the model predicts the velocity ``e - z``, and the loss is its squared error,
averaged per latent frame with per-frame weights. A :class:`DitRecipe` says what each stage trains and which
of LongVie 2's degradations and losses it uses (docs/longvie2.md):

==============  ==========================  ==========  ==========  ===========  =========================
stage           trains                      controls    degrad.     first frame  history
==============  ==========================  ==========  ==========  ===========  =========================
base            base DiT + text encoder     no          no          no           no
control         control branches            yes         feat+data   no           no
degradation     branches + base self-attn   yes         feat+data   T (p 0.2)    no
history         branches + base self-attn   yes         feat+data   T (p 0.2)    N_H in {0,1,5,9,13} frames
==============  ==========================  ==========  ==========  ===========  =========================

The history stage also weighs the first latent frames with the boundary weights and adds
``0.2 L_deg + 0.15 L_gt + 0.5 L_cons`` (model/training/degradation.py; L_cons only with one frame of history). Latents come from the cache of
model/training/latents.py; only data-degraded dense videos are encoded on the fly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from model.checkpoint import (
    Checkpoint,
    build_from_preset,
    load_checkpoint,
    save_checkpoint,
)
from model.clips import ClipDataset, control_videos
from model.metrics import psnr_finite
from model.pipeline import SamplingOptions, first_frame_mask
from model.presets import Preset
from model.text import WordTextEncoder, build_vocabulary
from model.training import degradation as deg
from model.training.latents import HISTORY_FRAME_CHOICES, LatentDataset
from model.vae import VideoVAE, frames_to_tensor


@dataclass(frozen=True)
class DitRecipe:
    name: str
    trains: tuple[str, ...]  # any of "base", "text", "control", "self_attention"
    controls: bool = True
    degrade_controls: bool = True
    degrade_first_frame: bool = False
    history: bool = False


RECIPES = {
    "base": DitRecipe("base", ("base", "text"), controls=False, degrade_controls=False),
    "control": DitRecipe("control", ("control",)),
    "degradation": DitRecipe("degradation", ("control", "self_attention"), degrade_first_frame=True),
    "history": DitRecipe("history", ("control", "self_attention"), degrade_first_frame=True, history=True),
}
NO_HISTORY_P = 0.2


@dataclass
class DitStageConfig:
    batch_size: int = 8
    shift: float = 3.0
    text_dropout: float = 0.1
    data_degradation_after: int = 0  # steps of warm-up before the data-level degradation starts
    eval_clips: int = 4
    eval_steps: int = 10


def sample_sigmas(batch: int, rng: np.random.Generator, shift: float) -> torch.Tensor:
    """Noise levels ``[B]`` of flow matching: uniform, shifted toward noise as the sampler's schedule is."""
    u = rng.uniform(0.0, 1.0, batch)
    return torch.from_numpy(shift * u / (1.0 + (shift - 1.0) * u)).float()


class DitObjective(nn.Module):
    """``forward(**batch)`` -> ``(loss, metrics)``: the flow-matching loss of one batch (and Stage 3's terms)."""

    def __init__(self, transformer: nn.Module, text_encoder: WordTextEncoder, history_losses: bool) -> None:
        super().__init__()
        self.transformer = transformer
        self.text_encoder = text_encoder
        self.history_losses = history_losses

    def forward(
        self,
        latents: torch.Tensor,
        noise: torch.Tensor,
        sigmas: torch.Tensor,
        condition: torch.Tensor,
        token_ids: torch.Tensor,
        token_mask: torch.Tensor,
        frame_weights: torch.Tensor,
        controls: dict[str, torch.Tensor] | None = None,
        dense_scale: torch.Tensor | None = None,
        history: torch.Tensor | None = None,
        degraded_first: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        s = sigmas.view(-1, 1, 1, 1, 1)
        noisy = (1.0 - s) * latents + s * noise  # [B, 16, T, h, w]
        target = noise - latents
        context = self.text_encoder(token_ids, token_mask)
        scales = {"dense": dense_scale} if dense_scale is not None else None
        velocity = self.transformer(noisy, sigmas * 1000.0, context, condition, controls=controls,
                                    control_scales=scales, history=history).float()
        per_frame = (velocity - target).square().mean(dim=(1, 3, 4))  # [B, T]
        diffusion = (per_frame * frame_weights).sum(dim=1).div(frame_weights.sum(dim=1)).mean()
        metrics = {"diffusion": diffusion.detach()}
        if not self.history_losses:
            return diffusion, metrics
        predicted = noisy - s * velocity  # the model's clean latent
        terms = deg.history_losses(predicted, latents, degraded_first, history)
        metrics.update({f"l_{k}": v.detach() for k, v in terms.items()})
        return deg.weighted_history_loss(diffusion, terms), metrics


def _set_trainable(checkpoint: Checkpoint, parts: tuple[str, ...]) -> None:
    transformer = checkpoint.transformer
    for p in [*transformer.parameters(), *checkpoint.text_encoder.parameters(), *checkpoint.vae.parameters()]:
        p.requires_grad_(False)
    if "base" in parts:
        transformer.base.requires_grad_(True)
    if "text" in parts:
        checkpoint.text_encoder.requires_grad_(True)
    if "control" in parts:
        transformer.control.requires_grad_(True)
    if "self_attention" in parts:
        for block in transformer.base.blocks:
            block.attn1.requires_grad_(True)


class DitStage:
    """One of the DiT stages on cached latents (see the module docstring)."""

    def __init__(
        self,
        recipe: DitRecipe,
        preset: Preset,
        data: str | Path,
        vae_directory: str | Path,
        eval_data: str | Path | None,
        config: DitStageConfig,
        init: str | Path | None = None,
        seed: int = 0,
        render: Callable[[dict], np.ndarray] | None = None,
    ) -> None:
        self.recipe = recipe
        self.name = recipe.name
        self.config = config
        if preset.control_condition != "image":
            raise ValueError(
                f"preset {preset.name!r} conditions the control branches on {preset.control_condition!r}: the DiT "
                "stages train with the image's conditioning in every branch (the latent cache holds that one only), "
                "so they would train a model for another input than it is run with"
            )
        if preset.history_frames is not None:
            raise ValueError(f"preset {preset.name!r} keeps {preset.history_frames} history frames, an inference setting "
                             "of the published weights: the DiT stages draw history from the data's run-up frames "
                             "(model/training/latents.py); train with history_frames=None")
        if preset.condition == "rendered" and eval_data and render is None:
            raise ValueError("a condition='rendered' preset evaluates with the first frame rendered along each eval "
                             "clip's path: pass render= (lv2_env.conditioning.warp.render_clip)")
        self.render = render
        # A model trained on the world memory's renders reads its own cache (DATA/latents/VAE_ID-memory/).
        self.latents = LatentDataset(data, vae_directory, preset.trained_conditioning or preset.condition)
        self.pixels = ClipDataset(data, ("dense",), expect={"height": preset.height, "width": preset.width, "frames": preset.frames})
        eval_fields = ("rgb", "dense", "sparse") + (("depth", "poses", "intrinsics") if render else ())
        self.eval_set = ClipDataset(eval_data, eval_fields) if eval_data else None
        if recipe.history and self.pixels.index["history_frames"] < max(HISTORY_FRAME_CHOICES):
            raise ValueError(
                f"the history stage draws up to {max(HISTORY_FRAME_CHOICES)} history frames, but {data} keeps "
                f"{self.pixels.index['history_frames']} before each clip (rebuild it with --history-frames 16)"
            )
        if init is None:
            if recipe.name != "base":
                raise ValueError(f"stage {recipe.name!r} starts from the previous stage's result: pass --init DIR")
            vocabulary = build_vocabulary(self.pixels.captions)
            self.checkpoint = build_from_preset(preset.name, vocabulary=vocabulary, seed=seed)
            self.checkpoint.preset = preset
        else:
            self.checkpoint = load_checkpoint(init, expect_preset=preset.name)
            # The stage's preset decides the conditioning (the shipped base switched to "rendered" midway).
            self.checkpoint.preset = dataclasses.replace(self.checkpoint.preset, condition=preset.condition,
                                                         trained_conditioning=preset.trained_conditioning)
            if recipe.name == "control" and not any(p.abs().sum() > 0 for p in self.checkpoint.transformer.control.combine_linears.parameters()):
                self.checkpoint.transformer.init_control_from_base()  # the paper's "half copy", once
        self.checkpoint.vae = VideoVAE.from_pretrained(vae_directory).eval()
        _set_trainable(self.checkpoint, recipe.trains)
        self.objective = DitObjective(self.checkpoint.transformer, self.checkpoint.text_encoder, recipe.history)

    def module(self) -> nn.Module:
        return self.objective

    # ------------------------------------------------------------------ batches

    def batch(self, rng: np.random.Generator, step: int) -> dict[str, Any]:
        cfg = self.config
        indices = rng.integers(len(self.latents), size=cfg.batch_size)
        items = [self.latents[int(i)] for i in indices]
        latents = torch.stack([it["rgb"] for it in items])
        cond_latent = torch.stack([it["condition"] for it in items])
        b, _, t, h, w = latents.shape
        captions = ["" if rng.random() < cfg.text_dropout else it["caption"] for it in items]
        token_ids, token_mask = self.checkpoint.text_encoder.tokenize(captions)
        batch: dict[str, Any] = {
            "latents": latents,
            "noise": torch.from_numpy(rng.standard_normal(latents.shape)).float(),
            "sigmas": sample_sigmas(b, rng, cfg.shift),
            "token_ids": token_ids,
            "token_mask": token_mask,
            "frame_weights": torch.ones(b, t),
        }
        if self.recipe.controls:
            dense = torch.stack([it["dense"] for it in items])
            if self.recipe.degrade_controls and step >= cfg.data_degradation_after:
                dense = self._degrade_dense(dense, indices, rng)
            batch["controls"] = {"dense": dense, "sparse": torch.stack([it["sparse"] for it in items])}
            batch["dense_scale"] = deg.dense_scales(b, rng) if self.recipe.degrade_controls else torch.ones(b)
        first = cond_latent[:, :, :1]
        if self.recipe.degrade_first_frame:
            first = torch.cat([self._degrade_latent(first[i : i + 1], deg.sample_first_frame_degradation(rng), rng) for i in range(b)])
            cond_latent = torch.cat([first, cond_latent[:, :, 1:]], dim=2)
        batch["condition"] = torch.cat([first_frame_mask(t, h, w, b), cond_latent], dim=1)
        if self.recipe.history:
            batch["degraded_first"] = first
            batch["frame_weights"] = deg.boundary_weights(t).expand(b, t).clone()
            frames = 0 if rng.random() < NO_HISTORY_P else int(rng.choice(HISTORY_FRAME_CHOICES))
            if frames:
                history = torch.stack([it[f"history_{frames}"] for it in items])
                kind = deg.sample_first_frame_degradation(rng)
                batch["history"] = self._degrade_latent(history, kind, rng)
        return batch

    @torch.no_grad()
    def _degrade_dense(self, dense: torch.Tensor, indices: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """Data-level degradation: degraded samples are re-encoded from their degraded pixel video."""
        out = dense.clone()
        for i, index in enumerate(indices):
            grey = self.pixels[int(index)]["dense"]
            video = frames_to_tensor(np.repeat(grey[..., None], 3, axis=-1))
            degraded, what = deg.degrade_dense(video, rng)
            if what != "none":  # in the training loop's precision (it draws batches under its autocast)
                out[i] = self.checkpoint.vae.encode(degraded)[0].float()
        return out

    @torch.no_grad()
    def _degrade_latent(self, latent: torch.Tensor, kind: deg.FirstFrameDegradation, rng: np.random.Generator) -> torch.Tensor:
        """LongVie 2's ``T`` on latent frames: VAE round trips, or noise to ``t < 15`` and one denoising step."""
        vae = self.checkpoint.vae

        def denoise(noisy: torch.Tensor, sigma: float) -> torch.Tensor:
            # One Euler step of the model from sigma to 0 on the frames alone (no controls at this tiny sigma).
            t = noisy.shape[2]
            condition = torch.cat([first_frame_mask(t, *noisy.shape[3:], noisy.shape[0]), noisy], dim=1)
            context = self.checkpoint.text_encoder.encode([""] * noisy.shape[0])
            velocity = self.checkpoint.transformer(noisy, torch.full((noisy.shape[0],), sigma * 1000.0), context, condition)
            return noisy - sigma * velocity.float()

        generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
        return deg.degrade_first_frame(latent, kind, vae.encode, vae.decode, denoise, generator).float()

    # ------------------------------------------------------------------ evaluation and export

    @torch.no_grad()
    def evaluate(self, step: int) -> dict[str, float]:
        """Generate held-out clips from their ground-truth controls: PSNR of the model and of repeating frame 0."""
        if self.eval_set is None:
            return {}
        # autocast=None: the training loop evaluates under its own autocast, in the run's precision.
        generator = self.checkpoint.generator(options=SamplingOptions(steps=self.config.eval_steps), autocast=None,
                                              history_latent_frames=0)
        model_scores, repeat_scores = [], []
        count = min(self.config.eval_clips, len(self.eval_set))
        for i in np.linspace(0, len(self.eval_set) - 1, count).astype(int):
            clip = self.eval_set[int(i)]
            controls = control_videos(clip)
            generator.reset(clip["rgb"][0])
            rendered = self.render(clip) if generator.condition == "rendered" else None
            frames = generator.generate_clip(controls if self.recipe.controls else {}, clip["caption"], rendered=rendered)
            model_scores.append(psnr_finite(frames[1:], clip["rgb"][1:]))
            repeat_scores.append(psnr_finite(np.repeat(clip["rgb"][:1], len(clip["rgb"]) - 1, axis=0), clip["rgb"][1:]))
        self.objective.train()
        return {"psnr": float(np.mean(model_scores)), "psnr_repeat_first": float(np.mean(repeat_scores))}

    def export(self, directory: Path) -> None:
        self.checkpoint.notes = {**self.checkpoint.notes, "stage": self.name}
        save_checkpoint(self.checkpoint, directory)
