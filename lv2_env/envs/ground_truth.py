"""``LV2/GroundTruth-v0``: the procedural world rendered exactly, behind the API of the generated world."""

from __future__ import annotations

from typing import Any, Callable

import gymnasium as gym
import numpy as np

from lv2_env.signals.actions import DISCRETE_ACTIONS, CameraActions, ClipSpec
from lv2_env.signals.camera import Intrinsics, pose_from_state, poses_from_states, state_from_pose
from lv2_env.signals.collision import CAMERA_RADIUS, obstacles_at, resolve_collisions
from lv2_env.signals.control import ControlSignals, DepthRange, compute_control_signals
from lv2_env.envs.rewards import NavigationReward, Transition
from lv2_env.envs.threads import apply_torch_threads, check_torch_threads
from lv2_env.worlds import Renderer, Scene, generate_scene, get_style

OBS_MODES = ("frame", "clip")
RESET_OPTIONS = frozenset({"scene_seed", "style", "start_pose"})
EYE_HEIGHT = 1.6

# Keyboard layout for gymnasium.utils.play.play and `lv2 play`: WASD walk, arrows turn and look, R/F rise and
# sink. Letters are characters; the arrows are pygame key codes, looked up when the map is asked for.
_KEYS = {
    "forward": ("w",),
    "back": ("s",),
    "strafe_left": ("a",),
    "strafe_right": ("d",),
    "turn_left": ("K_LEFT",),
    "turn_right": ("K_RIGHT",),
    "look_up": ("K_UP",),
    "look_down": ("K_DOWN",),
    "rise": ("r",),
    "sink": ("f",),
}


def _key_codes(names: tuple[str, ...]) -> tuple:
    """Characters stay characters (gymnasium's ``play`` takes them); ``K_*`` names become pygame key codes."""
    if not any(n.startswith("K_") for n in names):
        return names
    from lv2_env.media.viewer import import_pygame

    pygame = import_pygame()
    return tuple(getattr(pygame, n) if n.startswith("K_") else n for n in names)


def footprint_radius(obj) -> float:
    """Horizontal radius of the circle around an object's footprint (the goal counts as reached near it)."""
    hx, hy = float(obj.half_extents[0]), float(obj.half_extents[1])
    return float(np.hypot(hx, hy)) if obj.kind in ("box", "pillar") else hx


