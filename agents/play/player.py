"""``lv2 play``: steer a world with the keyboard in a pygame window (:class:`KeyboardPlayer`).

The keys are :mod:`lv2_env.envs.keys` (:data:`~lv2_env.envs.keys.KEYS_HELP` is what ``lv2 play --help`` shows);
the movement map is the env's ``get_keys_to_action()``.

Each step generates one clip (1 second of video) on a worker thread (:mod:`agents.play.stepping`), so the window,
the HUD and a prompt being typed stay live while it is generated; a generated world hands over each chunk of
frames as its decoder produces it (``env.unwrapped.on_frames``), and the window plays them at 16 fps as they
come, so the first new frame shows before the whole clip is decoded. Then it reads the keys held at that moment
(or, if none is held, the last movement key pressed while the clip played) for the next step. N and Esc pressed
during a step take effect when it is done. The HUD (:mod:`agents.play.hud`) shows the generated frames per second
(new frames over the step's wall time), the clip index, the recording state, the prompt and the last message,
each fitted to the window's width (:mod:`agents.play.text`); the key table (:data:`lv2_env.envs.keys.KEYS`) is
drawn over the frames at the start, until the first movement key, and H shows or hides it. ``--compare`` shows
the generated world beside the ground-truth render of the same camera path (that clip plays once it is complete,
since its truth comes with it), and, for a world conditioned on its memory (``--conditioning memory``), the world
memory's render of the path as a third panel (black where it holds nothing). G hands the walk to a pixel agent
(:mod:`agents.play.autopilot`); V records (:mod:`agents.play.recording`).

The first world is one a person can see: without a seed (and without a style, scene or picture asked for, by
the reset options or the env) it gets a bright style, drawn from :data:`FIRST_WORLD_STYLES`, since a night, fog
or dusk scene shows little at 128x128; the worlds N starts are drawn from every style.

The player only uses the Gymnasium API (``reset``, ``step``, ``get_keys_to_action``) plus ``set_prompt``,
``on_frames`` and ``goal_indices`` of the env, reached through ``env.get_wrapper_attr`` / ``set_wrapper_attr``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.play.autopilot import Autopilot, goal_reached, refusal
from agents.play.events import command_keys, edit_prompt, key_code, movement_action
from agents.play.hud import HudState, PlayWindow
from agents.play.recording import Recording
from agents.play.stepping import step_on_worker
from lv2_env.media.viewer import import_pygame

# Bright enough to see at 128x128 in a generated world: not night or fog, and not dusk either, whose ground the
# shipped model renders near black.
FIRST_WORLD_STYLES = ("sunny", "snow", "desert")


class KeyboardPlayer:
    """The play loop over any LV2 env made with ``render_mode=None`` (the player draws the window itself)."""

    def __init__(self, env: gym.Env, scale: int = 4, compare: bool = False, record_dir: str | Path = "recordings",
                 seed: int | None = None, options: dict | None = None, agent: str | None = None,
                 autopilot: bool = False) -> None:
        self.env = env
        # G: this pixel agent walks to the goal (agents.pixel.load_agent; None: the default), loaded on first use.
        self.pilot = Autopilot(agent)
        self.autopilot = autopilot
        self.scale = scale
        self.compare = compare
        self.record_dir = Path(record_dir)
        self.seed = seed
        self.options = options
        self.fps = int(env.metadata.get("render_fps", 16))
        self.pygame = import_pygame()
        self.window = PlayWindow(self.pygame, scale, self.fps)
        self.keys_to_action = env.unwrapped.get_keys_to_action()
        self.noop = 0 if isinstance(env.action_space, gym.spaces.Discrete) else np.zeros(env.action_space.shape, np.float32)
        self.movement_keys = {key_code(self.pygame, k) for combo in self.keys_to_action for k in combo}
        self.command_keys = command_keys(self.pygame)  # key code -> command (lv2_env.envs.keys.PLAYER_KEYS)
        self.prompt_line: str | None = None  # the line being typed, None when not typing
        self.recording: Recording | None = None
        self.last_pressed: int | None = None
        self.running = True
        self.clip_index = 0
        self.generated_fps = float("nan")
        self.info: dict[str, Any] = {}
        self.stepping = False  # a step is being generated on the worker thread
        self.pending_reset = False  # N pressed during a step: reset once it is done
        self.first_world = True
        self.show_keys = not autopilot  # the key table over the frames, until the first movement key, G or H
        self.message = ""
        self.message_time = -np.inf
        self._on_screen: tuple[np.ndarray, ...] | None = None  # the frame shown (and its truth and memory render)

    @property
    def screen(self):
        """The window's pygame surface (None until the first frame)."""
        return self.window.screen

    @property
    def font(self):
        """The HUD's font (None until the first frame)."""
        return self.window.font

    # ------------------------------------------------------------------ keys

    def action_for(self, pressed: set[int]) -> Any:
        """The action of the held movement keys (one binding each; the first that matches), else the noop."""
        return movement_action(self.pygame, self.keys_to_action, pressed, self.noop)

    def handle_event(self, event: Any) -> None:
        """Apply one pygame event: typing, recording, reset, quit; remember the last movement key."""
        pg = self.pygame
        if event.type == pg.QUIT:
            self.running = False
        elif event.type != pg.KEYDOWN:
            return
        elif self.prompt_line is not None:
            line, prompt = edit_prompt(pg, self.command_keys, self.prompt_line, event)
            if prompt is not None:
                self._apply_prompt(prompt)
            self.prompt_line = line
        elif event.key in self.command_keys:
            self._command(self.command_keys[event.key])
        elif event.key in self.movement_keys:
            self.last_pressed = event.key
            self.show_keys = False  # moving: the world, not the table

    def _command(self, command: str) -> None:
        """One of :data:`lv2_env.envs.keys.PLAYER_KEYS`' commands."""
        if command == "prompt":
            self.prompt_line = ""
        elif command == "record":
            self.toggle_recording()
        elif command == "keys":
            self.show_keys = not self.show_keys
        elif command == "agent":
            self.autopilot = not self.autopilot
            self.pilot.restart()
            self.say("the agent walks to the goal (G: stop)" if self.autopilot else "agent off: the keys steer")
            self.show_keys = False
        elif command == "new_world":
            if self.stepping:
                self.pending_reset = True
            else:
                self.reset()
        elif command == "quit":
            self.running = False

    def _apply_prompt(self, prompt: str) -> None:
        if not prompt:
            return
        try:
            set_prompt = self.env.get_wrapper_attr("set_prompt")
        except AttributeError:
            self.say("the ground truth has no prompt")
            return
        set_prompt(prompt)
        self.info["prompt"] = prompt

    # ------------------------------------------------------------------ recording and messages

    def toggle_recording(self) -> None:
        """Start a recording from the frame on screen, or stop the one in progress."""
        if self.recording is not None:
            self.recording.close()
            self.say(f"saved {self.recording.video.name}")
            self.recording = None
            return
        stamp = time.strftime("%Y%m%d-%H%M%S")
        video = self.record_dir / f"lv2-{stamp}.mp4"
        self.recording = Recording(video, video.with_suffix(".json"), self.fps)
        self.recording.add(self.info["frames"][-1:], self.info["states"][-1:], self.info["poses"][-1:], self._prompt())
        self.say(f"recording {video.name}")

    def say(self, message: str) -> None:
        """Show ``message`` in the HUD's last line for :data:`agents.play.hud.MESSAGE_SECONDS`."""
        self.message, self.message_time = message, time.monotonic()

    def _prompt(self) -> str:
        return str(self.info.get("prompt", self.info.get("caption", "")))

    # ------------------------------------------------------------------ loop

    def reset(self) -> None:
        options = self.first_world_options() if self.first_world else self.options
        _, self.info = self.env.reset(seed=self.seed, options=options)
        self.seed = None  # a new world each time N is pressed
        self.pilot.restart()
        self.first_world = False
        self.clip_index = 0
        self._show_clip(self.info["frames"][-1:], *self._panels(self.info, last=1))

    def first_world_options(self) -> dict | None:
        """The reset options of the first world: the player's, plus a bright style when nothing else decides what
        the scene looks like (no seed; no style, scene seed or picture in the options; no style of the env's)."""
        options = dict(self.options or {})
        decided = self.seed is not None or bool({"style", "scene_seed", "image"} & options.keys())
        env_style = getattr(getattr(self.env.unwrapped, "world", None), "style", None)
        if not decided and env_style is None:
            options["style"] = str(np.random.default_rng().choice(FIRST_WORLD_STYLES))
        return options or None

    def step(self) -> None:
        """One clip: generated on a worker thread while this (the UI) thread keeps the window live and plays
        the frames the env streams out as they are decoded."""
        held = self._held() if self.screen is not None else None
        pressed = {k for k in self.movement_keys if held is not None and held[k]}
        action = self.action_for(pressed)
        if self._is_noop(action) and self.last_pressed is not None:
            action = self.action_for({self.last_pressed})
        self.last_pressed = None
        if self.autopilot and self._is_noop(action):  # a held key takes over from the agent for that clip
            action = self.agent_action(action)
        self.stepping = True
        try:
            clip = step_on_worker(self.env, action, self.fps, show=lambda chunk: self._show_clip(chunk, None),
                                  idle=self._draw_idle, stream=not self.compare)
        finally:
            self.stepping = False
        _, reward, terminated, truncated, self.info = clip.out
        new = self.info["frames"][1:]
        self.generated_fps = len(new) / max(clip.seconds, 1e-9)
        self.clip_index += 1
        if self.recording is not None:
            step = {"clip": self.clip_index, "action": np.asarray(action).tolist(), "reward": float(reward),
                    "collision": bool(self.info["collision"]), "seconds": clip.seconds}
            self.recording.add(new, self.info["states"][1:], self.info["poses"][1:], self._prompt(), step)
        if clip.shown < len(new):  # not streamed (the ground truth, --compare): play the clip now
            self._show_clip(new[clip.shown:], *self._panels(self.info, last=len(new) - clip.shown))
        if self.autopilot and goal_reached(self.info):
            self.autopilot = False
            self.say(f"the agent reached the {self.info['goal']}")
        if self.pending_reset or terminated or truncated:
            self.say("a new world" if self.pending_reset else "episode over: a new world")
            self.pending_reset = False
            self.reset()

    def agent_action(self, fallback: Any) -> Any:
        """The pixel agent's action on the frame on screen and the env's goal (``goal_indices()``: it sees what a
        Gymnasium agent with ``goal_observation=True`` sees); ``fallback`` where there is no goal (a world from a
        picture) or the actions are not discrete."""
        why_not = refusal(str(self.info.get("goal", "")), self.env.action_space)
        if why_not is not None:
            self.autopilot = False
            self.say(why_not)
            return fallback
        return self.pilot.act(self.info["frames"][-1], self.env.get_wrapper_attr("goal_indices")())

    def run(self, max_steps: int | None = None, screenshot: str | Path | None = None, record: bool = False) -> None:
        """Play until the window closes (or ``max_steps`` clips; ``screenshot`` saves the last window; ``record``
        starts recording at the first frame, as V would: scripted demos)."""
        stopped_by: str | None = None
        try:
            self.reset()
            if record and self.recording is None:
                self.toggle_recording()
            steps = 0
            while self.running and (max_steps is None or steps < max_steps):
                self.step()
                steps += 1
            if screenshot is not None and self.screen is not None:
                if self._on_screen is not None:
                    self._draw()  # the HUD as it is now, not as the last frame of the clip left it
                self.pygame.image.save(self.screen, str(screenshot))
        except BaseException as error:
            stopped_by = type(error).__name__
            raise
        finally:
            if self.recording is not None:
                self.recording.close(stopped_by)
            self.env.close()
            if self.screen is not None:
                self.pygame.display.quit()

    # ------------------------------------------------------------------ drawing

    def _held(self):
        return self.pygame.key.get_pressed()

    def _is_noop(self, action: Any) -> bool:
        return np.array_equal(np.asarray(action), np.asarray(self.noop))

    def _panels(self, info: dict, last: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """With ``--compare``, the last ``last`` frames of the truth and of the memory render (None: no panel)."""
        if not self.compare:
            return None, None
        truth, memory = info.get("ground_truth_frames"), info.get("memory_frames")
        if memory is None and self._remembers():  # reset: the memory holds the start frame, shown as it is
            memory = info["frames"]
        return (None if truth is None else truth[-last:]), (None if memory is None else memory[-last:])

    def _panel_count(self) -> int:
        """Frames side by side: 1; with ``--compare`` 2, or 3 with a world memory."""
        if not self.compare:
            return 1
        return 3 if self._remembers() else 2

    def _remembers(self) -> bool:
        """Whether the env keeps a world memory (``conditioning="memory"``)."""
        try:
            return self.env.get_wrapper_attr("memory") is not None
        except AttributeError:
            return False

    def _show_clip(self, frames: np.ndarray, truth: np.ndarray | None, memory: np.ndarray | None = None) -> None:
        if self.screen is None:
            self.window.open(*frames.shape[1:3], panels=self._panel_count())
        for i, frame in enumerate(frames):
            for event in self.pygame.event.get():
                self.handle_event(event)
            if not self.running:
                return
            self._on_screen = (frame, *(None if extra is None else extra[i] for extra in (truth, memory)))
            self._draw()
            self.window.tick()

    def _draw_idle(self) -> None:
        """While a clip is generated: handle events and redraw the window (HUD, key table) over the last frame."""
        for event in self.pygame.event.get():
            self.handle_event(event)
        if self._on_screen is not None:  # else no frame has been shown yet: nothing to redraw
            self._draw()

    def _draw(self) -> None:
        """The frame on screen (and its truth), the HUD, and the key table if shown."""
        self.window.draw(self._on_screen, self.hud_state())

    def frames_height(self) -> int:
        """Pixels of the window's frame area, between the top bar and the bottom lines."""
        return self.window.frames_height()

    def keys_panel(self) -> tuple[int, int, int]:
        """``(width, height, key column width)`` in pixels of the key table drawn over the frames."""
        return self.window.keys_panel()

    def hud_state(self) -> HudState:
        """What the HUD tells now."""
        return HudState(
            recording=self.recording is not None, generated_fps=self.generated_fps, clip_index=self.clip_index,
            goal=str(self.info.get("goal", "")) if self.autopilot else None, stepping=self.stepping,
            panels=self._panel_count(), prompt_line=self.prompt_line, prompt=self._prompt(), message=self.message,
            message_time=self.message_time, show_keys=self.show_keys,
        )

    def hud_lines(self) -> tuple[str, list[str]]:
        """The HUD's top line (recording, generated fps, clip) and bottom lines (the prompt on up to
        ``BOTTOM_LINES - 1`` lines, then the last message or the key hint), fitted to the window's width."""
        return self.window.hud_lines(self.hud_state())
