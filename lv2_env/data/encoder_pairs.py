"""What the VAE encoder sees in LV2/World-v0, recorded: the data a light control encoder is distilled from.

    python -m lv2_env.data.encoder_pairs --out data/encoder-pairs --episodes 60 --steps 20

Each step of ``LV2/World-v0`` first encodes its conditioning videos (the dense and sparse controls and the memory's
render along the path) with the full VAE encoder. This runs World-v0 with the shipped model (or ``--checkpoint``)
on ``train``-split scenes with a random, mostly-forward policy and keeps every batch the encoder receives and what
it returns: ``DIR/pairs/EEEEEE_SS.npz`` with ``videos`` (uint8 ``[K, F, H, W, 3]``) and ``latents`` (float16
``[K, C, T, h, w]``, normalised as :meth:`model.vae.VideoVAE.encode` returns them). The videos are exactly the
env's own, memory and generated frames included, so the student learns the distribution it will meet. An
episode's files are written when it ends, so an interrupted run resumes at the first missing episode.
``model.training.distill_control_encoder`` reads the folder; ``model/`` never imports this module.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

PAIRS_FOLDER = "pairs"
# Scenes of the world model's "train" split, from here on: far from the seeds its training data used first.
FIRST_SEQUENCE = 500_000
# Mostly forward, some turns and strafes: the camera motion a player or agent makes.
POLICY_ACTIONS = np.array([1, 1, 1, 1, 2, 3, 4, 5, 6, 0])


def pair_file(folder: Path, episode: int, step: int) -> Path:
    return folder / PAIRS_FOLDER / f"{episode:06d}_{step:02d}.npz"


def collect_encoder_pairs(out: str | Path, episodes: int, steps: int, checkpoint: str | Path | None = None,
                          precision: str = "auto", seed: int = 0) -> Path:
    """Run ``episodes`` World-v0 episodes of ``steps`` steps and record each encoder call (see the module doc)."""
    import gymnasium as gym

    import lv2_env  # noqa: F401
    from lv2_env.data.splits import split_scenes

    if episodes < 1 or steps < 1:
        raise ValueError(f"episodes and steps must be positive, got {episodes} and {steps}")
    out = Path(out)
    (out / PAIRS_FOLDER).mkdir(parents=True, exist_ok=True)
    # The full VAE encoder, whatever the model ships: its outputs are the targets.
    env = gym.make("LV2/World-v0", checkpoint=checkpoint, preset=None if checkpoint else "tiny", precision=precision,
                   goal_radius=None, control_encoder="full", max_episode_steps=steps + 1)
    vae = env.unwrapped.generator.batch.vae
    full_encode = vae.encode
    recorded: list[tuple[np.ndarray, np.ndarray]] = []

    def recording_encode(video: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        latents = full_encode(video, *args, **kwargs)
        pixels = video.detach().float().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)
        recorded.append((pixels.permute(0, 2, 3, 4, 1).cpu().numpy(), latents.detach().float().half().cpu().numpy()))
        return latents

    vae.encode = recording_encode
    rng = np.random.default_rng(seed)
    scenes = split_scenes("train", episodes, start=FIRST_SEQUENCE)
    (out / "index.json").write_text(json.dumps({"format": "lv2-encoder-pairs", "version": 1, "episodes": episodes,
                                                "steps": steps, "checkpoint": None if checkpoint is None else str(checkpoint),
                                                "first_scene_seed": scenes[0][0]}, indent=1))
    bar = tqdm(total=episodes * steps, desc="encoder pairs", unit="step")
    for episode, (scene_seed, style) in enumerate(scenes):
        actions = rng.choice(POLICY_ACTIONS, size=steps)  # drawn for every episode, so resuming keeps the rest
        if pair_file(out, episode, steps - 1).is_file():
            bar.update(steps)
            continue
        env.reset(seed=seed + episode, options={"scene_seed": scene_seed, "style": style})
        files = []
        for step in range(steps):
            recorded.clear()
            env.step(int(actions[step]))
            videos, latents = recorded[0]  # the conditioning batch comes first; history frames (if any) after
            files.append((pair_file(out, episode, step), videos, latents))
            bar.update(1)
        for path, videos, latents in files:
            np.savez_compressed(path, videos=videos, latents=latents)
    bar.close()
    env.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--episodes", type=int, default=60)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--checkpoint", default=None, help="default: the shipped tiny model")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    collect_encoder_pairs(args.out, args.episodes, args.steps, args.checkpoint, args.precision, args.seed)


if __name__ == "__main__":
    main()
