"""Training the pixel agent on the privileged teacher's labels, with every frame of every clip labelled, by
DAgger: the student drives, the teacher labels what the student sees.

1. **Collect** (:func:`collect`). Episodes of at most ``episode_steps`` steps, each in a new scene of the
   ``agent_train`` split, starting at the origin or part of the way to the goal. Who drives: the noisy teacher
   (:class:`~agents.teacher.GoalTeacher` with ``noise``: a share of its actions replaced by random walking or
   turning, as DART does) on a ``beta`` share of the steps, the student (a :class:`~agents.pixel.PixelAgent`) on
   the rest; ``beta=1`` or no student is plain behaviour cloning (the first DAgger round). Each step's clip gives
   ``F - 1 = 16`` frames, and each frame is labelled from its exact camera state (``info["states"]``):
   the teacher's action there, the goal's pixels (the scene's object ids: a dense perception target), whether
   the goal is in view, its bearing and its distance. The labelling teacher searches by turning left while the
   goal is out of sight (``label_search="left"``): a student that sees only the frame cannot know which way the
   shorter turn is (labels that turn toward a goal it cannot see made it turn left and right in turn for ever;
   see docs/agents.md).
2. **Train** (:func:`train`). A :class:`~agents.pixel.PixelPolicyNet` fits the actions by cross-entropy with
   class weights (so "turn left", the commonest label, does not swamp the rest), the goal mask by a
   pixel-balanced binary cross-entropy plus a soft Dice term, and the auxiliary heads (in view, bearing,
   distance).
3. **Aggregate** (:mod:`agents.dagger`): rounds of 1 and 2, each round's student driving the next collection,
   trained on every round's frames.

Collections are stored one episode per ``.npz`` file and resume where they stopped.
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

from agents.pixel import NOOP, NUM_ACTIONS, AgentConfig, AgentPolicy, PixelAgent, PixelPolicyNet, downsample
from agents.teacher import MIN_GOAL_PIXELS, VISIBILITY_SIZE, GoalTeacher, heading_to
from lv2_env.envs.levels import EYE_HEIGHT
from lv2_env.data.splits import split_scenes
from lv2_env.signals.actions import DISCRETE_ACTIONS
from lv2_env.signals.camera import poses_from_states
from lv2_env.signals.collision import obstacles_at
from lv2_env.worlds import Renderer, generate_scene

COLLECTED = ("images", "goals", "previous", "labels", "masks", "in_view", "bearing", "distance")


@dataclass(frozen=True)
class CollectConfig:
    """What one collection (one DAgger round) is."""

    env_steps: int = 1200  # the budget: env steps (clips) in all
    episode_steps: int = 10  # at most this many steps per episode (one scene each)
    noise: float = 0.3  # share of the teacher's actions replaced by a random move
    midway_share: float = 0.5  # share of episodes that start part of the way to the goal
    split: str = "agent_train"
    first_scene: int = 0  # the split's scene the first episode plays (rounds of DAgger take new scenes)
    beta: float = 1.0  # share of steps the teacher drives when a student is given (DAgger's mixture)
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
        state = np.array([point[0], point[1], EYE_HEIGHT, rng.uniform(-np.pi, np.pi), 0.0, 0.0])
        if not obstacles_at(scene, state[None, :3])[0]:
            return {**options, "start_pose": state}
    return options


def goal_targets(env: gym.Env, states: np.ndarray, mask_size: int, renderer: Renderer | None = None) -> dict[str, np.ndarray]:
    """Dense and scalar perception targets at each camera state ``[N, 6]`` of the env's scene, from its object
    ids (privileged, like the labels): the goal's ``masks`` (uint8 ``[N, M, M]``, a cell set where any of its
    pixels at :data:`VISIBILITY_SIZE` shows the goal), ``in_view`` (at least :data:`MIN_GOAL_PIXELS` of them: the
    teacher's own "in sight"), ``bearing`` (the goal centre's heading off the view axis, in half fields of view,
    left positive) and ``distance`` (log of 1 + metres to the goal's footprint)."""
    if VISIBILITY_SIZE % mask_size:
        raise ValueError(f"the mask size must divide {VISIBILITY_SIZE}, got {mask_size}")
    scene = env.get_wrapper_attr("scene")
    intrinsics = env.get_wrapper_attr("intrinsics")
    renderer = renderer or Renderer(scene, intrinsics.scaled(VISIBILITY_SIZE, VISIBILITY_SIZE))
    masks = renderer.render(poses_from_states(states), shade=False).object_id == scene.landmark + 1
    k = VISIBILITY_SIZE // mask_size
    pooled = masks.reshape(len(masks), mask_size, k, mask_size, k).any(axis=(2, 4))
    goal = scene.objects[scene.landmark]
    half_fov = float(np.arctan(0.5 * intrinsics.width / intrinsics.fx))
    dx, dy = goal.center[0] - states[:, 0], goal.center[1] - states[:, 1]
    off = np.array([heading_to(a, b) for a, b in zip(dx, dy)]) - states[:, 3]
    off = (off + np.pi) % (2 * np.pi) - np.pi
    distance = np.maximum(0.0, np.hypot(dx, dy) - goal.footprint_radius)
    return {"masks": pooled.astype(np.uint8), "in_view": (masks.sum(axis=(1, 2)) >= MIN_GOAL_PIXELS).astype(np.uint8),
            "bearing": (off / half_fov).astype(np.float32), "distance": np.log1p(distance).astype(np.float32)}


def _store(path: Path, **arrays) -> None:
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def _stored_episodes(out_dir: Path) -> list[Path]:
    return sorted(out_dir.glob("episode_*.npz"))


@dataclass(frozen=True)
class PerceptionConfig:
    """Frames for perception only: many scenes, one env step each, no action labels (no plan to build)."""

    scenes: int = 1000  # one env step each
    split: str = "agent_train"
    first_scene: int = 50_000  # far from the DAgger rounds' scenes
    facing_share: float = 0.5  # share of scenes that start facing the goal (within 60 degrees): positives
    frame_stride: int = 4  # frames kept of each clip (a 30-degree turn: neighbours are nearly alike)
    input_size: int = 64


def collect_perception(env: gym.Env, config: PerceptionConfig, out_dir: str | Path,
                       progress: bool = True) -> dict[str, Any]:
    """In each of ``config.scenes`` scenes, a free start anywhere within 25 m of the origin (facing the goal in a
    ``facing_share`` of them), one turning step, and its frames with the goal's perception targets
    (:func:`goal_targets`) and ``labels`` -1 (no action: the action loss skips them). Stored like
    :func:`collect`'s episodes and resumed the same way."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    done = len(_stored_episodes(out_dir))
    started = time.perf_counter()
    turns = (DISCRETE_ACTIONS.index("turn_left"), DISCRETE_ACTIONS.index("turn_right"))
    for i in tqdm(range(done, config.scenes), desc=f"collect {out_dir.name}", unit="scene", disable=not progress,
                  initial=done, total=config.scenes):
        scene_seed, style = split_scenes(config.split, 1, start=config.first_scene + i)[0]
        scene = generate_scene(scene_seed, style)
        rng = np.random.default_rng([scene_seed, 11])
        options: dict[str, Any] = {"scene_seed": scene_seed, "style": style}
        goal = scene.objects[scene.landmark].center
        for _ in range(20):
            state = np.array([*rng.uniform(-25.0, 25.0, 2), EYE_HEIGHT, 0.0, 0.0, 0.0])
            if obstacles_at(scene, state[None, :3])[0]:
                continue
            facing = heading_to(goal[0] - state[0], goal[1] - state[1])
            state[3] = facing + rng.uniform(-1.05, 1.05) if rng.random() < config.facing_share \
                else rng.uniform(-np.pi, np.pi)
            options["start_pose"] = state
            break
        observation, info = env.reset(seed=scene_seed, options=options)
        action = int(turns[int(rng.integers(2))])
        observation, _, _, _, step_info = env.step(action)
        keep = slice(0, None, config.frame_stride)
        frames, states = step_info["frames"][keep], np.asarray(step_info["states"][keep], dtype=np.float64)
        small = (downsample(frames, config.input_size) * 255.0).round().byte().permute(0, 2, 3, 1).numpy()
        n = len(states)
        _store(out_dir / f"episode_{i:05d}.npz", images=small, goals=np.tile(observation["goal"], (n, 1)),
               previous=np.full(n, NOOP, dtype=np.int64), labels=np.full(n, -1, dtype=np.int64), states=states,
               steps=1, student_steps=0, scene_seed=scene_seed, style=style,
               **goal_targets(env, states, config.input_size // 2))
    summary = {"env_steps": config.scenes, "episodes": config.scenes, "config": asdict(config),
               "seconds_this_run": round(time.perf_counter() - started, 1)}
    (out_dir / "collection.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def collect(env: gym.Env, config: CollectConfig, out_dir: str | Path, student: PixelAgent | None = None,
            progress: bool = True) -> dict[str, Any]:
    """Run the noisy teacher (and ``student`` on a ``1 - beta`` share of the steps) in ``env``
    (``goal_observation=True``, discrete actions) until ``config.env_steps`` steps are stored in ``out_dir``
    (one ``episode_NNNNN.npz`` per episode: ``images`` uint8 ``[n, S, S, 3]``, ``goals`` ``[n, 2]``,
    ``previous``, ``labels``, ``in_view``, ``bearing``, ``distance`` ``[n]``, ``masks`` ``[n, S/2, S/2]``,
    ``states``, ``steps`` the env steps it took, ``student_steps`` those the student chose). Episodes already
    there are kept (a resumed collection goes on after them). Returns a summary."""
    if student is None and config.beta < 1.0:
        raise ValueError(f"beta={config.beta} gives the student steps, but no student was given")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    teacher = GoalTeacher(env, noise=config.noise)
    label_teacher = GoalTeacher(env, search=config.label_search)  # the labels: the planner without noise
    policy = None if student is None else AgentPolicy(student)
    mask_size = config.input_size // 2
    done_steps, episode, frames, student_steps = 0, 0, 0, 0
    bar = tqdm(total=config.env_steps, desc=f"collect {out_dir.name}", unit="step", disable=not progress)
    started = time.perf_counter()
    while done_steps < config.env_steps:
        path = out_dir / f"episode_{episode:05d}.npz"
        if path.exists():
            with np.load(path) as stored:
                stored_steps, stored_frames = int(stored["steps"]), len(stored["labels"])
                student_steps += int(stored["student_steps"]) if "student_steps" in stored else 0
            done_steps, frames, episode = done_steps + stored_steps, frames + stored_frames, episode + 1
            bar.update(stored_steps)
            continue
        scene_seed, style = split_scenes(config.split, 1, start=config.first_scene + episode)[0]
        options = start_options(scene_seed, style, episode, config.midway_share, generate_scene(scene_seed, style))
        observation, info = env.reset(seed=scene_seed, options=options)
        teacher.reset(info, seed=scene_seed)
        label_teacher.reset(info)
        rng = np.random.default_rng([scene_seed, episode, 7])
        if policy is not None:
            policy.reset(info)
        images, goals, previous, states = [info["frames"][-1]], [observation["goal"]], [NOOP], [info["camera_state"]]
        steps, by_student = 0, 0
        for _ in range(min(config.episode_steps, config.env_steps - done_steps)):
            if policy is not None and rng.random() >= config.beta:
                action, by_student = policy(observation, info), by_student + 1
            else:
                action = teacher(observation, info)
                if policy is not None:
                    policy.previous = action
            observation, _, terminated, truncated, info = env.step(action)
            steps += 1
            images.extend(info["frames"][1:])
            states.extend(info["states"][1:])
            goals.extend([observation["goal"]] * (len(info["frames"]) - 1))
            previous.extend([action] * (len(info["frames"]) - 1))
            if terminated or truncated:
                break
        states = np.stack(states).astype(np.float64)
        targets = goal_targets(env, states, mask_size, renderer=label_teacher.sight)
        labels = label_teacher.labels(states, in_sight=targets["in_view"])
        small = (downsample(np.stack(images), config.input_size) * 255.0).round().byte().permute(0, 2, 3, 1).numpy()
        _store(path, images=small, goals=np.stack(goals).astype(np.int64), previous=np.array(previous, dtype=np.int64),
               labels=np.array(labels, dtype=np.int64), states=states, steps=steps, student_steps=by_student,
               scene_seed=scene_seed, style=style, **targets)
        done_steps += steps
        student_steps += by_student
        frames += len(states)
        bar.update(steps)
        episode += 1
    bar.close()
    summary = {"env_steps": done_steps, "episodes": episode, "frames": frames, "student_steps": student_steps,
               "config": asdict(config), "seconds_this_run": round(time.perf_counter() - started, 1)}
    (out_dir / "collection.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def load_collection(*directories: str | Path) -> dict[str, np.ndarray]:
    """Every episode of one or more collections concatenated (the keys of :data:`COLLECTED`)."""
    files = [f for d in directories for f in sorted(Path(d).glob("episode_*.npz"))]
    if not files:
        raise ValueError(f"no episodes (episode_*.npz) in {[str(d) for d in directories]}: run the collection first")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in COLLECTED}
    for file in files:
        with np.load(file) as stored:
            missing = set(COLLECTED) - set(stored.files)
            if missing:
                raise ValueError(f"{file} lacks {sorted(missing)}: it was collected before the perception targets; "
                                 "collect it again")
            for key in parts:
                parts[key].append(stored[key])
    return {k: np.concatenate(v) for k, v in parts.items()}


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 6
    batch_size: int = 128
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    class_balance: float = 0.5  # action class weights ~ frequency ** -class_balance (0: plain cross-entropy)
    mask_weight: float = 1.0
    aux_weight: float = 0.3
    shift: int = 3  # pixels of random translation per frame (0: none)
    brightness: float = 0.25  # frames scaled by a random factor in 1 +- this (hue kept: the goal is a colour)
    seed: int = 0


def augment(images: torch.Tensor, masks: torch.Tensor, shift: int, brightness: float,
            generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Each frame ``[N, 3, S, S]`` and its mask ``[N, S/2, S/2]`` moved together by up to ``shift`` pixels
    (edges repeated), the frame scaled in brightness."""
    n, _, size, _ = images.shape
    if shift > 0:
        # Even shifts only, so the half-resolution mask moves by whole cells with its frame.
        offsets = 2 * torch.randint(-(shift // 2), shift // 2 + 1, (n, 2), generator=generator)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0
        theta[:, :, 2] = offsets.float() * (2.0 / size)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        images = F.grid_sample(images, grid, padding_mode="border", align_corners=False)
        small = F.affine_grid(theta, [n, 1, *masks.shape[1:]], align_corners=False)
        masks = F.grid_sample(masks[:, None], small, mode="nearest", padding_mode="zeros", align_corners=False)[:, 0]
    if brightness > 0:
        scale = 1.0 + brightness * (2.0 * torch.rand(n, 1, 1, 1, generator=generator) - 1.0)
        images = (images * scale).clamp_(0.0, 1.0)
    return images, masks


def class_weights(labels: np.ndarray, power: float) -> torch.Tensor:
    """Cross-entropy weights per action ~ frequency ** -power, mean 1 over the labels (absent actions: 0)."""
    counts = np.bincount(labels[labels >= 0], minlength=NUM_ACTIONS).astype(np.float64)
    weights = np.where(counts > 0, np.maximum(counts, 1.0) ** -power, 0.0)
    weights /= (weights * counts).sum() / counts.sum()
    return torch.as_tensor(weights, dtype=torch.float32)


def losses(out, labels, masks, in_view, bearing, distance, weights: torch.Tensor) -> dict[str, torch.Tensor]:
    """The training losses of one batch (see the module docstring)."""
    seen = in_view.float()
    positive = masks.sum().clamp(min=1.0)
    pos_weight = ((masks.numel() - positive) / positive).clamp(max=50.0).sqrt()  # rare goal pixels count more
    bce = F.binary_cross_entropy_with_logits(out.mask, masks, pos_weight=pos_weight)
    p = torch.sigmoid(out.mask)
    dice = 1.0 - (2.0 * (p * masks).sum((1, 2)) + 1.0) / (p.sum((1, 2)) + masks.sum((1, 2)) + 1.0)
    return {
        # Perception-only frames (label -1) have no action to learn.
        "action": F.cross_entropy(out.actions, labels, weight=weights, ignore_index=-1)
        if (labels >= 0).any() else out.actions.sum() * 0.0,
        "mask": bce + dice.mean(),
        "aux": F.binary_cross_entropy_with_logits(out.in_view, seen)
        + (F.smooth_l1_loss(out.bearing, bearing.clamp(-3, 3), reduction="none") * seen).sum() / seen.sum().clamp(min=1)
        + F.smooth_l1_loss(out.distance, distance),
    }


def train(data: dict[str, np.ndarray], config: TrainConfig, agent_config: AgentConfig,
          init: PixelAgent | None = None, checkpoint: Callable[[int, PixelAgent], None] | None = None,
          progress: bool = True) -> tuple[PixelAgent, list]:
    """Fit a :class:`PixelPolicyNet` (a new one, or ``init``'s weights: DAgger's later rounds start from the
    last) to ``data`` (:func:`load_collection`); ``checkpoint(epoch, agent)`` is called after every epoch.
    Returns the agent and the per-epoch ``[{epoch, loss, accuracy, mask_iou}]``."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    net = PixelPolicyNet(agent_config)
    if init is not None:
        net.load_state_dict(init.net.state_dict())
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    images = torch.as_tensor(data["images"])  # uint8 [N, S, S, 3]
    goals, previous, labels = (torch.as_tensor(data[k]) for k in ("goals", "previous", "labels"))
    masks = torch.as_tensor(data["masks"])
    in_view, bearing, distance = (torch.as_tensor(data[k]) for k in ("in_view", "bearing", "distance"))
    weights = class_weights(data["labels"], config.class_balance)
    n = len(labels)
    total_batches = config.epochs * ((n + config.batch_size - 1) // config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.learning_rate, total_steps=total_batches)
    history = []
    for epoch in range(1, config.epochs + 1):
        net.train()
        order = torch.randperm(n, generator=generator)
        totals, correct, labelled, inter, union = {}, 0, 0, 0.0, 0.0
        for start in tqdm(range(0, n, config.batch_size), desc=f"epoch {epoch}/{config.epochs}", unit="batch",
                          disable=not progress, leave=False):
            index = order[start:start + config.batch_size]
            x = images[index].permute(0, 3, 1, 2).float().div_(255.0)
            x, m = augment(x, masks[index].float(), config.shift, config.brightness, generator)
            out = net(x, goals[index], previous[index])
            parts = losses(out, labels[index], m, in_view[index], bearing[index], distance[index], weights)
            loss = parts["action"] + config.mask_weight * parts["mask"] + config.aux_weight * parts["aux"]
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            for key, value in parts.items():
                totals[key] = totals.get(key, 0.0) + float(value.detach()) * len(index)
            correct += int((out.actions.argmax(1) == labels[index]).sum())
            labelled += int((labels[index] >= 0).sum())
            predicted = out.mask.detach() > 0
            inter += float((predicted & (m > 0.5)).sum())
            union += float((predicted | (m > 0.5)).sum())
        history.append({"epoch": epoch, **{f"loss_{k}": round(v / n, 4) for k, v in totals.items()},
                        "accuracy": round(correct / max(labelled, 1), 4), "mask_iou": round(inter / max(union, 1.0), 4)})
        if checkpoint is not None:
            checkpoint(epoch, PixelAgent(net.eval()))
    return PixelAgent(net.eval()), history


@torch.no_grad()
def frame_metrics(agent: PixelAgent, data: dict[str, np.ndarray], batch_size: int = 512) -> dict[str, float]:
    """How well ``agent`` reads held-out frames: action accuracy (and of each label), the goal mask's IoU and
    its precision and recall per frame (goal predicted in view where it is), bearing error in degrees."""
    net = agent.net.eval()
    preds, views, bearings, inter, union = [], [], [], 0.0, 0.0
    for start in range(0, len(data["labels"]), batch_size):
        s = slice(start, start + batch_size)
        x = torch.as_tensor(data["images"][s]).permute(0, 3, 1, 2).float().div_(255.0)
        if x.shape[-1] != agent.config.input_size:
            x = F.interpolate(x, size=(agent.config.input_size,) * 2, mode="area")
        out = net(x, torch.as_tensor(data["goals"][s]), torch.as_tensor(data["previous"][s]))
        preds.append(out.actions.argmax(1).numpy())
        views.append(out.in_view.numpy() > 0)
        bearings.append(out.bearing.numpy())
        m = torch.as_tensor(data["masks"][s]) > 0
        inter += float(((out.mask > 0) & m).sum())
        union += float(((out.mask > 0) | m).sum())
    pred, view, bearing = np.concatenate(preds), np.concatenate(views), np.concatenate(bearings)
    labels, truth = data["labels"], data["in_view"].astype(bool)
    pred, labels = pred[labels >= 0], labels[labels >= 0]  # perception-only frames have no action
    half_fov = 35.0  # degrees: the envs' default field of view is 70
    return {
        "frames": int(len(labels)),
        "accuracy": float((pred == labels).mean()),
        "balanced_accuracy": float(np.mean([(pred[labels == a] == a).mean() for a in np.unique(labels)])),
        "mask_iou": inter / max(union, 1.0),
        "in_view_precision": float((view & truth).sum() / max(view.sum(), 1)),
        "in_view_recall": float((view & truth).sum() / max(truth.sum(), 1)),
        "bearing_error_deg": float(np.median(np.abs(bearing[truth] - data["bearing"][truth])) * half_fov)
        if truth.any() else float("nan"),
    }
