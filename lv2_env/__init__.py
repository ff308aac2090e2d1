"""lv2 environments: camera, actions, control signals, procedural worlds.

Importing this package registers the environments with Gymnasium::

    import gymnasium as gym
    import lv2_env  # noqa: F401  (registers the LV2/ namespace)

    env = gym.make("LV2/GroundTruth-v0", action_mode="continuous")

``gym.make("lv2_env:LV2/GroundTruth-v0")`` does the import itself.
"""

from gymnasium.envs.registration import register, registry

__version__ = "0.1.0"

# For episodes as long as their caller says (rollouts, play, agents' own collections and evaluations): far beyond
# any run's length, in place of the registered limit of 100 steps (``gym.make(..., max_episode_steps=...)``).
UNLIMITED_EPISODE_STEPS = 10**9

if "LV2/GroundTruth-v0" not in registry:
    register(
        id="LV2/GroundTruth-v0",
        entry_point="lv2_env.envs.ground_truth:GroundTruthEnv",
        max_episode_steps=100,
    )

if "LV2/World-v0" not in registry:
    register(
        id="LV2/World-v0",
        entry_point="lv2_env.envs.world:WorldEnv",
        vector_entry_point="lv2_env.envs.world_vector:WorldVectorEnv",
        max_episode_steps=100,
    )
