"""What both LV2 environments share, written once: the camera in a procedural scene and its task.

:class:`CameraWorld` holds the settings both envs take (action and observation modes, clip, intrinsics, style,
reward, goal radius, depth range), their spaces, the reset options of a procedural scene, the collision rule,
the task and the ``info`` of a step (:class:`StepInfo`, the keys documented once). ``LV2/GroundTruth-v0``
renders its frames; ``LV2/World-v0`` generates them. Each env *has* a ``CameraWorld``; neither inherits the
other. :class:`CameraEnv` is the thin Gymnasium shell both are (what agents read: ``clip``, ``actions``,
``scene``, ``goal``, ...; the key map; closing the window), and :class:`ClipWindow` the pygame window both
show their clips in.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from lv2_env.envs.rewards import GOAL_RADIUS, NavigationReward, Transition
from lv2_env.signals.actions import DISCRETE_ACTIONS, CameraActions, ClipSpec
from lv2_env.signals.camera import FOV_DEG, Intrinsics, pose_from_state, poses_from_states, state_from_pose
from lv2_env.signals.collision import CAMERA_RADIUS, CollisionReport, obstacles_at, resolve_collisions
from lv2_env.envs.keys import MOVEMENT_KEYS
from lv2_env.envs.levels import EYE_HEIGHT, LEVEL_OPTIONS, level_from_options, level_start
from lv2_env.signals.control import ControlSignals, DepthRange
from lv2_env.worlds import Renderer, RenderOutput, Scene, generate_scene, get_style
from lv2_env.worlds.scene import COLOURS, KINDS

OBS_MODES = ("frame", "clip")
# goal_observation=True: the goal object's colour and kind as indices into these, beside the image.
GOAL_COLOURS = tuple(COLOURS)
GOAL_KINDS = KINDS
RESET_OPTIONS = frozenset({"scene_seed", "style", "start_pose"}) | LEVEL_OPTIONS
NO_COLLISION = CollisionReport(collided=False)


def _key_codes(names: tuple[str, ...]) -> tuple:
    """Key names (:mod:`lv2_env.envs.keys`) as ``gymnasium.utils.play.play`` takes them: characters stay
    characters; ``K_*`` names become pygame key codes, looked up when the map is asked for."""
    if not any(n.startswith("K_") for n in names):
        return names
    from lv2_env.media.viewer import import_pygame

    pygame = import_pygame()
    return tuple(getattr(pygame, n) if n.startswith("K_") else n for n in names)


@dataclass
class StepInfo:
    """The ``info`` dict of every ``reset`` and ``step`` of both envs (:meth:`as_dict`); its keys:

    * ``camera_pose`` (4x4 camera-to-world, last frame), ``camera_state`` (6,: x, y, z, yaw, pitch, roll),
      ``intrinsics`` (3x3);
    * ``caption``, ``style``, ``scene_seed``, ``goal`` (the goal object's name), ``goal_position`` (3,),
      ``goal_distance`` (m); in a world without a scene (started from a picture): ``""``, ``""``, -1, ``""``,
      NaN and NaN;
    * ``collision``, ``collision_frame`` (-1 if none), ``obstacle`` (what stopped the camera, ``""`` if nothing);
    * ``frames`` (uint8 ``[F, H, W, 3]``, the whole clip including its shared first frame; ``[1, H, W, 3]`` after
      reset), ``depth`` (float32 ``[F, H, W]``, metres), ``states`` (``[F, 6]``, angles not wrapped), ``poses``
      (``[F, 4, 4]``), ``control`` (:class:`~lv2_env.signals.control.ControlSignals` of the clip) and
      ``depth_range`` (the episode's global normalisation, :class:`~lv2_env.signals.control.DepthRange`).

    ``LV2/World-v0`` adds the fields of :class:`WorldStepInfo`.
    """

    camera_pose: np.ndarray
    camera_state: np.ndarray
    intrinsics: np.ndarray
    caption: str
    style: str
    scene_seed: int
    goal: str
    goal_position: np.ndarray
    goal_distance: float
    collision: bool
    collision_frame: int
    obstacle: str
    frames: np.ndarray
    depth: np.ndarray
    states: np.ndarray
    poses: np.ndarray
    control: ControlSignals
    depth_range: DepthRange | None

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (not deep-copied: arrays are shared), the form Gymnasium's ``info`` takes."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass
class WorldStepInfo(StepInfo):
    """:class:`StepInfo` plus what a generated world adds:

    * ``prompt`` (the text the clip was generated with), ``clip_index`` (clips since reset);
    * ``ground_truth_frames`` (uint8 ``[F, H, W, 3]``, the scene's exact render of the same path; ``None``
      without a scene), ``ground_truth_object_ids`` (int16 ``[F, H, W]``, what each of its pixels shows: -1 sky,
      0 ground, ``k + 1`` the scene's object ``k``; ``None`` without a scene), ``control_source`` (``"scene"`` or
      ``"cache"``);
    * ``memory_frames`` (uint8 ``[F, H, W, 3]``, the world memory's render of the clip's path, black in its holes;
      ``None`` unless ``conditioning="memory"``) and ``memory_known`` (bool ``[F, H, W]``, where that render
      holds a surface or sky, frame 0 False: with ``composite`` these pixels are the memory's, the rest the
      model's own drawing; ``None`` unless ``conditioning="memory"``);
    * ``depth_holes`` (bool ``[F, H, W]``, with ``control_source="cache"``: where no cached point landed, so the
      control depth there is filled in rather than seen; ``None`` with scene control).
    """

    prompt: str = ""
    clip_index: int = 0
    ground_truth_frames: np.ndarray | None = None
    ground_truth_object_ids: np.ndarray | None = None
    control_source: str = "scene"
    memory_frames: np.ndarray | None = None
    memory_known: np.ndarray | None = None
    depth_holes: np.ndarray | None = None


@dataclass(frozen=True)
class CameraPath:
    """One clip's camera path after the collision rule: states ``[F, 6]``, poses ``[F, 4, 4]`` and the report."""

    states: np.ndarray
    poses: np.ndarray
    collision: CollisionReport = NO_COLLISION


class CameraWorld:
    """The camera in a procedural scene (or in none, for a world from a picture), as both envs see it.

    Arguments are those the envs document (``action_mode``, ``obs_mode``, ``height``, ``width``,
    ``clip_frames``, ``fps``, ``fov_deg``, ``style``, ``reward_fn``, ``goal_radius``, ``depth_range``); bad
    values raise ``ValueError`` here, so both envs refuse them alike.
    """

    def __init__(
        self,
        action_mode: str = "discrete",
        obs_mode: str = "frame",
        height: int = 128,
        width: int = 128,
        clip_frames: int = 17,
        fps: int = 16,
        fov_deg: float = FOV_DEG,
        style: str | None = None,
        reward_fn: Callable[[Transition], float] | None = None,
        goal_radius: float | None = GOAL_RADIUS,
        depth_range: tuple[float, float] | None = None,
        goal_observation: bool = False,
    ) -> None:
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode must be one of {list(OBS_MODES)}, got {obs_mode!r}")
        for name, value in (("height", height), ("width", width)):
            if not isinstance(value, (int, np.integer)) or not 16 <= value <= 1024:
                raise ValueError(f"{name} must be an integer in [16, 1024], got {value!r}")
        if style is not None:
            get_style(style)  # fail now, not at the first reset
        if goal_radius is not None and not goal_radius >= 0:
            raise ValueError(f"goal_radius must be >= 0 metres or None (never terminate), got {goal_radius!r}")
        if not isinstance(goal_observation, (bool, np.bool_)):
            raise ValueError(f"goal_observation must be True or False, got {goal_observation!r}")
        self.obs_mode = obs_mode
        self.clip = ClipSpec(frames=clip_frames, fps=fps)
        self.actions = CameraActions(mode=action_mode, clip=self.clip)
        self.intrinsics = Intrinsics.from_fov(fov_deg, width, height)
        self.style = style
        self.reward_fn = reward_fn if reward_fn is not None else NavigationReward()
        self.goal_radius = None if goal_radius is None else float(goal_radius)
        self.fixed_depth_range = DepthRange(*depth_range) if depth_range is not None else None

        self.action_space = self.actions.space
        frame_shape = (height, width, 3)
        obs_shape = frame_shape if obs_mode == "frame" else (self.clip.new_frames, *frame_shape)
        image_space = gym.spaces.Box(0, 255, obs_shape, dtype=np.uint8)
        self.goal_observation = bool(goal_observation)
        self.observation_space: gym.spaces.Space = image_space
        if self.goal_observation:
            goal_space = gym.spaces.MultiDiscrete([len(GOAL_COLOURS), len(GOAL_KINDS)])
            self.observation_space = gym.spaces.Dict({"image": image_space, "goal": goal_space})

        self.scene: Scene | None = None
        self.renderer: Renderer | None = None
        self.state = np.zeros(6)
        self.depth_range: DepthRange | None = None

    # ------------------------------------------------------------------ reset

    def start(self, np_random: np.random.Generator, options: dict[str, Any]) -> RenderOutput:
        """A new scene and start pose from ``options`` (:data:`RESET_OPTIONS`; drawn from ``np_random`` where
        absent); returns the render of the first frame and fits the episode's depth range to it."""
        unknown = set(options) - RESET_OPTIONS
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; expected keys among {sorted(RESET_OPTIONS)}")
        scene_seed = options.get("scene_seed")
        if scene_seed is None:
            scene_seed = int(np_random.integers(0, 2**31 - 1))
        elif not isinstance(scene_seed, (int, np.integer)) or scene_seed < 0:
            raise ValueError(f"options['scene_seed'] must be a non-negative integer, got {scene_seed!r}")
        level = level_from_options(options)
        num_objects = None if level.distractors is None else level.distractors + 1
        self.scene = generate_scene(int(scene_seed), style=options.get("style", self.style), num_objects=num_objects)
        self.renderer = Renderer(self.scene, self.intrinsics)
        if options.get("start_pose") is not None:
            self.state = self._start_state_from_option(options["start_pose"])
        else:
            self.state = level_start(self.scene, level, self.intrinsics, np_random)
        out = self.renderer.render(pose_from_state(self.state)[None])
        self.depth_range = self.fixed_depth_range or DepthRange.fit_rendered(out.depth[0], self.scene.far)
        return out

    def start_without_scene(self) -> None:
        """No scene (a world from a picture): the camera at the origin, level, at eye height; no goal."""
        if self.goal_observation:
            raise ValueError("goal_observation=True needs a goal, and a world started from a picture has no scene to "
                             "hold one; make the env with goal_observation=False to start from a picture")
        self.scene, self.renderer = None, None
        self.state = np.array([0.0, 0.0, EYE_HEIGHT, 0.0, 0.0, 0.0])
        self.depth_range = self.fixed_depth_range

    # ------------------------------------------------------------------ step

    def path(self, action) -> CameraPath:
        """The clip's camera path for ``action`` from the current state, stopped by the scene's collision rule
        (when there is a scene). A bad action raises ``ValueError``."""
        states = self.actions.to_trajectory(action).states(self.state)
        collision = NO_COLLISION
        if self.scene is not None:
            states, collision = resolve_collisions(self.scene, states)
        return CameraPath(states, poses_from_states(states), collision)

    def advance(self, path: CameraPath) -> tuple[float, bool]:
        """Move the camera to the path's end; the step's reward and whether the goal is reached (0 and False
        without a scene)."""
        reward, reached = 0.0, False
        end = path.states[-1]
        if self.scene is not None:
            before, after = self.goal_distance(self.state), self.goal_distance(end)
            reached = self.goal_radius is not None and after <= self.goal_radius
            reward = float(self.reward_fn(Transition(self.state.copy(), end.copy(), before, after,
                                                     path.collision.collided, reached)))
        self.state = end.copy()
        return reward, bool(reached)

    def observation(self, frames: np.ndarray) -> np.ndarray | dict[str, np.ndarray]:
        """The last frame, or the clip's new frames (after reset: the first frame repeated); with
        ``goal_observation``, ``{"image": that, "goal": [colour index, kind index]}``."""
        if self.obs_mode == "frame":
            image = frames[-1].copy()
        else:
            n = self.clip.new_frames
            if len(frames) < n:
                frames = np.concatenate([np.repeat(frames[:1], n - len(frames), axis=0), frames])
            image = np.ascontiguousarray(frames[-n:])
        if not self.goal_observation:
            return image
        return {"image": image, "goal": self.goal_indices()}

    def goal_indices(self) -> np.ndarray:
        """The goal object's ``[colour, kind]`` as indices into :data:`GOAL_COLOURS` and :data:`GOAL_KINDS`."""
        goal = self.goal
        return np.array([GOAL_COLOURS.index(goal.colour), GOAL_KINDS.index(goal.kind)], dtype=np.int64)

    def info(self, frames: np.ndarray, depth: np.ndarray, path: CameraPath, control: ControlSignals,
             cls: type[StepInfo] = StepInfo, **extra: Any) -> dict[str, Any]:
        """The step's ``info`` (see :class:`StepInfo`; ``cls`` and ``extra`` for the world's added fields)."""
        if self.scene is not None:
            goal = self.goal
            scene = dict(caption=self.scene.caption, style=self.scene.style.name, scene_seed=self.scene.seed,
                         goal=goal.name, goal_position=np.asarray(goal.center, dtype=np.float64).copy(),
                         goal_distance=self.goal_distance(self.state))
        else:
            scene = dict(caption="", style="", scene_seed=-1, goal="", goal_position=np.full(3, np.nan),
                         goal_distance=float("nan"))
        return cls(
            camera_pose=pose_from_state(self.state), camera_state=self.state.copy(),
            intrinsics=self.intrinsics.matrix, **scene,
            collision=bool(path.collision.collided), collision_frame=int(path.collision.frame),
            obstacle=path.collision.obstacle, frames=frames, depth=depth,
            states=np.asarray(path.states, dtype=np.float64), poses=path.poses, control=control,
            depth_range=self.depth_range, **extra,
        ).as_dict()

    def here(self) -> CameraPath:
        """The current camera as a one-frame path (what ``reset`` reports)."""
        return CameraPath(self.state[None], pose_from_state(self.state)[None])

    # ------------------------------------------------------------------ task and keys

    @property
    def goal(self):
        return self.scene.objects[self.scene.landmark]

    def goal_distance(self, state: np.ndarray) -> float:
        """Horizontal metres from ``state``'s position to the goal object's footprint."""
        goal = self.goal
        centre = np.hypot(state[0] - goal.center[0], state[1] - goal.center[1])
        return float(max(0.0, centre - goal.footprint_radius))

    def keys_to_action(self) -> dict[tuple, Any]:
        """Key bindings (:data:`lv2_env.envs.keys.MOVEMENT_KEYS`; see the envs' ``get_keys_to_action``)."""
        mapping = {}
        for name, keys in MOVEMENT_KEYS.items():
            index = DISCRETE_ACTIONS.index(name)
            if self.actions.mode == "discrete":
                action = index
            else:
                trajectory = CameraActions("discrete", self.clip).to_trajectory(index).relative
                action = (trajectory[-1] if self.actions.mode == "continuous" else trajectory).astype(np.float32)
            mapping[_key_codes(keys)] = action
        return mapping

    def _start_state_from_option(self, start_pose) -> np.ndarray:
        value = np.asarray(start_pose, dtype=np.float64)
        if value.shape == (4, 4):
            state = state_from_pose(value)
        elif value.shape == (6,):
            state = value.copy()
        else:
            raise ValueError(
                "options['start_pose'] must be a state (x, y, z, yaw, pitch, roll) or a 4x4 camera-to-world "
                f"matrix, got shape {value.shape}"
            )
        if not np.all(np.isfinite(state)):
            raise ValueError(f"options['start_pose'] must be finite, got {state.tolist()}")
        obstacle = obstacles_at(self.scene, state[None, :3], CAMERA_RADIUS)[0]
        if obstacle:
            raise ValueError(f"options['start_pose'] at {state[:3].round(3).tolist()} is inside the {obstacle}")
        return state


class ClipWindow:
    """``render()`` of both envs: ``"rgb_array"`` returns the last frame, ``"human"`` plays the clip in a pygame
    window at the clip's frame rate (opened on first use)."""

    RENDER_MODES = ("human", "rgb_array")

    def __init__(self, render_mode: str | None, title: str, fps: int) -> None:
        if render_mode is not None and render_mode not in self.RENDER_MODES:
            raise ValueError(f"render_mode must be one of {list(self.RENDER_MODES)} or None, got {render_mode!r}")
        self.render_mode = render_mode
        self.title = title
        self.fps = fps
        self._viewer = None

    def render(self, clip_frames: np.ndarray | None, status: str) -> np.ndarray | None:
        """Show ``clip_frames`` (the clip's new frames) with a status line, or return the last of them."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array' or 'human'")
            return None
        if clip_frames is None:
            raise RuntimeError("call reset() before render()")
        if self.render_mode == "rgb_array":
            return clip_frames[-1].copy()
        if self._viewer is None:
            from lv2_env.media.viewer import PygameViewer

            self._viewer = PygameViewer(title=self.title, fps=self.fps)
        self._viewer.show_clip(clip_frames, caption_text=status)
        return None

    def close(self) -> None:
        if self._viewer is not None:
            self._viewer.close()
            self._viewer = None


class CameraEnv(gym.Env):
    """The Gymnasium shell both envs share: each has a :class:`CameraWorld` (``self.world``) and a
    :class:`ClipWindow` (``self.window``); this gives what agents and tools read of them, the key map and
    ``close``. ``reset``, ``step`` and ``render`` are each env's own."""

    metadata = {"render_modes": list(ClipWindow.RENDER_MODES), "render_fps": 16}
    world: CameraWorld
    window: ClipWindow

    def close(self):
        self.window.close()

    def get_keys_to_action(self) -> dict[tuple, Any]:
        """Key bindings for ``gymnasium.utils.play.play`` and ``lv2 play``
        (:data:`lv2_env.envs.keys.MOVEMENT_KEYS`): W/S forward and back, A/D strafe, left/right arrows turn,
        up/down arrows look up and down, R/F rise and sink.

        In the continuous and trajectory modes each key maps to that macro's motion over one clip; pass
        ``noop=np.zeros(env.action_space.shape, np.float32)`` to ``play``.
        """
        return self.world.keys_to_action()

    @property
    def clip(self) -> ClipSpec:
        """Frames per clip and frame rate."""
        return self.world.clip

    @property
    def actions(self) -> CameraActions:
        """The action mode's space and its expansion into camera paths."""
        return self.world.actions

    @property
    def intrinsics(self) -> Intrinsics:
        return self.world.intrinsics

    @property
    def scene(self) -> Scene | None:
        """The procedural scene (None before reset, and in a world from a picture)."""
        return self.world.scene

    @property
    def renderer(self) -> Renderer | None:
        """The ray caster of the current scene."""
        return self.world.renderer

    @property
    def goal(self):
        """The goal object of the current scene."""
        return self.world.goal

    def goal_indices(self) -> np.ndarray | None:
        """The goal object's ``[colour, kind]`` as indices into :data:`GOAL_COLOURS` and :data:`GOAL_KINDS`: the
        ``"goal"`` that ``goal_observation=True`` puts beside the image, whether or not this env was made with it;
        None without a scene (before reset, and in a world from a picture)."""
        return None if self.world.scene is None else self.world.goal_indices()
