"""``gymnasium.make_vec("LV2/World-v0", num_envs=N)``: N generated worlds stepped by one generator call."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array

from lv2_env.envs.world import WorldEnv
from lv2_env.envs.threads import apply_torch_threads, check_torch_threads


class WorldVectorEnv(gym.vector.VectorEnv):
    """``N`` copies of :class:`~lv2_env.envs.world.WorldEnv` sharing one model.

    Each step plans every world's camera path and control signals, then generates all ``N`` clips in one batch
    (:class:`model.generator.BatchGenerator`: one VAE encode, one denoising loop, one VAE decode), which on a
    CPU is several times cheaper per clip than ``N`` separate calls. Autoreset follows Gymnasium's default
    ``NEXT_STEP`` mode: the step after a world terminates or is truncated resets it (its action is ignored,
    reward 0) and returns its first observation. Truncation comes from ``max_episode_steps`` (the registered
    100 steps unless given). ``seed`` in :meth:`reset` may be an int (world ``i`` gets ``seed + i``) or a list.
    ``precision``, ``torch_threads``, ``decoder``, ``control_encoder`` and ``device`` are those of
    :class:`WorldEnv` (one process: all of its cores by default). Every other keyword goes to each
    :class:`WorldEnv`.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, max_episode_steps: int | None = None, checkpoint=None, preset: str = "tiny",
                 device: str = "cpu", precision: str = "auto", sampling_steps: int | None = None,
                 torch_threads: int | None = None, decoder: str = "full", control_encoder: str = "full",
                 **env_kwargs: Any) -> None:
        from model.world_model import WorldModel

        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if env_kwargs.get("render_mode") is not None:
            raise ValueError("the batched world does not render; use gymnasium.make for a window")
        env_kwargs.pop("render_mode", None)
        self.torch_threads = apply_torch_threads(check_torch_threads(torch_threads))
        model = WorldModel.load(checkpoint, preset=preset, device=device, precision=precision,
                                sampling_steps=sampling_steps, need_depth=env_kwargs.get("control_source") == "cache",
                                decoder=decoder, control_encoder=control_encoder)
        self.precision = model.precision
        self.batch = model.batch_generator(num_envs)
        # Each world steps on its own through its slot (a batch of one); step() below runs them all together.
        self.envs = [WorldEnv(model=model, generator=slot, torch_threads=self.torch_threads, **env_kwargs)
                     for slot in self.batch.slots]
        self.num_envs = int(num_envs)
        self.max_episode_steps = max_episode_steps
        self.single_action_space = self.envs[0].action_space
        self.single_observation_space = self.envs[0].observation_space
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.metadata = {**self.metadata, "render_fps": self.envs[0].metadata["render_fps"]}
        self._elapsed = np.zeros(self.num_envs, dtype=np.int64)
        self._autoreset = np.zeros(self.num_envs, dtype=bool)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None):
        if seed is None or isinstance(seed, (int, np.integer)):
            seeds = [None if seed is None else int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"expected {self.num_envs} seeds, got {len(seeds)}")
        observations, infos = [], {}
        for i, (env, s) in enumerate(zip(self.envs, seeds)):
            obs, info = env.reset(seed=s, options=options)
            observations.append(obs)
            infos = self._add_info(infos, info, i)
        self._elapsed[:] = 0
        self._autoreset[:] = False
        return self._batch(observations), infos

    def step(self, actions):
        actions = list(actions) if not isinstance(actions, np.ndarray) else [actions[i] for i in range(len(actions))]
        if len(actions) != self.num_envs:
            raise ValueError(f"expected {self.num_envs} actions (one per world), got {len(actions)}")
        observations: list[Any] = [None] * self.num_envs
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        infos: dict[str, Any] = {}
        results: dict[int, tuple] = {}

        # 1. Worlds that ended last step are reset; every other world plans its clip.
        plans = {}
        for i, (env, action) in enumerate(zip(self.envs, actions)):
            if self._autoreset[i]:
                observations[i], info = env.reset()
                self._elapsed[i] = 0
                results[i] = (observations[i], 0.0, False, False, info)
            else:
                plans[i] = env.plan_step(action)

        # 2. One generator call for all planned clips.
        indices = sorted(plans)
        if indices:
            rendered = [plans[i].rendered for i in indices]
            clips = self.batch.generate(indices, [plans[i].controls for i in indices],
                                        [self.envs[i].prompt for i in indices],
                                        rendered if rendered[0] is not None else None,
                                        known=[plans[i].known for i in indices])
            for i, frames in zip(indices, clips):
                results[i] = self.envs[i].finish_step(plans[i], frames, self.batch.slots[i].last_timings)
                self._elapsed[i] += 1

        # 3. Collect, with the time limit.
        for i in range(self.num_envs):
            obs, reward, term, trunc, info = results[i]
            if i in plans and self.max_episode_steps is not None and self._elapsed[i] >= self.max_episode_steps:
                trunc = True
            observations[i], rewards[i], terminated[i], truncated[i] = obs, reward, term, trunc
            infos = self._add_info(infos, info, i)
        self._autoreset = terminated | truncated
        return self._batch(observations), rewards, terminated, truncated, infos

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """``name`` of every world (called if callable), e.g. ``call("set_prompt", "a snowy field")``."""
        results = []
        for env in self.envs:
            attribute = getattr(env, name)
            results.append(attribute(*args, **kwargs) if callable(attribute) else attribute)
        return tuple(results)

    def close_extras(self, **kwargs: Any) -> None:
        for env in self.envs:
            env.close()

    def _batch(self, observations: list[Any]) -> Any:
        """One observation per world stacked into the batched space (an array, or a dict of arrays with
        ``goal_observation=True``)."""
        out = create_empty_array(self.single_observation_space, n=self.num_envs)
        return concatenate(self.single_observation_space, observations, out)
