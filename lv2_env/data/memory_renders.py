"""Training conditioning built the way World-v0 builds it: each clip's world memory rendered along its path.

World-v0 conditions a clip on its :class:`~lv2_env.conditioning.world_memory.WorldMemory`: the start frame, then the
last frame the world showed after each clip (the model's, the memory composited over it), rendered along the
clip's path with the path's depth. A model trained on its first frame warped alone never sees what such a render
holds: looks taken at different times side by side, and its own earlier guesses on revealed ground.
:func:`build_memory_renders` replays every sequence of a procedural data directory as the env would:

1. the memory starts from the sequence's first frame (protected, as the env's start frame), with the scene's fog
   (its style's :class:`~lv2_env.conditioning.atmosphere.Atmosphere`, as the env's);
2. each clip's conditioning is the memory rendered along its poses with its depth (the
   :class:`~lv2_env.conditioning.clip_conditioner.ClipConditioner` World-v0 runs), frame 0 the clip's own first frame;
3. what the world then "showed" for the clip is, with probability ``self_rollout``, the model's own generation of
   it from that conditioning (self-rollout training, as Self-Forcing does, at the tiny size), else the truth's
   last frame degraded as LongVie 2's ``T`` degrades a first frame (1 to ``MAX_ROUND_TRIPS`` VAE round trips,
   milder ones more often) plus Gaussian noise (GameNGen's context noise against drift); the memory is
   composited over it, as the env shows it;
4. its last frame goes into the memory, and the next clip follows.

The renders are written to ``DATA/memory_renders/SSSSSS_CC.npz`` (``rendered`` uint8 ``[F, H, W, 3]``) with an
``index.json`` of the settings; ``lv2 train cache-latents --conditioning memory`` encodes them
(:func:`memory_render_loader`) and ``lv2 train degradation --conditioning memory`` trains on them. ``model/``
never reads this module: the renders reach it as files, like the clips.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from tqdm import tqdm

from lv2_env.conditioning.atmosphere import Atmosphere
from lv2_env.conditioning.clip_conditioner import ClipConditioner
from lv2_env.conditioning.warp import as_intrinsics
from lv2_env.worlds.styles import get_style
from model.clips import ClipDataset, control_videos

RENDERS_FOLDER = "memory_renders"
MAX_ROUND_TRIPS = 3
NOISE_STD_MAX = 8.0  # grey levels: the strongest Gaussian context noise (drawn uniformly in [0, this])
FIELDS = ("rgb", "depth", "poses", "intrinsics", "dense", "sparse")


def renders_directory(data: str | Path) -> Path:
    return Path(data) / RENDERS_FOLDER


def clip_atmosphere(clip: Mapping[str, Any]) -> Atmosphere | None:
    """The fog of a procedural clip's scene (its ``style``), which World-v0 renders its memory with; None for a
    clip of no known style."""
    style = clip.get("style")
    return None if style is None else get_style(str(style)).atmosphere


def clip_conditioner(clip: Mapping[str, Any], conditioning: str | None = None, composite: bool | None = None,
                     trained_conditioning: str | None = None) -> ClipConditioner:
    """A rendered-conditioning model's :class:`~lv2_env.conditioning.clip_conditioner.ClipConditioner` started from a
    clip's first frame, as World-v0's first clip is: its memory holds that frame alone, with the scene's fog."""
    height, width = clip["rgb"].shape[1:3]
    conditioner = ClipConditioner("rendered", as_intrinsics(clip["intrinsics"], width, height), conditioning,
                                  composite, trained_conditioning)
    conditioner.start(clip["rgb"][0], clip["depth"][0], clip["poses"][0], clip_atmosphere(clip))
    return conditioner


def memory_of_first_frame(clip: Mapping[str, Any]) -> np.ndarray:
    """What a single clip is conditioned on in ``lv2 eval`` and training: the world memory of its first frame
    rendered along its path with its depth (uint8 ``[F, H, W, 3]``; frame 0 the first frame)."""
    return clip_conditioner(clip).condition(clip["poses"], clip["depth"]).rendered


