"""The pixel agent's network in Stable-Baselines3: a features extractor for ``MultiInputPolicy``, and the shipped
agents as SB3 models.

    from stable_baselines3 import PPO
    from agents.sb3 import PixelFeatures, sb3_model
    PPO("MultiInputPolicy", env, policy_kwargs=PixelFeatures.policy_kwargs())   # a new network
    model = sb3_model("truth-trained", env)   # a shipped agent's weights in a PPO model (fine-tune with learn())

SB3 hands the extractor the image channels-first in [0, 1] (its ``VecTransposeImage`` and image normalisation) and
the goal as the one-hot of its ``MultiDiscrete`` space, the same one-hot :func:`agents.pixel.goal_one_hot` makes.
An SB3 policy has no previous action to give: the extractor gives a no-op, which is what the agents trained
without ``previous_action`` (the shipped ones) see anyway.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
import torch.nn.functional as F
from stable_baselines3 import PPO
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from agents.pixel import NOOP, NUM_ACTIONS, AgentConfig, PixelPolicyNet, load_agent


class PixelFeatures(BaseFeaturesExtractor):
    """:class:`~agents.pixel.PixelPolicyNet`'s stages 1-3 (encode with FiLM, segment the goal, read the mask) as
    an SB3 features extractor of ``config.hidden`` features; ``net`` holds the whole network (its action head
    is what :func:`sb3_model` copies into the policy's ``action_net``)."""

    def __init__(self, observation_space: gym.spaces.Dict, config: AgentConfig | None = None) -> None:
        config = config or AgentConfig()
        super().__init__(observation_space, features_dim=config.hidden)
        self.net = PixelPolicyNet(config)

    @staticmethod
    def policy_kwargs(config: AgentConfig | None = None, **extra: Any) -> dict[str, Any]:
        """``policy_kwargs`` for ``PPO("MultiInputPolicy", ...)``: this extractor, shared by the actor and the
        critic, and no extra actor layers (the extractor ends where the pixel agent's action layer begins)."""
        return {"features_extractor_class": PixelFeatures,
                "features_extractor_kwargs": {"config": config or AgentConfig()},
                "net_arch": {"pi": [], "vf": [64]}, **extra}

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        images = observations["image"].float()
        if images.shape[-1] == 3 and images.shape[1] != 3:  # channels-last (no VecTransposeImage)
            images = images.permute(0, 3, 1, 2)
        if images.max() > 1.0:  # not normalised by SB3
            images = images / 255.0
        size = self.net.config.input_size
        if images.shape[-1] != size:
            images = F.interpolate(images, size=(size, size), mode="area")
        goal = observations["goal"].float()
        previous = F.one_hot(torch.full((len(images),), NOOP, dtype=torch.long), NUM_ACTIONS).float()
        features, _ = self.net.features(images, goal, previous)
        return features


def sb3_model(name_or_path: str | Path, env: gym.Env, **ppo_kwargs: Any) -> PPO:
    """A PPO model for ``env`` whose policy acts as the pixel agent ``name_or_path`` (a shipped name or a
    directory, :func:`agents.pixel.load_agent`): the extractor takes its weights and the policy's action layer
    its action layer, so ``model.predict(obs, deterministic=True)`` gives the agent's action. ``learn()`` then
    fine-tunes it with PPO; ``model.save(...)``/``PPO.load(...)`` work as for any SB3 model."""
    agent = load_agent(name_or_path, env=env)
    ppo_kwargs.setdefault("policy_kwargs", PixelFeatures.policy_kwargs(agent.config))
    model = PPO("MultiInputPolicy", env, **ppo_kwargs)
    policy = model.policy
    policy.features_extractor.net.load_state_dict(agent.net.state_dict())
    with torch.no_grad():
        policy.action_net.weight.copy_(agent.net.action_head.weight)
        policy.action_net.bias.copy_(agent.net.action_head.bias)
    return model
