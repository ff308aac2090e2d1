"""Training the pixel agent by imitation of the privileged teacher, with every frame of every clip labelled.

The recipe (behaviour cloning with noise injection, as DART does):

1. **Collect.** A noisy teacher (:class:`~agents.teacher.GoalTeacher` with ``noise``: a share of its actions
   replaced by random walking or turning) drives episodes of at most ``episode_steps`` steps, each in a new scene
   of the ``agent_train`` split, starting at the origin or part of the way to the goal. The noise takes the
   camera off the teacher's path, so the labels cover the states a student's mistakes lead to. Each step's clip
   gives ``F - 1 = 16`` frames, and each frame is labelled with the teacher's action *at that frame's exact
   camera state* (``info["states"]``): 16 labels per env step, the way an agent can learn from a generator that
   is slow per step but rich per step. The labelling teacher searches by turning left while the goal is out of
   sight (``label_search="left"``): a student that sees only the frame cannot know which way the shorter turn
   is, and learning from labels that turn toward a goal it cannot see made it turn left and right in turn for
   ever (validation scenes: success 0.0, see docs/agents.md). Without its previous action as an input it
   also cannot copy itself (with it, it repeated its first action for the whole episode: 0.08).
2. **Train.** A :class:`~agents.pixel.PixelPolicyNet` fits the labels by cross-entropy. (Mirrored copies,
   image flipped and left and right swapped, are an option, off: they teach "turn right" wherever the goal is
   out of sight too, which brought the left-right dithering back.)

The behaviour never looks at the images, so a collection in ``LV2/World-v0`` and one in ``LV2/GroundTruth-v0`` with
the same settings visit exactly the same camera states with the same labels: the truth-trained and world-trained
agents differ only in the pictures they learned from. Collections are stored one episode per ``.npz`` file and
resume where they stopped.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from agents.pixel import NOOP, AgentConfig, PixelAgent, PixelPolicyNet, downsample
from agents.teacher import ACTION, GoalTeacher
from lv2_env.data.splits import split_scenes
from lv2_env.signals.collision import obstacles_at
from lv2_env.worlds import generate_scene

# Mirroring an image swaps these actions.
MIRRORED = {ACTION["strafe_left"]: ACTION["strafe_right"], ACTION["strafe_right"]: ACTION["strafe_left"],
            ACTION["turn_left"]: ACTION["turn_right"], ACTION["turn_right"]: ACTION["turn_left"]}


@dataclass(frozen=True)
class CollectConfig:
    """What one collection is: the same for both agents, so they get the same env steps."""

    env_steps: int = 1200  # the budget: env steps (clips) in all
    episode_steps: int = 10  # at most this many steps per episode (one scene each)
    noise: float = 0.3  # share of the teacher's actions replaced by a random move
    midway_share: float = 0.5  # share of episodes that start part of the way to the goal
    split: str = "agent_train"
    input_size: int = 64  # frames are stored at the agent's input size
    label_search: str = "left"  # the labelling teacher's search (agents.teacher.GoalTeacher): what a student can see


def start_options(scene_seed: int, style: str, episode: int, midway_share: float, scene) -> dict[str, Any]:
    """Reset options of a collection episode: the scene, and for a ``midway_share`` of episodes a start pose
    20-80% of the way to the goal, up to 3 m to the side, facing anywhere (a free one; else the origin)."""
    options: dict[str, Any] = {"scene_seed": scene_seed, "style": style}
    rng = np.random.default_rng([scene_seed, episode])
    if rng.random() >= midway_share:
        return options
    goal = scene.objects[scene.landmark].center[:2]
    along = goal / max(np.linalg.norm(goal), 1e-9)
    for _ in range(20):
        point = rng.uniform(0.2, 0.8) * goal + rng.uniform(-3.0, 3.0) * np.array([-along[1], along[0]])
        state = np.array([point[0], point[1], 1.6, rng.uniform(-np.pi, np.pi), 0.0, 0.0])
        if not obstacles_at(scene, state[None, :3])[0]:
            return {**options, "start_pose": state}
    return options


def collect(env: gym.Env, config: CollectConfig, out_dir: str | Path, progress: bool = True) -> dict[str, Any]:
    """Run the noisy teacher in ``env`` (``goal_observation=True``, discrete actions) until ``config.env_steps``
    steps are stored in ``out_dir`` (one ``episode_NNNNN.npz`` per episode: ``images`` uint8 ``[n, S, S, 3]``,
    ``goals`` ``[n, 2]``, ``previous`` and ``labels`` ``[n]``, ``steps`` the env steps it took). Episodes already
    there are kept (a resumed collection goes on after them). Returns a summary."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    teacher = GoalTeacher(env, noise=config.noise)
    label_teacher = GoalTeacher(env, search=config.label_search)  # the labels: the planner without noise
    done_steps, episode, frames = 0, 0, 0
    bar = tqdm(total=config.env_steps, desc=f"collect {out_dir.name}", unit="step", disable=not progress)
    started = time.perf_counter()
    while done_steps < config.env_steps:
        path = out_dir / f"episode_{episode:05d}.npz"
        if path.exists():
            with np.load(path) as stored:
                stored_steps, stored_frames = int(stored["steps"]), len(stored["labels"])
            done_steps, frames, episode = done_steps + stored_steps, frames + stored_frames, episode + 1
            bar.update(stored_steps)
            continue
        scene_seed, style = split_scenes(config.split, 1, start=episode)[0]
        options = start_options(scene_seed, style, episode, config.midway_share, generate_scene(scene_seed, style))
        observation, info = env.reset(seed=scene_seed, options=options)
        teacher.reset(info, seed=scene_seed)
        label_teacher.reset(info)
        images, goals, previous, states = [info["frames"][-1]], [observation["goal"]], [NOOP], [info["camera_state"]]
        steps = 0
        for _ in range(min(config.episode_steps, config.env_steps - done_steps)):
            action = teacher(observation, info)
            observation, _, terminated, truncated, info = env.step(action)
            steps += 1
            images.extend(info["frames"][1:])
            states.extend(info["states"][1:])
            goals.extend([observation["goal"]] * (len(info["frames"]) - 1))
            previous.extend([action] * (len(info["frames"]) - 1))
            if terminated or truncated:
                break
        labels = label_teacher.labels(np.stack(states))
        small = (downsample(np.stack(images), config.input_size) * 255.0).round().byte().permute(0, 2, 3, 1).numpy()
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, images=small, goals=np.stack(goals).astype(np.int64),
                            previous=np.array(previous, dtype=np.int64), labels=np.array(labels, dtype=np.int64),
                            states=np.stack(states).astype(np.float64), steps=steps, scene_seed=scene_seed,
                            style=style)
        tmp.replace(path)
        done_steps += steps
        frames += len(labels)
        bar.update(steps)
        episode += 1
    bar.close()
    summary = {"env_steps": done_steps, "episodes": episode, "frames": frames, "config": asdict(config),
               "seconds_this_run": round(time.perf_counter() - started, 1)}
    (out_dir / "collection.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def load_collection(directory: str | Path) -> dict[str, np.ndarray]:
    """Every episode of a collection concatenated: ``images``, ``goals``, ``previous``, ``labels``."""
    files = sorted(Path(directory).glob("episode_*.npz"))
    if not files:
        raise ValueError(f"no episodes (episode_*.npz) in {str(directory)!r}: run the collection first")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("images", "goals", "previous", "labels")}
    for file in files:
        with np.load(file) as stored:
            for key in parts:
                parts[key].append(stored[key])
    return {k: np.concatenate(v) for k, v in parts.items()}


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 12
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    mirror: bool = False  # mirrored copies would also teach "turn right" where the goal is out of sight
    shift: int = 4  # pixels of random translation per frame (0: none)
    brightness: float = 0.25  # frames scaled by a random factor in 1 +- this (hue kept: the goal is a colour)
    seed: int = 0