def memory_render_loader(data: str | Path) -> Callable[[dict], np.ndarray]:
    """``render(clip)`` for :func:`model.training.latents.cache_latents`: the clip's render written by
    :func:`build_memory_renders` (the record carries its ``file``); a clip without one raises, naming the fix."""
    folder = renders_directory(data)

    def render(clip: dict) -> np.ndarray:
        path = folder / Path(clip["file"]).name
        if not path.is_file():
            raise ValueError(f"no memory render of {clip['file']} in {folder}: run `lv2 data memory-renders "
                             f"--data {data}` first")
        with np.load(path) as stored:
            return stored["rendered"]

    return render


def _degrade_last_frame(frame: np.ndarray, vae, rng: np.random.Generator) -> np.ndarray:
    """``frame`` after 1..MAX_ROUND_TRIPS VAE round trips (P(k) proportional to 1/k) and Gaussian noise."""
    import torch

    from model.vae import frames_to_tensor, tensor_to_frames

    levels = np.arange(1, MAX_ROUND_TRIPS + 1)
    trips = int(rng.choice(levels, p=(1.0 / levels) / np.sum(1.0 / levels)))
    video = frames_to_tensor(frame[None])
    with torch.no_grad():
        for _ in range(trips):
            video = vae.decode(vae.encode(video)).clamp(-1.0, 1.0)
    out = tensor_to_frames(video)[0, 0].astype(np.float32)
    out += rng.normal(0.0, rng.uniform(0.0, NOISE_STD_MAX), out.shape)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def build_memory_renders(data: str | Path, checkpoint: str | Path, self_rollout: float = 0.5, seed: int = 0,
                         progress: bool = True) -> Path:
    """Write every clip's memory render (module docstring); resumable by sequence (a sequence whose renders all
    exist is skipped). ``checkpoint``: the model whose generations the self-rollout clips are, and whose VAE
    degrades the others."""
    if not 0.0 <= self_rollout <= 1.0:
        raise ValueError(f"self_rollout is a probability in [0, 1], got {self_rollout!r}")
    from model.checkpoint import load_checkpoint

    dataset = ClipDataset(data, FIELDS)
    out = renders_directory(data)
    out.mkdir(exist_ok=True)
    checkpoint_model = load_checkpoint(checkpoint)
    if checkpoint_model.preset.condition != "rendered":
        raise ValueError(f"{checkpoint} is a condition={checkpoint_model.preset.condition!r} model: self-rollout "
                         f"needs one that reads rendered conditioning")
    generator = checkpoint_model.generator(seed=seed, history_latent_frames=0)
    vae = checkpoint_model.vae.eval()
    sequences: dict[int, list[int]] = {}
    for i, entry in enumerate(dataset.clips):
        sequences.setdefault(int(entry["sequence"]), []).append(i)
    counts = {"self_rollout": 0, "degraded_truth": 0}
    for sequence, members in tqdm(sorted(sequences.items()), desc="memory renders", unit="seq", disable=not progress):
        members = sorted(members, key=lambda i: int(dataset.clips[i]["clip"]))
        paths = [out / Path(dataset.clips[i]["file"]).name for i in members]
        if all(p.exists() for p in paths):
            continue
        rng = np.random.default_rng([seed, sequence])
        clips = [dataset[i] for i in members]
        conditioner = clip_conditioner(clips[0], composite=True)
        for clip, path in zip(clips, paths):
            conditioning = conditioner.condition(clip["poses"], clip["depth"], first_frame=clip["rgb"][0])
            temporary = path.with_suffix(".tmp.npz")
            np.savez_compressed(temporary, rendered=conditioning.rendered)
            temporary.replace(path)
            if rng.random() < self_rollout:
                generator.reset(clip["rgb"][0])
                shown = generator.generate_clip(control_videos(clip), str(clip["caption"]),
                                                rendered=conditioning.rendered, known=conditioning.known)
                last = shown[-1]
                counts["self_rollout"] += 1
            else:
                last = conditioning.known.apply(_degrade_last_frame(clip["rgb"][-1], vae, rng)[None],
                                                start=len(clip["rgb"]) - 1)[0]
                counts["degraded_truth"] += 1
            conditioner.remember(last, clip["depth"][-1], clip["poses"][-1])
    (out / "index.json").write_text(json.dumps({"checkpoint": str(checkpoint), "self_rollout": self_rollout,
                                                "seed": seed, "max_round_trips": MAX_ROUND_TRIPS,
                                                "noise_std_max": NOISE_STD_MAX, "atmosphere": "the scene's fog",
                                                "written_this_run": counts}))
    return out
