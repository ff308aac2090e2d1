"""VAE latents of a data directory, computed once per VAE and cached beside the clips.

The DiT stages see every clip many times through a frozen VAE, so its latents are encoded once:

    DATA/latents/VAE_ID/index.json          {"vae_id", "history_frames": [1, 5, 9, 13], "clips": [...]}
    DATA/latents/VAE_ID/SSSSSS_CC.npz       float16, normalised latents of one clip:
        rgb        [16, T, h, w]     the clip
        dense      [16, T, h, w]     its dense control video (grey, 3 channels)
        sparse     [16, T, h, w]     its sparse control video
        condition  [16, T, h, w]     the I2V conditioning video [first frame, zeros, ...]
        history_N  [16, 1+(N-1)/4, h, w] for N in history_frames: the last N frames before the clip

``VAE_ID`` is a hash of the VAE's config and encoder weights, so latents of another encoder are never mixed in.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from model.pipeline import condition_video
from model.training.data import ClipDataset
from model.vae import VideoVAE, frames_to_tensor

HISTORY_FRAME_CHOICES = (1, 5, 9, 13)  # 4k+1 pixel frames: 1..4 latent frames of history


ENCODER_PREFIXES = ("encoder.", "quant_conv.")  # what a latent depends on (with the config's statistics)


def vae_id(directory: str | Path) -> str:
    """A short hash of what a saved VAE's latents depend on: its config and its encoder's weights.

    The decoder is left out on purpose: fine-tuning the decoder with the encoder frozen
    (``lv2 train vae --freeze-encoder``) keeps the latent space, so cached latents and DiT stages trained on
    them stay valid.
    """
    from safetensors import safe_open

    directory = Path(directory)
    config = json.loads((directory / "config.json").read_text())
    digest = hashlib.sha1(json.dumps({k: v for k, v in config.items() if not k.startswith("_")}, sort_keys=True).encode())
    for path in sorted(directory.glob("*.safetensors")):
        with safe_open(str(path), "pt") as f:
            for key in sorted(k for k in f.keys() if k.startswith(ENCODER_PREFIXES)):
                digest.update(key.encode())
                digest.update(f.get_tensor(key).float().numpy().tobytes())
    return digest.hexdigest()[:12]


@torch.no_grad()
def encode_clip(vae: VideoVAE, clip: dict, history_choices: tuple[int, ...] = HISTORY_FRAME_CHOICES) -> dict[str, np.ndarray]:
    """All latents of one clip record (``rgb``, ``dense``, ``sparse``, ``history`` fields) in one VAE batch."""
    rgb = frames_to_tensor(clip["rgb"])
    dense = frames_to_tensor(np.repeat(clip["dense"][..., None], 3, axis=-1))
    sparse = frames_to_tensor(clip["sparse"])
    condition = condition_video(rgb[:, :, 0], rgb.shape[2])
    latents = vae.encode(torch.cat([rgb, dense, sparse, condition]))
    out = {name: latents[i].half().numpy() for i, name in enumerate(("rgb", "dense", "sparse", "condition"))}
    history = clip["history"]
    for n in history_choices:
        if n <= len(history):
            out[f"history_{n}"] = vae.encode(frames_to_tensor(history[-n:]))[0].half().numpy()
    return out


def cache_latents(
    data: str | Path, vae_directory: str | Path, autocast: bool = True, progress: bool = True
) -> Path:
    """Encode every clip of ``data`` with the VAE saved in ``vae_directory``; resumable (existing files kept)."""
    data = Path(data)
    identity = vae_id(vae_directory)
    out = data / "latents" / identity
    out.mkdir(parents=True, exist_ok=True)
    dataset = ClipDataset(data, ("rgb", "dense", "sparse", "history"))
    vae = VideoVAE.from_pretrained(vae_directory).eval()
    context = torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast)
    for i in tqdm(range(len(dataset)), desc="caching latents", unit="clip", disable=not progress):
        path = out / Path(dataset.clips[i]["file"]).name
        if path.exists():
            continue
        with context:
            latents = encode_clip(vae, dataset[i])
        temporary = path.with_suffix(".tmp.npz")
        np.savez(temporary, **latents)
        temporary.replace(path)
    (out / "index.json").write_text(json.dumps({"vae_id": identity, "history_frames": list(HISTORY_FRAME_CHOICES),
                                                "clips": [Path(c["file"]).name for c in dataset.clips]}))
    return out


class LatentDataset:
    """Cached latents and captions of a data directory for one VAE."""

    def __init__(self, data: str | Path, vae_directory: str | Path) -> None:
        self.data = Path(data)
        self.clips = ClipDataset(self.data, ())
        identity = vae_id(vae_directory)
        self.directory = self.data / "latents" / identity
        if not (self.directory / "index.json").is_file():
            raise ValueError(
                f"no latents of VAE {identity} in {self.data}: expected {self.directory}/index.json "
                f"(run `lv2 train cache-latents --data {self.data} --vae {vae_directory}`)"
            )

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict:
        entry = self.clips.clips[i]
        with np.load(self.directory / Path(entry["file"]).name) as data:
            item = {k: torch.from_numpy(data[k].astype(np.float32)) for k in data.files}
        item["caption"] = entry["caption"]
        return item
