"""The pixel agent: a small CNN that walks to the goal from the frame and the goal's colour and kind alone.

It sees what any Gymnasium agent sees with ``goal_observation=True`` (``{"image", "goal"}``) and its own previous
action (its one piece of memory: which way it was already turning when the goal is out of view); nothing
privileged. The image is averaged down to :attr:`AgentConfig.input_size` pixels; the goal's one-hot colour and kind
scale and shift the first convolution's features (FiLM), so the network looks for that colour from its first layer.

``load_agent("world-trained")`` (or ``"truth-trained"``, or a path) returns a :class:`PixelAgent` with SB3's
``predict(obs, state=None, episode_start=None, deterministic=True)``; the ``state`` it returns is the previous
action, which SB3's ``evaluate_policy`` passes back. ``agent.policy_for(env)`` is the same agent as a
``policy(observation, info)`` callable for :func:`agents.rollout.run_rollout` and the benchmark.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lv2_env.envs.core import GOAL_COLOURS, GOAL_KINDS
from lv2_env.signals.actions import DISCRETE_ACTIONS

SHIPPED_AGENTS = Path(__file__).parent / "shipped"
AGENT_NAMES = ("world-trained", "truth-trained")
WEIGHTS_FILE = "agent.safetensors"
CONFIG_FILE = "agent.json"
NUM_ACTIONS = len(DISCRETE_ACTIONS)
NOOP = 0
GOAL_CHANNELS = len(GOAL_COLOURS) + len(GOAL_KINDS)


@dataclass(frozen=True)
class AgentConfig:
    """The network's shape and the observation it was trained on (saved beside the weights)."""

    input_size: int = 64  # pixels per side the image is averaged down to
    channels: tuple[int, ...] = (16, 32, 64, 64)
    hidden: int = 128
    previous_action: bool = False  # its previous action as an input (it then copied itself: see docs/agents.md)
    dropout: float = 0.3  # before the last layer, in training
    image_shape: tuple[int, int, int] = (128, 128, 3)  # the env observation's image it expects
    trained_in: str = ""  # "LV2/GroundTruth-v0" or "LV2/World-v0"
    recipe: dict = dataclasses.field(default_factory=dict)  # how it was trained: command, env steps, frames, ...

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "AgentConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        for name in ("channels", "image_shape"):
            if name in data:
                data[name] = tuple(data[name])
        return cls(**data)


def downsample(images: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """uint8 images ``[N, H, W, 3]`` as float ``[N, 3, size, size]`` in [0, 1] (area averaging)."""
    x = torch.as_tensor(images)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="area")
    return x


