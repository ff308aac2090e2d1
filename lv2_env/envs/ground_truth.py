"""``LV2/GroundTruth-v0``: the procedural world rendered exactly, behind the API of the generated world."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from lv2_env.envs.core import CameraEnv, CameraWorld, ClipWindow
from lv2_env.envs.rewards import GOAL_RADIUS, Transition
from lv2_env.signals.camera import FOV_DEG
from lv2_env.envs.threads import apply_torch_threads, check_torch_threads
from lv2_env.signals.control import compute_control_signals


class GroundTruthEnv(CameraEnv):
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

    With ``goal_observation=True`` the agent is also told what to walk to:
    ``Dict({"image": <the Box above>, "goal": MultiDiscrete([12, 4])})``, the goal object's colour and kind as
    indices into :data:`~lv2_env.envs.core.GOAL_COLOURS` (red, orange, yellow, green, blue, purple, pink, white,
    brown, cyan, grey, black) and :data:`~lv2_env.envs.core.GOAL_KINDS` (box, sphere, cylinder, pillar). The
    pair is unique in its scene. SB3's ``MultiInputPolicy`` takes this space as it is.

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

    The keys of :class:`~lv2_env.envs.core.StepInfo` (camera pose and state, intrinsics, caption, style, scene
    seed, goal, collision, the clip's frames, depth, states, poses, control signals and depth range). The depth
    range is fixed at reset from the p5/p95 of the first frame's depth, sky left out; ``(1, 50)`` m if that frame
    is nearly all sky.

    ## Arguments

    ``gymnasium.make("LV2/GroundTruth-v0", render_mode=None, action_mode="discrete", obs_mode="frame",
    height=128, width=128, clip_frames=17, fps=16, fov_deg=70.0, style=None, reward_fn=None, goal_radius=1.5,
    depth_range=None, goal_observation=False, torch_threads=None)``. ``depth_range`` may fix the normalisation as ``(near, far)`` metres
    instead of fitting it at reset. ``render_mode="human"`` plays each clip in a pygame window at ``fps``.
    ``torch_threads``: torch threads of the process (the ray caster runs on torch); by default this process's
    share of the cores, ``max(1, cores // workers)`` in each of ``N`` subprocess vector-env workers, so they
    never oversubscribe the cores (:mod:`lv2_env.envs.threads`).

    ## Version History

    * v0: initial version (``goal_observation`` added later as an argument; its default keeps the v0
      observation).
    """

    def __init__(
        self,
        render_mode: str | None = None,
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
        torch_threads: int | None = None,
    ) -> None:
        self._torch_threads_asked = check_torch_threads(torch_threads)
        self.torch_threads = apply_torch_threads(self._torch_threads_asked)
        self.window = ClipWindow(render_mode, title="lv2 ground truth", fps=fps)
        self.world = CameraWorld(action_mode, obs_mode, height, width, clip_frames, fps, fov_deg, style, reward_fn,
                                 goal_radius, depth_range, goal_observation)
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": fps}
        self.action_space = self.world.action_space
        self.observation_space = self.world.observation_space
        self._last_rgb: np.ndarray | None = None  # [H, W, 3]: frame 0 of the next clip
        self._last_depth: np.ndarray | None = None  # [H, W]
        self._clip_frames: np.ndarray | None = None

    # ------------------------------------------------------------------ Gymnasium API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        # Again here: the workers of a subprocess vector env are all running by the first reset.
        self.torch_threads = apply_torch_threads(self._torch_threads_asked)
        super().reset(seed=seed)
        out = self.world.start(self.np_random, {} if options is None else dict(options))
        self._last_rgb, self._last_depth, self._clip_frames = out.rgb[0], out.depth[0], out.rgb
        here = self.world.here()
        control = compute_control_signals(out.depth, here.poses, self.world.intrinsics, self.world.depth_range)
        info = self.world.info(out.rgb, out.depth, here, control)
        if self.render_mode == "human":
            self.render()
        return self.world.observation(out.rgb), info

    def step(self, action):
        if self.world.scene is None:
            raise RuntimeError("call reset() before step()")
        # 1. The path of the clip, stopped by the collision rule (a bad action raises ValueError).
        path = self.world.path(action)

        # 2. Render the new frames; frame 0 is the previous clip's last frame.
        out = self.world.renderer.render(path.poses[1:])
        rgb = np.concatenate([self._last_rgb[None], out.rgb])  # [F, H, W, 3]
        depth = np.concatenate([self._last_depth[None], out.depth])  # [F, H, W]

        # 3. Control signals with the episode's fixed depth range.
        control = compute_control_signals(depth, path.poses, self.world.intrinsics, self.world.depth_range)

        # 4. Task.
        reward, reached = self.world.advance(path)
        self._last_rgb, self._last_depth, self._clip_frames = rgb[-1], depth[-1], rgb[1:]
        info = self.world.info(rgb, depth, path, control)
        if self.render_mode == "human":
            self.render()
        return self.world.observation(rgb[1:]), reward, reached, False, info

    def render(self):
        status = ""
        if self.render_mode == "human" and self.world.scene is not None:
            status = f"goal: {self.goal.name}, {self.world.goal_distance(self.world.state):.1f} m  |  {self.scene.caption}"
        return self.window.render(self._clip_frames, status)