class GroundTruthEnv(gym.Env):
    """
    ## Description

    A first-person camera in a procedural outdoor world (textured ground, sky, 20-100 boxes, spheres,
    cylinders and pillars in one of six styles), rendered exactly by a ray caster. It has the API of
    ``LV2/World-v0``, whose frames come from the LongVie 2 generator instead: each step takes a camera action,
    turns it into a clip of ``F`` frames (default 17 at 16 fps; consecutive clips share one frame, so a step
    advances ``F - 1`` frames = 1 second), renders it, and returns the last frame. The ground truth is where
    generated worlds are measured and where agents trained in them are finally tested.

    The task: walk to the goal object named first in the scene's caption ("a snowy field with a red pillar,
    ...") and given in ``info["goal"]``.

    ## Action Space

    Chosen by ``action_mode`` (see :mod:`lv2_env.signals.actions` for the conventions):

    * ``"discrete"`` (default): ``Discrete(11)``: 0 no-op, 1 forward, 2 back, 3 strafe left, 4 strafe right,
      5 turn left, 6 turn right, 7 look up, 8 look down, 9 rise, 10 sink; each a constant velocity for the
      clip (1.5 m/s forward and back, 1 m/s strafe, 30 deg/s turn, 15 deg/s look, 0.75 m/s rise and sink).
    * ``"continuous"``: ``Box(6,)`` float32, the change over the clip of (forward m, right m, up m, yaw rad,
      pitch rad, roll rad), bounded by ``±(2, 2, 1, 0.8, 0.4, 0.4)`` per second of clip.
    * ``"trajectory"``: ``Box((F, 6))`` float32, the motion of each frame relative to the clip's first frame;
      row 0 must be zero, other rows are bounded like a continuous action.

    Positive yaw turns left, positive pitch looks up, positive roll banks right; forward/right/up are in the
    heading frame (yaw only) of the clip's first frame. Invalid actions (out of the space, NaN or inf, wrong
    shape or type) raise ``ValueError``; nothing is clamped except by the collision rule below.

    ## Observation Space

    ``Box(0, 255, (H, W, 3), uint8)``: the last frame of the clip (``obs_mode="frame"``, default), or
    ``Box(0, 255, (F - 1, H, W, 3), uint8)``: the clip's new frames (``obs_mode="clip"``). ``H = W = 128`` by
    default.

    ## Rewards

    ``reward_fn(Transition) -> float``, by default :class:`~lv2_env.envs.rewards.NavigationReward`: metres of
    horizontal distance to the goal removed this step, minus 0.01.

    ## Starting State

    A scene drawn from ``self.np_random`` (or ``options["scene_seed"]``), in a random style (or the
    constructor's / ``options["style"]``). The camera stands at the origin at eye height 1.6 m, level, facing
    a random direction (or ``options["start_pose"]``: a state ``(x, y, z, yaw, pitch, roll)`` or a 4x4
    camera-to-world matrix, which must be free of obstacles). No object stands within 4 m of the origin.

    ## Episode End

    Terminated when the camera comes within ``goal_radius`` (1.5 m) of the goal object's footprint
    (``goal_radius=None``: never, for free exploration). Truncated by the registered time limit (100 steps =
    100 seconds of video).

    ## Collisions

    The camera is a sphere of radius 0.3 m. When a frame of the path would enter an object or the ground, the
    camera keeps the position of the last free frame for the rest of the clip (its rotation still follows the
    action), and ``info["collision"]`` is True with ``info["collision_frame"]`` and ``info["obstacle"]``.

    ## Info

    ``camera_pose`` (4x4, last frame), ``camera_state`` (6,), ``intrinsics`` (3x3), ``caption``, ``style``,
    ``scene_seed``, ``goal`` (name), ``goal_position`` (3,), ``goal_distance`` (m), ``collision``,
    ``collision_frame`` (-1 if none), ``obstacle``, ``frames`` (uint8 ``[F, H, W, 3]``, the whole clip including
    its shared first frame; ``[1, H, W, 3]`` after reset), ``depth`` (float32 ``[F, H, W]``, metres),
    ``states`` (``[F, 6]``, angles not wrapped), ``poses`` (``[F, 4, 4]``), ``control`` (:class:`~lv2_env.signals.control.ControlSignals` of the clip) and
    ``depth_range`` (the global normalisation, fixed at reset from the p5/p95 of the first frame's depth, sky left
    out; ``(1, 50)`` m if that frame is nearly all sky).

    ## Arguments

    ``gymnasium.make("LV2/GroundTruth-v0", render_mode=None, action_mode="discrete", obs_mode="frame",
    height=128, width=128, clip_frames=17, fps=16, fov_deg=70.0, style=None, reward_fn=None, goal_radius=1.5,
    depth_range=None, torch_threads=None)``. ``depth_range`` may fix the normalisation as ``(near, far)`` metres
    instead of fitting it at reset. ``render_mode="human"`` plays each clip in a pygame window at ``fps``.
    ``torch_threads``: torch threads of the process (the ray caster runs on torch); by default this process's
    share of the cores, ``max(1, cores // workers)`` in each of ``N`` subprocess vector-env workers, so they
    never oversubscribe the cores (:mod:`lv2_env.envs.threads`).

    ## Version History

    * v0: initial version.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 16}

    def __init__(
        self,
        render_mode: str | None = None,
        action_mode: str = "discrete",
        obs_mode: str = "frame",
        height: int = 128,
        width: int = 128,
        clip_frames: int = 17,
        fps: int = 16,
        fov_deg: float = 70.0,
        style: str | None = None,
        reward_fn: Callable[[Transition], float] | None = None,
        goal_radius: float | None = 1.5,
        depth_range: tuple[float, float] | None = None,
        torch_threads: int | None = None,
    ) -> None:
        self._torch_threads_asked = check_torch_threads(torch_threads)
        self.torch_threads = apply_torch_threads(self._torch_threads_asked)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode must be one of {list(OBS_MODES)}, got {obs_mode!r}")
        for name, value in (("height", height), ("width", width)):
            if not isinstance(value, (int, np.integer)) or not 16 <= value <= 1024:
                raise ValueError(f"{name} must be an integer in [16, 1024], got {value!r}")
        if style is not None:
            get_style(style)  # fail now, not at the first reset
        self.render_mode = render_mode
        self.obs_mode = obs_mode
        self.clip = ClipSpec(frames=clip_frames, fps=fps)
        self.actions = CameraActions(mode=action_mode, clip=self.clip)
        self.intrinsics = Intrinsics.from_fov(fov_deg, width, height)
        self.style = style
        self.reward_fn = reward_fn if reward_fn is not None else NavigationReward()
        if goal_radius is not None and not goal_radius >= 0:
            raise ValueError(f"goal_radius must be >= 0 metres or None (never terminate), got {goal_radius!r}")
        self.goal_radius = None if goal_radius is None else float(goal_radius)
        self.fixed_depth_range = DepthRange(*depth_range) if depth_range is not None else None
        self.metadata = {**self.metadata, "render_fps": fps}

        self.action_space = self.actions.space
        frame_shape = (height, width, 3)
        obs_shape = frame_shape if obs_mode == "frame" else (self.clip.new_frames, *frame_shape)
        self.observation_space = gym.spaces.Box(0, 255, obs_shape, dtype=np.uint8)

        self.scene: Scene | None = None
        self._renderer: Renderer | None = None
        self._state = np.zeros(6)
        self._last_rgb: np.ndarray | None = None  # [H, W, 3]: frame 0 of the next clip
        self._last_depth: np.ndarray | None = None  # [H, W]
        self._clip_frames: np.ndarray | None = None
        self._depth_range: DepthRange | None = None
        self._viewer = None

    # ------------------------------------------------------------------ Gymnasium API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        # Again here: the workers of a subprocess vector env are all running by the first reset.
        self.torch_threads = apply_torch_threads(self._torch_threads_asked)
        super().reset(seed=seed)
        options = {} if options is None else dict(options)
        unknown = set(options) - RESET_OPTIONS
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; expected keys among {sorted(RESET_OPTIONS)}")

        scene_seed = options.get("scene_seed")
        if scene_seed is None:
            scene_seed = int(self.np_random.integers(0, 2**31 - 1))
        elif not isinstance(scene_seed, (int, np.integer)) or scene_seed < 0:
            raise ValueError(f"options['scene_seed'] must be a non-negative integer, got {scene_seed!r}")
        style = options.get("style", self.style)
        self.scene = generate_scene(int(scene_seed), style=style)
        self._renderer = Renderer(self.scene, self.intrinsics)

        if options.get("start_pose") is not None:
            self._state = self._start_state_from_option(options["start_pose"])
        else:
            yaw = float(self.np_random.uniform(-np.pi, np.pi))
            self._state = np.array([0.0, 0.0, EYE_HEIGHT, yaw, 0.0, 0.0])

        pose = pose_from_state(self._state)[None]  # [1, 4, 4]
        out = self._renderer.render(pose)
        self._last_rgb, self._last_depth = out.rgb[0], out.depth[0]
        self._clip_frames = out.rgb
        self._depth_range = self.fixed_depth_range or DepthRange.fit_rendered(out.depth[0], self.scene.far)
        control = compute_control_signals(out.depth, pose, self.intrinsics, self._depth_range)
        info = self._info(out.rgb, out.depth, self._state[None], pose, control, collided=False, frame=-1, obstacle="")
        if self.render_mode == "human":
            self.render()
        return self._observation(out.rgb), info

    def step(self, action):
        if self.scene is None:
            raise RuntimeError("call reset() before step()")
        trajectory = self.actions.to_trajectory(action)  # raises ValueError on a bad action

        # 1. The path of the clip, stopped by the collision rule.
        states, report = resolve_collisions(self.scene, trajectory.states(self._state))
        poses = poses_from_states(states)  # [F, 4, 4]

        # 2. Render the new frames; frame 0 is the previous clip's last frame.
        out = self._renderer.render(poses[1:])
        rgb = np.concatenate([self._last_rgb[None], out.rgb])  # [F, H, W, 3]
        depth = np.concatenate([self._last_depth[None], out.depth])  # [F, H, W]

        # 3. Control signals with the episode's fixed depth range.
        control = compute_control_signals(depth, poses, self.intrinsics, self._depth_range)

        # 4. Task.
        before = self._goal_distance(self._state)
        after = self._goal_distance(states[-1])
        reached = self.goal_radius is not None and after <= self.goal_radius
        transition = Transition(self._state.copy(), states[-1].copy(), before, after, report.collided, reached)
        reward = float(self.reward_fn(transition))

        self._state = states[-1].copy()
        self._last_rgb, self._last_depth = rgb[-1], depth[-1]
        self._clip_frames = rgb[1:]
        info = self._info(rgb, depth, states, poses, control, report.collided, report.frame, report.obstacle)
        if self.render_mode == "human":
            self.render()
        return self._observation(rgb[1:]), reward, bool(reached), False, info

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array' or 'human'")
            return None
        if self._last_rgb is None:
            raise RuntimeError("call reset() before render()")
        if self.render_mode == "rgb_array":
            return self._last_rgb.copy()
        if self._viewer is None:
            from lv2_env.media.viewer import PygameViewer

            self._viewer = PygameViewer(title="lv2 ground truth", fps=self.clip.fps)
        status = f"goal: {self.goal.name}, {self._goal_distance(self._state):.1f} m  |  {self.scene.caption}"
        self._viewer.show_clip(self._clip_frames, caption_text=status)
        return None

    def close(self):
        if self._viewer is not None:
            self._viewer.close()
            self._viewer = None

    def get_keys_to_action(self) -> dict[tuple, Any]:
        """Key bindings for ``gymnasium.utils.play.play`` and ``lv2 play``: W/S forward and back, A/D strafe,
        left/right arrows turn, up/down arrows look up and down, R/F rise and sink.

        In the continuous and trajectory modes each key maps to that macro's motion over one clip; pass
        ``noop=np.zeros(env.action_space.shape, np.float32)`` to ``play``.
        """
        mapping = {}
        for name, keys in _KEYS.items():
            index = DISCRETE_ACTIONS.index(name)
            if self.actions.mode == "discrete":
                action = index
            else:
                trajectory = CameraActions("discrete", self.clip).to_trajectory(index).relative
                action = (trajectory[-1] if self.actions.mode == "continuous" else trajectory).astype(np.float32)
            mapping[_key_codes(keys)] = action
        return mapping

    # ------------------------------------------------------------------ helpers

    @property
    def goal(self):
        return self.scene.objects[self.scene.landmark]

    def _goal_distance(self, state: np.ndarray) -> float:
        goal = self.goal
        centre = np.hypot(state[0] - goal.center[0], state[1] - goal.center[1])
        return float(max(0.0, centre - footprint_radius(goal)))

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

    def _observation(self, frames: np.ndarray) -> np.ndarray:
        """The last frame, or the clip's new frames (after reset: the first frame repeated)."""
        if self.obs_mode == "frame":
            return frames[-1].copy()
        n = self.clip.new_frames
        if len(frames) < n:
            frames = np.concatenate([np.repeat(frames[:1], n - len(frames), axis=0), frames])
        return np.ascontiguousarray(frames[-n:])

    def _info(
        self,
        rgb: np.ndarray,
        depth: np.ndarray,
        states: np.ndarray,
        poses: np.ndarray,
        control: ControlSignals,
        collided: bool,
        frame: int,
        obstacle: str,
    ) -> dict[str, Any]:
        goal = self.goal
        return {
            "camera_pose": pose_from_state(self._state),
            "camera_state": self._state.copy(),
            "intrinsics": self.intrinsics.matrix,
            "caption": self.scene.caption,
            "style": self.scene.style.name,
            "scene_seed": self.scene.seed,
            "goal": goal.name,
            "goal_position": np.asarray(goal.center, dtype=np.float64).copy(),
            "goal_distance": self._goal_distance(self._state),
            "collision": bool(collided),
            "collision_frame": int(frame),
            "obstacle": obstacle,
            "frames": rgb,
            "depth": depth,
            "states": np.asarray(states, dtype=np.float64),
            "poses": poses,
            "control": control,
            "depth_range": self._depth_range,
        }
