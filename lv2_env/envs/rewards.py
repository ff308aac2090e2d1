"""Rewards for the navigation task: reach the goal object named in the caption.

A reward function is any callable ``reward_fn(transition: Transition) -> float``; pass one to the environment
as ``reward_fn=`` to replace :class:`NavigationReward`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GOAL_RADIUS = 1.5  # metres from the goal object's footprint at which the goal counts as reached


@dataclass(frozen=True)
class Transition:
    """What one step did, as seen by a reward function.

    ``goal_distance_*`` is the horizontal distance (metres) from the camera to the goal object's footprint.
    """

    previous_state: np.ndarray
    state: np.ndarray
    goal_distance_before: float
    goal_distance_after: float
    collided: bool
    reached_goal: bool


@dataclass(frozen=True)
class NavigationReward:
    """Progress toward the goal (metres of distance removed) minus a small cost per step."""

    step_cost: float = 0.01

    def __call__(self, transition: Transition) -> float:
        return float(transition.goal_distance_before - transition.goal_distance_after - self.step_cost)
