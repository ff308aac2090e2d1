"""The pixel agent: a small network that walks to the goal from the frame and the goal's colour and kind alone.

It sees what any Gymnasium agent sees with ``goal_observation=True`` (``{"image", "goal"}``), optionally its own
previous action, and nothing privileged. :class:`PixelPolicyNet`'s forward, in stages:

1. **Encode** the frame (averaged down to :attr:`AgentConfig.input_size` pixels) with four convolutions, the first
   at full input resolution (a goal 20 m away is a few pixels: no early downsampling), each stage's features
   scaled and shifted by the goal's one-hot colour and kind (FiLM), so every layer looks for that goal.
2. **Segment the goal**: a U-Net decoder gives the goal's mask at half the input resolution, trained on the
   goal's exact pixels (the scene's object ids), so perception is supervised densely, not only by actions.
3. **Read the mask**: its column and row profiles (where the goal is, how big), its area and peak, beside a
   coarse map of the scene (obstacles) and the goal's one-hot.
4. **Act**: an MLP gives 11 action logits, and auxiliary heads the goal's visibility, bearing and distance.

``load_agent("truth-trained")`` (or ``"world-trained"``, or a path) returns a :class:`PixelAgent` with SB3's
``predict(obs, state=None, episode_start=None, deterministic=True)``; the ``state`` it returns is the previous
action, which SB3's ``evaluate_policy`` passes back. ``agent.policy_for(env)`` is the same agent as a
``policy(observation, info)`` callable for :func:`agents.rollout.run_rollout` and the benchmark.
:mod:`agents.sb3` builds the same network as an SB3 features extractor.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lv2_env.envs.core import GOAL_COLOURS, GOAL_KINDS
from lv2_env.signals.actions import DISCRETE_ACTIONS

SHIPPED_AGENTS = Path(__file__).parent / "shipped"
AGENT_NAMES = ("world-trained", "truth-trained")
DEFAULT_AGENT = "truth-trained"  # the shipped agent that walks to the goal most often (docs/agents.md)
WEIGHTS_FILE = "agent.safetensors"
CONFIG_FILE = "agent.json"
NUM_ACTIONS = len(DISCRETE_ACTIONS)
NOOP = 0
GOAL_CHANNELS = len(GOAL_COLOURS) + len(GOAL_KINDS)
CONTEXT_CHANNELS = 8  # channels of the coarse scene map the policy reads beside the mask


@dataclass(frozen=True)
class AgentConfig:
    """The network's shape and the observation it was trained on (saved beside the weights)."""

    input_size: int = 64  # pixels per side the image is averaged down to
    channels: tuple[int, int, int, int] = (8, 16, 32, 64)  # the four encoder stages (strides 1, 2, 2, 2)
    hidden: int = 128
    previous_action: bool = False  # its previous action as an input (a memory of the search)
    dropout: float = 0.2  # before the action layer, in training
    image_shape: tuple[int, int, int] = (128, 128, 3)  # the env observation's image it expects
    trained_in: str = ""  # "LV2/GroundTruth-v0" or "LV2/World-v0"
    recipe: dict = dataclasses.field(default_factory=dict)  # how it was trained: command, env steps, frames, ...

    def __post_init__(self) -> None:
        if len(self.channels) != 4:
            raise ValueError(f"channels must name the four encoder stages, got {self.channels!r}")
        if self.input_size % 8:
            raise ValueError(f"input_size must be a multiple of 8 (three stride-2 stages), got {self.input_size!r}")

    @property
    def mask_size(self) -> int:
        """Pixels per side of the predicted goal mask (half the input)."""
        return self.input_size // 2

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


def goal_one_hot(goals: torch.Tensor) -> torch.Tensor:
    """``[N, 2]`` (colour, kind) indices as ``[N, 16]`` one-hot."""
    goals = torch.as_tensor(goals).long()
    return torch.cat([F.one_hot(goals[:, 0], len(GOAL_COLOURS)), F.one_hot(goals[:, 1], len(GOAL_KINDS))], 1).float()


