"""G in ``lv2 play``: a pixel agent (:func:`agents.pixel.load_agent`) walks to the scene's goal, seeing what a
Gymnasium agent with ``goal_observation=True`` sees: the frame on screen and the env's goal (its
``goal_indices()``), until it comes within :data:`GOAL_RADIUS` of it."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from lv2_env.envs.rewards import GOAL_RADIUS  # the agent hands the walk back where the goal task ends



class Autopilot:
    """The pixel agent ``agent`` (a name or directory for :func:`agents.pixel.load_agent`; None: the default),
    loaded on first use, and its previous action (the agent's recurrent input)."""

    def __init__(self, agent: str | None = None) -> None:
        self.agent_name = agent
        self.agent = None
        self.previous = 0

    def restart(self) -> None:
        """A new walk (a new world, or G pressed): no previous action."""
        self.previous = 0

    def act(self, frame: np.ndarray, goal: np.ndarray) -> int:
        """The agent's action on ``frame`` with ``goal`` (``[colour, kind]`` indices, the ``"goal"`` of a
        ``goal_observation=True`` observation)."""
        from agents.pixel import load_agent

        if self.agent is None:
            self.agent = load_agent(self.agent_name) if self.agent_name else load_agent()
        observation = {"image": frame, "goal": goal}
        action, _ = self.agent.predict(observation, state=np.array([self.previous]), deterministic=True)
        self.previous = int(action)
        return int(action)


def refusal(goal: str, action_space: gym.spaces.Space) -> str | None:
    """Why the agent cannot walk here (``goal``: the ``info["goal"]`` of the world), or None if it can."""
    if not goal:
        return "no goal to walk to here (a world from a picture)"
    if not isinstance(action_space, gym.spaces.Discrete):
        return "the agent needs discrete actions"
    return None


def goal_reached(info: dict[str, Any]) -> bool:
    """Whether the camera of a step's ``info`` is within :data:`GOAL_RADIUS` of the goal."""
    distance = info.get("goal_distance", np.nan)
    return bool(np.isfinite(distance) and info["goal_distance"] <= GOAL_RADIUS)
