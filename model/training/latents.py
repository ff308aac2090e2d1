"""VAE latents of a data directory, computed once per VAE and cached beside the clips.

The DiT stages see every clip many times through a frozen VAE, so its latents are encoded once:

    DATA/latents/VAE_ID/index.json          {"vae_id", "history_frames": [1, 5, 9, 13], "clips": [...]}
    DATA/latents/VAE_ID/SSSSSS_CC.npz       float16, normalised latents of one clip:
        rgb        [16, T, h, w]     the clip
        dense      [16, T, h, w]     its dense control video (grey, 3 channels)
        sparse     [16, T, h, w]     its sparse control video
        condition  [16, T, h, w]     the I2V conditioning video: [first frame, zeros, ...], or for a
                                     "rendered" cache (DATA/latents/VAE_ID-rendered/) the first frame
                                     rendered along the clip's camera path
        history_N  [16, 1+(N-1)/4, h, w] for N in history_frames: the last N frames of the run-up to the
                                     clip, ending with the clip's first frame (the frame it shares with the
                                     previous clip, as at inference, where LongVie 2's history is the previous
                                     clip's last frames); index.json says so with "history_ends_with_first_frame"

``VAE_ID`` is a hash of the VAE's config and encoder weights, so latents of another encoder are never mixed in.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from model.clips import ClipDataset, control_videos
from model.pipeline import condition_video
from model.precision import autocast_context, resolve_precision
from model.vae import VideoVAE, frames_to_tensor

HISTORY_FRAME_CHOICES = (1, 5, 9, 13)  # 4k+1 pixel frames: 1..4 latent frames of history
# A cache written before the history was made to end with the clip's shared first frame lacks this key (its
# history ended one frame before it, which L_cons = |z_H[-1] - z_hat[0]|^2 does not assume).
HISTORY_MARKER = "history_ends_with_first_frame"


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


def cache_directory(data: str | Path, vae_directory: str | Path, condition: str = "first_frame") -> Path:
    """Where the latents of ``data`` for this VAE (and this kind of I2V conditioning) live."""
    suffix = "" if condition == "first_frame" else f"-{condition}"
    return Path(data) / "latents" / f"{vae_id(vae_directory)}{suffix}"


def condition_tensor(rgb: torch.Tensor, rendered: np.ndarray | None) -> torch.Tensor:
    """The I2V conditioning video ``[1, 3, F, H, W]``: [first frame, zeros...] or the rendered video whose frame 0
    is the first frame exactly."""
    if rendered is None:
        return condition_video(rgb[:, :, 0], rgb.shape[2])
    video = frames_to_tensor(rendered)
    video[:, :, 0] = rgb[:, :, 0]
    return video


@torch.no_grad()
def encode_clip(vae: VideoVAE, clip: dict, history_choices: tuple[int, ...] = HISTORY_FRAME_CHOICES,
                rendered: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """All latents of one clip record (``rgb``, ``dense``, ``sparse``, ``history`` fields) in one VAE batch."""
    rgb = frames_to_tensor(clip["rgb"])
    videos = control_videos(clip)
    dense, sparse = frames_to_tensor(videos["dense"]), frames_to_tensor(videos["sparse"])
    condition = condition_tensor(rgb, rendered)
    latents = vae.encode(torch.cat([rgb, dense, sparse, condition]))
    out = {name: latents[i].half().numpy() for i, name in enumerate(("rgb", "dense", "sparse", "condition"))}
    for n, frames in history_windows(clip, history_choices).items():
        out[f"history_{n}"] = vae.encode(frames_to_tensor(frames))[0].half().numpy()
    return out


def history_windows(clip: dict, choices: tuple[int, ...] = HISTORY_FRAME_CHOICES) -> dict[int, np.ndarray]:
    """The history of each length in ``choices`` a clip can give: its run-up (``history``, the frames before
    it) followed by its first frame, last ``n`` frames; lengths longer than that run are left out."""
    run = np.concatenate([np.asarray(clip["history"]).reshape(-1, *clip["rgb"].shape[1:]), clip["rgb"][:1]])
    return {n: run[-n:] for n in choices if n <= len(run)}


def cache_latents(
    data: str | Path,
    vae_directory: str | Path,
    precision: str = "auto",
    progress: bool = True,
    render: Callable[[dict], np.ndarray] | None = None,
    condition: str = "rendered",
) -> Path:
    """Encode every clip of ``data`` with the VAE saved in ``vae_directory``; resumable (existing files kept).

    ``render``: for a ``condition="rendered"`` model, a function of a clip record (with ``rgb``, ``depth``,
    ``poses``, ``intrinsics``) returning its first frame rendered along its camera path (uint8 ``[F, H, W, 3]``);
    the latents then go to the ``-{condition}`` cache (``rendered``; ``memory`` for the world memory's renders,
    lv2_env/data/memory_renders.py; the record passed carries its ``file``). The caller supplies it (lv2_env's warp), since ``model/``
    knows nothing of scenes. When the plain cache of the same VAE already has a clip, only its conditioning is
    encoded anew (likewise from the ``-rendered`` cache for another conditioning). ``precision``: as
    :func:`model.precision.resolve_precision` (bf16 only where it is faster).
    """
    data = Path(data)
    identity = vae_id(vae_directory)
    condition = "first_frame" if render is None else condition
    out = cache_directory(data, vae_directory, condition)
    plain = cache_directory(data, vae_directory)
    out.mkdir(parents=True, exist_ok=True)
    for directory in (out, plain, cache_directory(data, vae_directory, "rendered")):  # never mix clips of the old history windows with the new ones
        check_history_marker(directory)
    fields = ("rgb", "dense", "sparse", "history") + (("depth", "poses", "intrinsics") if render else ())
    dataset = ClipDataset(data, fields)
    vae = VideoVAE.from_pretrained(vae_directory).eval()
    context = autocast_context(resolve_precision(precision))
    for i in tqdm(range(len(dataset)), desc=f"caching latents ({condition})", unit="clip", disable=not progress):
        name = Path(dataset.clips[i]["file"]).name
        path = out / name
        if path.exists():
            continue
        clip = {**dataset[i], "file": dataset.clips[i]["file"]}
        rendered = render(clip) if render else None
        # Another cache of the same VAE already holds this clip's other latents: encode only its conditioning.
        reusable = [d / name for d in (plain, cache_directory(data, vae_directory, "rendered")) if d != out]
        reusable = [p for p in reusable if p.exists()]
        with context, torch.no_grad():
            if render and reusable:
                with np.load(reusable[0]) as cached:
                    latents = {k: cached[k] for k in cached.files}
                latents["condition"] = vae.encode(condition_tensor(frames_to_tensor(clip["rgb"]), rendered))[0].half().numpy()
            else:
                latents = encode_clip(vae, clip, rendered=rendered)
        temporary = path.with_suffix(".tmp.npz")
        np.savez(temporary, **latents)
        temporary.replace(path)
    (out / "index.json").write_text(json.dumps({"vae_id": identity, "condition": condition,
                                                "history_frames": list(HISTORY_FRAME_CHOICES),
                                                HISTORY_MARKER: True,
                                                "clips": [Path(c["file"]).name for c in dataset.clips]}))
    return out


def check_history_marker(directory: Path) -> None:
    """Refuse a latent cache whose history windows end one frame before each clip (written before they were made
    to end with its first frame): its ``history_N`` would train the history stage on another input than
    inference gives. A directory without an index yet (a cache being written) passes."""
    index = directory / "index.json"
    if index.is_file() and not json.loads(index.read_text()).get(HISTORY_MARKER, False):
        raise ValueError(f"{directory} holds latents whose history ends one frame before each clip (an older cache); "
                         f"delete it and run `lv2 train cache-latents` again, so that the history ends with the "
                         f"clip's first frame")


class LatentDataset:
    """Cached latents and captions of a data directory for one VAE."""

    def __init__(self, data: str | Path, vae_directory: str | Path, condition: str = "first_frame") -> None:
        self.data = Path(data)
        self.clips = ClipDataset(self.data, ())
        self.directory = cache_directory(self.data, vae_directory, condition)
        if not (self.directory / "index.json").is_file():
            raise ValueError(
                f"no latents of VAE {vae_id(vae_directory)} ({condition} conditioning) in {self.data}: expected "
                f"{self.directory}/index.json (run `lv2 train cache-latents --data {self.data} --vae {vae_directory}`)"
            )
        check_history_marker(self.directory)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict:
        entry = self.clips.clips[i]
        with np.load(self.directory / Path(entry["file"]).name) as data:
            item = {k: torch.from_numpy(data[k].astype(np.float32)) for k in data.files}
        item["caption"] = entry["caption"]
        return item