class PolicyOutputs(NamedTuple):
    """What :class:`PixelPolicyNet` predicts for a batch of ``N`` frames."""

    actions: torch.Tensor  # [N, 11] logits
    mask: torch.Tensor  # [N, M, M] logits of "this pixel shows the goal", M = input_size / 2
    in_view: torch.Tensor  # [N] logit of "the goal shows in the frame"
    bearing: torch.Tensor  # [N] the goal's heading off the view axis, in half fields of view (left positive)
    distance: torch.Tensor  # [N] log(1 + metres to the goal's footprint)
    features: torch.Tensor  # [N, hidden]: what the action layer reads (an SB3 features extractor's output)


class PixelPolicyNet(nn.Module):
    """Frames ``[N, 3, S, S]`` in [0, 1], goals ``[N, 2]`` and previous actions ``[N]`` -> :class:`PolicyOutputs`
    (the stages are in the module docstring)."""

    def __init__(self, config: AgentConfig) -> None:
        super().__init__()
        self.config = config
        c0, c1, c2, c3 = config.channels
        self.encoder = nn.ModuleList([
            nn.Conv2d(3, c0, 3, stride=1, padding=1), nn.Conv2d(c0, c1, 3, stride=2, padding=1),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.Conv2d(c2, c3, 3, stride=2, padding=1),
        ])
        # One FiLM (scale, shift) per encoder stage: the goal conditions every layer, not only the first.
        self.film = nn.Linear(GOAL_CHANNELS, 2 * sum(config.channels))
        self.decode2 = nn.Conv2d(c3 + c2, c2, 3, padding=1)
        self.decode1 = nn.Conv2d(c2 + c1, c1, 3, padding=1)
        self.mask_head = nn.Conv2d(c1, 1, 1)
        nn.init.constant_(self.mask_head.bias, -4.0)  # the goal covers ~1% of a frame: start near "not the goal"
        self.context = nn.Conv2d(c3, CONTEXT_CHANNELS, 1)
        m, coarse = config.mask_size, config.input_size // 8
        inputs = 2 * m + 2 + CONTEXT_CHANNELS * coarse * coarse + GOAL_CHANNELS + NUM_ACTIONS
        self.body = nn.Sequential(nn.Linear(inputs, config.hidden), nn.ReLU(), nn.Dropout(config.dropout))
        self.action_head = nn.Linear(config.hidden, NUM_ACTIONS)
        self.aux_head = nn.Linear(config.hidden, 3)  # in view, bearing, distance

    def features(self, images: torch.Tensor, goal: torch.Tensor, previous: torch.Tensor):
        """Stages 1-3 from frames ``[N, 3, S, S]``, the goal's one-hot ``[N, 16]`` (:func:`goal_one_hot`) and the
        previous actions' one-hot ``[N, 11]``: ``(features [N, hidden], mask logits [N, M, M])``."""
        # 1. Encode, every stage modulated by the goal.
        films = self.film(goal).split([2 * c for c in self.config.channels], dim=1)
        skips, x = [], images
        for conv, film in zip(self.encoder, films):
            scale, shift = film[:, :, None, None].chunk(2, dim=1)
            x = F.relu(conv(x) * (1.0 + scale) + shift)
            skips.append(x)
        _, e1, e2, e3 = skips
        # 2. Segment the goal (U-Net decoder to half resolution).
        d2 = F.relu(self.decode2(torch.cat([F.interpolate(e3, scale_factor=2.0), e2], 1)))
        d1 = F.relu(self.decode1(torch.cat([F.interpolate(d2, scale_factor=2.0), e1], 1)))
        mask = self.mask_head(d1)[:, 0]  # [N, M, M]
        # 3. Read the mask: where the goal is (column profile: bearing; row profile: distance), how much of it.
        p = torch.sigmoid(mask)
        m = p.shape[-1]
        read = [p.sum(1) / m, p.sum(2) / m, p.mean((1, 2))[:, None], p.amax((1, 2))[:, None]]
        if not self.config.previous_action:
            previous = torch.zeros_like(previous)
        context = F.relu(self.context(e3)).flatten(1)
        return self.body(torch.cat([*read, context, goal, previous], 1)), mask

    def forward(self, images: torch.Tensor, goals: torch.Tensor, previous: torch.Tensor) -> PolicyOutputs:
        previous = F.one_hot(torch.as_tensor(previous).long(), NUM_ACTIONS).float()
        features, mask = self.features(images, goal_one_hot(goals), previous)
        # 4. Act, and the auxiliary heads.
        aux = self.aux_head(features)
        return PolicyOutputs(self.action_head(features), mask, aux[:, 0], aux[:, 1], aux[:, 2], features)


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

    def check_observation(self, observation) -> tuple[np.ndarray, np.ndarray]:
        """``(images [N, H, W, 3], goals [N, 2])`` of one observation or a batch; anything else raises
        ``ValueError`` naming the space the agent expects."""
        expected = f"expected observations of {self.observation_space} (one, or a batch with a leading axis)"
        if not isinstance(observation, dict) or not {"image", "goal"} <= set(observation):
            got = f"a dict with keys {sorted(observation)}" if isinstance(observation, dict) else \
                f"{type(observation).__name__} of shape {np.shape(observation)}"
            raise ValueError(f"{expected}; got {got} (make the env with goal_observation=True)")
        images, goals = np.asarray(observation["image"]), np.asarray(observation["goal"])
        if images.ndim == 3:
            images, goals = images[None], goals.reshape(1, -1)
        if images.shape[1:] != self.config.image_shape or goals.shape != (len(images), 2):
            raise ValueError(f"{expected}; got image {images.shape} and goal {goals.shape}")
        limits = np.array([len(GOAL_COLOURS), len(GOAL_KINDS)])
        if not np.issubdtype(goals.dtype, np.integer) or (goals < 0).any() or (goals >= limits).any():
            raise ValueError(f"{expected}; got goal indices {goals.tolist()} outside MultiDiscrete({limits.tolist()})")
        return images, goals

    @torch.no_grad()
    def outputs(self, observation: dict[str, np.ndarray], previous: np.ndarray) -> PolicyOutputs:
        """The network's :class:`PolicyOutputs` for an observation (or a batch) and previous actions."""
        images, goals = self.check_observation(observation)
        x = downsample(images, self.config.input_size)
        return self.net(x, torch.as_tensor(goals), torch.as_tensor(np.asarray(previous).reshape(-1)))

    def logits(self, observation: dict[str, np.ndarray], previous: np.ndarray) -> torch.Tensor:
        """Action logits ``[N, 11]``."""
        return self.outputs(observation, previous).actions

    def predict(self, observation: dict[str, np.ndarray], state: np.ndarray | None = None,
                episode_start: np.ndarray | None = None, deterministic: bool = True):
        """SB3's ``predict``: ``(actions, state)``; one observation gives one action, a batch a batch. ``state``
        is the previous action of each (None, or where ``episode_start`` is True: no-op)."""
        images, _ = self.check_observation(observation)
        single = np.asarray(observation["image"]).ndim == 3
        n = len(images)
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


def load_agent(name_or_path: str | Path = DEFAULT_AGENT, env: gym.Env | None = None) -> PixelAgent:
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
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    stored = {k: tuple(v.shape) for k, v in state.items()}
    if expected != stored:
        differ = sorted(k for k in set(expected) | set(stored) if expected.get(k) != stored.get(k))
        shown = "; ".join(f"{k}: agent.json gives {expected.get(k, 'no such tensor')}, the weights hold "
                          f"{stored.get(k, 'no such tensor')}" for k in differ[:4])
        raise ValueError(f"agent weights {str(weights)!r} are for another network than its agent.json describes "
                         f"({len(differ)} tensors differ: {shown})")
    net.load_state_dict(state)
    agent = PixelAgent(net, name=str(name_or_path))
    if env is not None:
        agent.check_env(env)
    return agent