def mirror_batch(images: torch.Tensor, previous: torch.Tensor, labels: torch.Tensor, flip: torch.Tensor):
    """Flip the chosen images left-right and swap left and right in their actions."""
    table = torch.arange(len(ACTION))
    for a, b in MIRRORED.items():
        table[a] = b
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    previous = torch.where(flip, table[previous], previous)
    labels = torch.where(flip, table[labels], labels)
    return images, previous, labels


def augment(images: torch.Tensor, shift: int, brightness: float, generator: torch.Generator) -> torch.Tensor:
    """Each frame ``[N, 3, S, S]`` moved by up to ``shift`` pixels (edges repeated) and scaled in brightness."""
    n, _, size, _ = images.shape
    if shift > 0:
        offsets = torch.randint(-shift, shift + 1, (n, 2), generator=generator).float() * (2.0 / size)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0
        theta[:, :, 2] = offsets
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        images = F.grid_sample(images, grid, padding_mode="border", align_corners=False)
    if brightness > 0:
        scale = 1.0 + brightness * (2.0 * torch.rand(n, 1, 1, 1, generator=generator) - 1.0)
        images = (images * scale).clamp_(0.0, 1.0)
    return images


def train(data: dict[str, np.ndarray], config: TrainConfig, agent_config: AgentConfig,
          checkpoint: Callable[[int, PixelAgent], None] | None = None, progress: bool = True) -> tuple[PixelAgent, list]:
    """Fit a new :class:`PixelPolicyNet` to ``data`` (:func:`load_collection`); ``checkpoint(epoch, agent)`` is
    called after every epoch. Returns the agent and the per-epoch ``[{epoch, loss, accuracy}]``."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    net = PixelPolicyNet(agent_config)
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    images = torch.as_tensor(data["images"])  # uint8 [N, S, S, 3]
    goals, previous, labels = (torch.as_tensor(data[k]) for k in ("goals", "previous", "labels"))
    n = len(labels)
    total_batches = config.epochs * ((n + config.batch_size - 1) // config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.learning_rate, total_steps=total_batches)
    history = []
    for epoch in range(1, config.epochs + 1):
        net.train()
        order = torch.randperm(n, generator=generator)
        losses, correct = [], 0
        batches = range(0, n, config.batch_size)
        for start in tqdm(batches, desc=f"epoch {epoch}/{config.epochs}", unit="batch", disable=not progress,
                          leave=False):
            index = order[start:start + config.batch_size]
            x = images[index].permute(0, 3, 1, 2).float().div_(255.0)
            p, y = previous[index], labels[index]
            if config.mirror:
                flip = torch.rand(len(index), generator=generator) < 0.5
                x, p, y = mirror_batch(x, p, y, flip)
            x = augment(x, config.shift, config.brightness, generator)
            logits = net(x, goals[index], p)
            loss = F.cross_entropy(logits, y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(float(loss.detach()))
            correct += int((logits.argmax(1) == y).sum())
        history.append({"epoch": epoch, "loss": round(float(np.mean(losses)), 4), "accuracy": round(correct / n, 4)})
        agent = PixelAgent(net.eval())
        if checkpoint is not None:
            checkpoint(epoch, agent)
    return PixelAgent(net.eval()), history