class PixelPolicyNet(nn.Module):
    """Action logits ``[N, 11]`` from images ``[N, 3, S, S]``, goals ``[N, 2]`` and previous actions ``[N]``."""

    def __init__(self, config: AgentConfig) -> None:
        super().__init__()
        self.config = config
        first, *rest = config.channels
        self.first = nn.Conv2d(3, first, 4, stride=2, padding=1)
        # The goal scales and shifts the first layer's features (FiLM): the shift is what constant goal input
        # channels would add, at a sixth of the first layer's arithmetic; the scale can silence other colours.
        self.film = nn.Linear(GOAL_CHANNELS, 2 * first)
        layers, c_in = [], first
        for c_out in rest:
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU()]
            c_in = c_out
        self.convs = nn.Sequential(*layers)
        side = config.input_size // 2 ** len(config.channels)
        self.head = nn.Sequential(
            nn.Linear(c_in * side * side + GOAL_CHANNELS + NUM_ACTIONS, config.hidden), nn.ReLU(),
            nn.Dropout(config.dropout), nn.Linear(config.hidden, NUM_ACTIONS),
        )

    @staticmethod
    def goal_one_hot(goals: torch.Tensor) -> torch.Tensor:
        goals = goals.long()
        return torch.cat([F.one_hot(goals[:, 0], len(GOAL_COLOURS)), F.one_hot(goals[:, 1], len(GOAL_KINDS))], 1).float()

    def forward(self, images: torch.Tensor, goals: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        goal = self.goal_one_hot(goals)  # [N, 16]
        if not self.config.previous_action:
            previous = torch.zeros_like(previous)
        scale, shift = self.film(goal)[:, :, None, None].chunk(2, dim=1)  # [N, C, 1, 1] each
        x = F.relu(self.first(images) * (1.0 + scale) + shift)
        x = self.convs(x).flatten(1)
        return self.head(torch.cat([x, goal, F.one_hot(previous.long(), NUM_ACTIONS).float()], 1))


class PixelAgent:
    """A trained :class:`PixelPolicyNet` behind SB3's ``predict`` (see the module docstring)."""

    def __init__(self, net: PixelPolicyNet, name: str = "") -> None:
        self.net = net.eval()
        self.config = net.config
        self.name = name
        self._rng = np.random.default_rng(0)

    @property
    def observation_space(self) -> gym.spaces.Dict:
        """The single observation it takes (``goal_observation=True``, ``obs_mode="frame"``)."""
        return gym.spaces.Dict({
            "image": gym.spaces.Box(0, 255, self.config.image_shape, dtype=np.uint8),
            "goal": gym.spaces.MultiDiscrete([len(GOAL_COLOURS), len(GOAL_KINDS)]),
        })

    def check_env(self, env: gym.Env) -> None:
        """Refuse an env whose observation space differs from the agent's, naming both."""
        if env.observation_space != self.observation_space:
            raise ValueError(
                f"agent {self.name or '(unnamed)'} takes observations {self.observation_space}, but the env gives "
                f"{env.observation_space}; make the env with goal_observation=True (and obs_mode='frame', "
                f"{self.config.image_shape[1]}x{self.config.image_shape[0]} frames)"
            )

    @torch.no_grad()
    def logits(self, observation: dict[str, np.ndarray], previous: np.ndarray) -> torch.Tensor:
        images = np.asarray(observation["image"])
        goals = np.asarray(observation["goal"])
        if images.ndim == 3:
            images, goals = images[None], goals[None]
        x = downsample(images, self.config.input_size)
        return self.net(x, torch.as_tensor(goals), torch.as_tensor(np.asarray(previous).reshape(-1)))

    def predict(self, observation: dict[str, np.ndarray], state: np.ndarray | None = None,
                episode_start: np.ndarray | None = None, deterministic: bool = True):
        """SB3's ``predict``: ``(actions, state)``; one observation gives one action, a batch a batch. ``state``
        is the previous action of each (None, or where ``episode_start`` is True: no-op)."""
        single = np.asarray(observation["image"]).ndim == 3
        n = 1 if single else len(observation["image"])
        previous = np.full(n, NOOP, dtype=np.int64) if state is None else np.asarray(state, dtype=np.int64).reshape(n)
        if episode_start is not None:
            previous = np.where(np.asarray(episode_start, dtype=bool).reshape(n), NOOP, previous)
        logits = self.logits(observation, previous)
        if deterministic:
            actions = logits.argmax(1).numpy()
        else:
            probs = torch.softmax(logits, 1).numpy()
            actions = np.array([self._rng.choice(NUM_ACTIONS, p=p / p.sum()) for p in probs])
        actions = actions.astype(np.int64)
        return (actions[0] if single else actions), actions.copy()

    def policy_for(self, env: gym.Env) -> "AgentPolicy":
        """This agent as a ``policy(observation, info)`` callable for ``env`` (checked against its space)."""
        self.check_env(env)
        return AgentPolicy(self)

    def save(self, directory: str | Path) -> Path:
        """``agent.safetensors`` and ``agent.json`` (the config) in ``directory``."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.net.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_FILE))
        (directory / CONFIG_FILE).write_text(json.dumps(self.config.to_json(), indent=2) + "\n")
        return directory


class AgentPolicy:
    """A :class:`PixelAgent` as a ``policy(observation, info) -> action`` with ``reset(info)``, remembering its
    previous action within the episode."""

    def __init__(self, agent: PixelAgent) -> None:
        self.agent = agent
        self.previous = NOOP

    def reset(self, info: dict[str, Any] | None = None, seed: int | None = None) -> None:
        self.previous = NOOP

    def __call__(self, observation, info: dict[str, Any] | None = None) -> int:
        action, _ = self.agent.predict(observation, state=np.array([self.previous]), deterministic=True)
        self.previous = int(action)
        return int(action)


def agent_directory(name_or_path: str | Path) -> Path:
    """A shipped agent's directory by name (:data:`AGENT_NAMES`), or the directory given."""
    if str(name_or_path) in AGENT_NAMES:
        return SHIPPED_AGENTS / str(name_or_path)
    return Path(name_or_path)


def load_agent(name_or_path: str | Path = "world-trained", env: gym.Env | None = None) -> PixelAgent:
    """A pixel agent: a shipped one by name (``"world-trained"``, ``"truth-trained"``) or a directory holding
    ``agent.safetensors`` and ``agent.json``. With ``env``, its observation space is checked against the agent's.
    A missing or unreadable file raises ``ValueError`` naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = agent_directory(name_or_path)
    weights, config_path = directory / WEIGHTS_FILE, directory / CONFIG_FILE
    for path in (config_path, weights):
        if not path.is_file():
            hint = f" (shipped agents: {list(AGENT_NAMES)})" if not directory.exists() else ""
            raise ValueError(f"agent file {str(path)!r} does not exist{hint}")
    try:
        config = AgentConfig.from_json(json.loads(config_path.read_text()))
    except (json.JSONDecodeError, TypeError) as err:
        raise ValueError(f"agent config {str(config_path)!r} is not a valid agent.json: {err}") from err
    net = PixelPolicyNet(config)
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as err:
        raise ValueError(f"agent weights {str(weights)!r} cannot be read (truncated or not safetensors): {err}") from err
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"agent weights {str(weights)!r} do not match its agent.json: {err}") from err
    agent = PixelAgent(net, name=str(name_or_path))
    if env is not None:
        agent.check_env(env)
    return agent
