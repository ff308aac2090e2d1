"""``lv2 play``: steer a world with the keyboard in a pygame window.

The keys are listed in :data:`agents.keys_help.KEYS_HELP` (what ``lv2 play --help`` shows); the movement map is
the env's ``get_keys_to_action()``.

Each step generates one clip (1 second of video) on a worker thread, so the window, the HUD and a prompt being
typed stay live while it is generated; a generated world hands over each chunk of frames as its decoder
produces it (``env.unwrapped.on_frames``), and the window plays them at 16 fps as they come, so the first new
frame shows before the whole clip is decoded. Then it reads the keys held at that moment (or, if none is held,
the last movement key pressed while the clip played) for the next step. N and Esc pressed during a step take
effect when it is done. The HUD shows the generated frames per second (new frames over the step's wall time),
the clip index, the recording state, the prompt and the last message, each fitted to the window's width
(:func:`fit_line`, :func:`wrap_lines`); the key table (:data:`agents.keys_help.KEYS`) is drawn over the frames
at the start, until the first movement key, and H shows or hides it. ``--compare`` shows the generated world
beside the ground-truth render of the same camera path (that clip plays once it is complete, since its truth
comes with it), and, for a world conditioned on its memory (``--conditioning memory``), the world memory's render
of the path as a third panel (black where it holds nothing).

The first world is one a person can see: without a seed (and without a style, scene or picture asked for, by
the reset options or the env) it gets a bright style, drawn from :data:`FIRST_WORLD_STYLES`, since a night, fog
or dusk scene shows little at 128x128; the worlds N starts are drawn from every style.

Recordings are fragmented MP4s (every frame written is kept, even if the process dies) with a side file of
poses and prompts (:class:`agents.rollout.SideFile`): appended clip by clip to a JSON Lines journal while
recording, written as one JSON object when the recording stops, so a killed player loses no finished clip.

The player only uses the Gymnasium API (``reset``, ``step``, ``get_keys_to_action``) plus ``set_prompt`` and
``on_frames`` of a generated world, reached through ``env.get_wrapper_attr`` / ``set_wrapper_attr``.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from agents.keys_help import KEYS
from agents.rollout import SideFile
from lv2_env.media.video import Mp4Writer
from lv2_env.media.viewer import import_pygame

HUD_HEIGHT = 22  # pixels per line of the bars above and below the frames
BOTTOM_LINES = 3  # the prompt (up to two lines) and the last message
HUD_FONT_SIZE, KEYS_FONT_SIZE = 22, 18
MARGIN = 4  # pixels between the window's edge and the text
MESSAGE_SECONDS = 6.0  # a message shows this long, then the key hint comes back
# Bright enough to see at 128x128 in a generated world: not night or fog, and not dusk either, whose ground the
# shipped model renders near black.
FIRST_WORLD_STYLES = ("sunny", "snow", "desert")
ELLIPSIS = "..."


def fit_line(text: str, width: int, measure: Callable[[str], int], keep_end: bool = False) -> str:
    """``text`` if ``measure(text) <= width``, else cut with an ellipsis to fit: its end dropped, or with
    ``keep_end`` its start (a prompt being typed keeps its cursor in view)."""
    if measure(text) <= width:
        return text
    kept = text
    while kept and measure(ELLIPSIS + kept if keep_end else kept + ELLIPSIS) > width:
        kept = kept[1:] if keep_end else kept[:-1]
    return ELLIPSIS + kept if keep_end else kept.rstrip() + ELLIPSIS


def wrap_lines(text: str, width: int, measure: Callable[[str], int], max_lines: int,
               keep_end: bool = False) -> list[str]:
    """``text`` broken at spaces into at most ``max_lines`` lines of at most ``width`` (by ``measure``); what
    does not fit is cut with an ellipsis: the end, or with ``keep_end`` the start."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and measure(lines[-1] + " " + word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    if len(lines) > max_lines:
        if keep_end:
            lines = lines[-max_lines:]
            lines[0] = ELLIPSIS + lines[0]
        else:
            lines = lines[:max_lines]
            lines[-1] += ELLIPSIS
    return [fit_line(line, width, measure, keep_end) for line in lines]


@dataclass
class Recording:
    """An MP4 and its side file (:class:`agents.rollout.SideFile`): a kill loses no finished clip of either."""

    video: Path
    side_file: Path
    fps: int
    writer: Mp4Writer = field(init=False)
    side: SideFile = field(init=False)

    def __post_init__(self) -> None:
        self.video.parent.mkdir(parents=True, exist_ok=True)
        self.writer = Mp4Writer(self.video, fps=self.fps)
        self.side = SideFile(self.side_file, {"fps": self.fps})

    @property
    def frames(self) -> list[dict]:
        """The frame records so far."""
        return self.side.frames

    def add(self, frames: np.ndarray, states: np.ndarray, poses: np.ndarray, prompt: str,
            step: dict | None = None) -> None:
        """Append frames (the video first, then their records; ``step`` describes the step that made them)."""
        self.writer.write(frames)
        first = len(self.side.frames)
        records = [{"index": first + i, "time": (first + i) / self.fps, "state": np.round(state, 6).tolist(),
                    "pose": np.round(pose, 6).tolist(), "prompt": prompt}
                   for i, (state, pose) in enumerate(zip(states, poses))]
        self.side.add(records, step)

    def close(self, stopped_by: str | None = None) -> None:
        """Close the video and write the side file; ``stopped_by`` names an error that ended the recording."""
        self.writer.close()
        self.side.close({"finished": stopped_by is None, **({"stopped_by": stopped_by} if stopped_by else {})})


class KeyboardPlayer:
    """The play loop over any LV2 env made with ``render_mode=None`` (the player draws the window itself)."""

    def __init__(self, env: gym.Env, scale: int = 4, compare: bool = False, record_dir: str | Path = "recordings",
                 seed: int | None = None, options: dict | None = None, agent: str | None = None,
                 autopilot: bool = False) -> None:
        self.env = env
        # G: this pixel agent walks to the goal (agents.pixel.load_agent; None: the default), loaded on first use.
        self.agent_name = agent
        self.autopilot = autopilot
        self._agent = None
        self._agent_previous = 0
        self.scale = scale
        self.compare = compare
        self.record_dir = Path(record_dir)
        self.seed = seed
        self.options = options
        self.fps = int(env.metadata.get("render_fps", 16))
        self.pygame = import_pygame()
        self.keys_to_action = env.unwrapped.get_keys_to_action()
        self.noop = 0 if isinstance(env.action_space, gym.spaces.Discrete) else np.zeros(env.action_space.shape, np.float32)
        self.movement_keys = {self._code(k) for combo in self.keys_to_action for k in combo}
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
        self.screen = None
        self._on_screen: tuple[np.ndarray, ...] | None = None  # the frame shown (and its truth and memory render)
        self.font = None
        self.keys_font = None
        self.clock = None

    # ------------------------------------------------------------------ keys

    def _code(self, key: str | int) -> int:
        return ord(key) if isinstance(key, str) else int(key)

    def action_for(self, pressed: set[int]) -> Any:
        """The action of the held movement keys (one binding each; the first that matches), else the noop."""
        for combo, action in self.keys_to_action.items():
            if {self._code(k) for k in combo} <= pressed:
                return action
        return self.noop

    def handle_event(self, event: Any) -> None:
        """Apply one pygame event: typing, recording, reset, quit; remember the last movement key."""
        pg = self.pygame
        if event.type == pg.QUIT:
            self.running = False
        elif event.type != pg.KEYDOWN:
            return
        elif self.prompt_line is not None:
            if event.key == pg.K_RETURN:
                self._apply_prompt(self.prompt_line.strip())
                self.prompt_line = None
            elif event.key == pg.K_ESCAPE:
                self.prompt_line = None
            elif event.key == pg.K_BACKSPACE:
                self.prompt_line = self.prompt_line[:-1]
            elif event.unicode and event.unicode.isprintable():
                self.prompt_line += event.unicode
        elif event.key == pg.K_RETURN:
            self.prompt_line = ""
        elif event.key == pg.K_v:
            self.toggle_recording()
        elif event.key == pg.K_h:
            self.show_keys = not self.show_keys
        elif event.key == pg.K_g:
            self.autopilot = not self.autopilot
            self._agent_previous = 0
            self.say("the agent walks to the goal (G: stop)" if self.autopilot else "agent off: the keys steer")
            self.show_keys = False
        elif event.key == pg.K_n:
            if self.stepping:
                self.pending_reset = True
            else:
                self.reset()
        elif event.key == pg.K_ESCAPE:
            self.running = False
        elif event.key in self.movement_keys:
            self.last_pressed = event.key
            self.show_keys = False  # moving: the world, not the table

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

    # ------------------------------------------------------------------ recording

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
        """Show ``message`` in the HUD's last line for :data:`MESSAGE_SECONDS`."""
        self.message, self.message_time = message, time.monotonic()

    def _prompt(self) -> str:
        return str(self.info.get("prompt", self.info.get("caption", "")))

    # ------------------------------------------------------------------ loop

    def reset(self) -> None:
        options = self.first_world_options() if self.first_world else self.options
        _, self.info = self.env.reset(seed=self.seed, options=options)
        self.seed = None  # a new world each time N is pressed
        self._agent_previous = 0
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
        streamed: queue.Queue = queue.Queue()
        stream = not self.compare and self._set_stream(lambda chunk: streamed.put(chunk))
        result: dict[str, Any] = {}

        def generate() -> None:
            tick = time.perf_counter()
            try:
                result["out"] = self.env.step(action)
            except BaseException as error:  # re-raised on the UI thread
                result["error"] = error
            result["seconds"] = time.perf_counter() - tick  # the step alone, not the playback beside it

        worker = threading.Thread(target=generate, name="lv2-step", daemon=True)
        self.stepping = True
        worker.start()
        shown = 0
        try:
            while worker.is_alive() or not streamed.empty():
                try:
                    chunk = streamed.get(timeout=1.0 / self.fps)
                except queue.Empty:
                    self._draw_idle()  # generating: keep events, HUD and the prompt line live
                    continue
                self._show_clip(chunk, None)
                shown += len(chunk)
            worker.join()
        finally:
            self.stepping = False
            if stream:
                self._set_stream(None)
        if "error" in result:
            raise result["error"]
        _, reward, terminated, truncated, self.info = result["out"]
        new = self.info["frames"][1:]
        self.generated_fps = len(new) / max(result["seconds"], 1e-9)
        self.clip_index += 1
        if self.recording is not None:
            step = {"clip": self.clip_index, "action": np.asarray(action).tolist(), "reward": float(reward),
                    "collision": bool(self.info["collision"]), "seconds": result["seconds"]}
            self.recording.add(new, self.info["states"][1:], self.info["poses"][1:], self._prompt(), step)
        if shown < len(new):  # not streamed (the ground truth, --compare): play the clip now
            self._show_clip(new[shown:], *self._panels(self.info, last=len(new) - shown))
        if self.autopilot and np.isfinite(self.info.get("goal_distance", np.nan)) and self.info["goal_distance"] <= 1.5:
            self.autopilot = False
            self.say(f"the agent reached the {self.info['goal']}")
        if self.pending_reset or terminated or truncated:
            self.say("a new world" if self.pending_reset else "episode over: a new world")
            self.pending_reset = False
            self.reset()

    def agent_action(self, fallback: Any) -> Any:
        """The pixel agent's action on the frame on screen and the scene's goal (it sees what a Gymnasium agent
        with ``goal_observation=True`` sees); ``fallback`` where there is no goal (a world from a picture)."""
        from agents.pixel import load_agent
        from lv2_env.envs.core import GOAL_COLOURS, GOAL_KINDS

        goal = str(self.info.get("goal", ""))
        if not goal or not isinstance(self.env.action_space, gym.spaces.Discrete):
            self.autopilot = False
            self.say("no goal to walk to here (a world from a picture)" if not goal else "the agent needs discrete actions")
            return fallback
        if self._agent is None:
            self._agent = load_agent(self.agent_name) if self.agent_name else load_agent()
        colour, kind = goal.split(" ")
        observation = {"image": self.info["frames"][-1],
                       "goal": np.array([GOAL_COLOURS.index(colour), GOAL_KINDS.index(kind)])}
        action, _ = self._agent.predict(observation, state=np.array([self._agent_previous]), deterministic=True)
        self._agent_previous = int(action)
        return int(action)

    def _set_stream(self, callback) -> bool:
        """Point the env's ``on_frames`` at ``callback``; False for an env that does not stream (the ground truth)."""
        try:
            self.env.get_wrapper_attr("on_frames")
        except AttributeError:
            return False
        self.env.set_wrapper_attr("on_frames", callback)
        return True

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

    def _remembers(self) -> bool:
        """Whether the env keeps a world memory (``conditioning="memory"``)."""
        try:
            return self.env.get_wrapper_attr("memory") is not None
        except AttributeError:
            return False

    def _open(self, height: int, width: int) -> None:
        pg = self.pygame
        pg.display.init()
        pg.font.init()
        panels = 1 + (2 if self._remembers() else 1) * self.compare
        bars = (1 + BOTTOM_LINES) * HUD_HEIGHT
        self.screen = pg.display.set_mode((width * self.scale * panels, height * self.scale + bars))
        pg.display.set_caption("lv2 play")
        self.font = pg.font.Font(None, HUD_FONT_SIZE)
        self.keys_font = pg.font.Font(None, KEYS_FONT_SIZE)
        self.clock = pg.time.Clock()

    def _show_clip(self, frames: np.ndarray, truth: np.ndarray | None, memory: np.ndarray | None = None) -> None:
        pg = self.pygame
        if self.screen is None:
            self._open(*frames.shape[1:3])
        for i, frame in enumerate(frames):
            for event in pg.event.get():
                self.handle_event(event)
            if not self.running:
                return
            self._on_screen = (frame, *(None if extra is None else extra[i] for extra in (truth, memory)))
            self._draw()
            self.clock.tick(self.fps)

    def _draw_idle(self) -> None:
        """While a clip is generated: handle events and redraw the window (HUD, key table) over the last frame."""
        for event in self.pygame.event.get():
            self.handle_event(event)
        if self._on_screen is not None:  # else no frame has been shown yet: nothing to redraw
            self._draw()

    def _draw(self) -> None:
        """The frame on screen (and its truth), the HUD, and the key table if shown."""
        frame, *extras = self._on_screen
        self.screen.fill((0, 0, 0))
        self._blit(frame, 0)
        for k, extra in enumerate(extras, start=1):
            if extra is not None:
                self._blit(extra, k * frame.shape[1] * self.scale)
        self._draw_hud()
        if self.show_keys:
            self._draw_keys()
        self.pygame.display.flip()

    def _blit(self, frame: np.ndarray, x: int) -> None:
        pg = self.pygame
        surface = pg.image.frombuffer(np.ascontiguousarray(frame), (frame.shape[1], frame.shape[0]), "RGB")
        size = (frame.shape[1] * self.scale, frame.shape[0] * self.scale)
        self.screen.blit(pg.transform.scale(surface, size), (x, HUD_HEIGHT))

    def frames_height(self) -> int:
        """Pixels of the window's frame area, between the top bar and the bottom lines."""
        return self.screen.get_height() - (1 + BOTTOM_LINES) * HUD_HEIGHT

    def hud_lines(self) -> tuple[str, list[str]]:
        """The HUD's top line (recording, generated fps, clip) and bottom lines (the prompt on up to
        ``BOTTOM_LINES - 1`` lines, then the last message or the key hint), fitted to the window's width."""
        room, measure = self.screen.get_width() - 2 * MARGIN, self._text_width
        fps = "-" if not np.isfinite(self.generated_fps) else f"{self.generated_fps:.1f}"
        parts = (["REC"] if self.recording is not None else []) + [f"{fps} generated fps", f"clip {self.clip_index}"]
        if self.autopilot:
            parts.append(f"agent -> {self.info.get('goal', '')}")
        if self.stepping:
            parts.append(f"generating {self.clip_index + 1}")
        if self.compare:
            parts.append("generated | ground truth | world memory" if self._remembers() else
                         "left: generated, right: ground truth")
        top = fit_line(" | ".join(parts), room, measure)
        if self.prompt_line is not None:  # the end of the line being typed stays in view
            prompt = wrap_lines(f"new prompt: {self.prompt_line}_", room, measure, BOTTOM_LINES - 1, keep_end=True)
        else:
            prompt = wrap_lines(f"prompt: {self._prompt()}", room, measure, BOTTOM_LINES - 1)
        if self.message and time.monotonic() - self.message_time < MESSAGE_SECONDS:
            note = self.message
        else:
            note = ("H: hide keys" if self.show_keys else "H: keys") + " | Esc: quit"
        return top, prompt + [fit_line(note, room, measure)]

    def _text_width(self, text: str) -> int:
        return self.font.size(text)[0]

    def _draw_hud(self) -> None:
        top, bottom = self.hud_lines()
        colour = (255, 80, 80) if self.recording is not None else (255, 255, 255)
        self.screen.blit(self.font.render(top, True, colour), (MARGIN, 3))
        below = HUD_HEIGHT + self.frames_height()
        for i, text in enumerate(bottom):
            self.screen.blit(self.font.render(text, True, (255, 255, 255)), (MARGIN, below + 3 + i * HUD_HEIGHT))

    def keys_panel(self) -> tuple[int, int, int]:
        """``(width, height, key column width)`` in pixels of the key table drawn over the frames."""
        keys_width = max(self.keys_font.size(keys)[0] for keys, _ in KEYS) + 3 * MARGIN
        width = keys_width + max(self.keys_font.size(action)[0] for _, action in KEYS) + 2 * MARGIN
        return width, len(KEYS) * self.keys_font.get_linesize() + 2 * MARGIN, keys_width

    def _draw_keys(self) -> None:
        """The key table (:data:`agents.keys_help.KEYS`) on a dark translucent panel at the frames' top left."""
        pg = self.pygame
        width, height, keys_width = self.keys_panel()
        panel = pg.Surface((width, height), pg.SRCALPHA)
        panel.fill((0, 0, 0, 170))
        line = self.keys_font.get_linesize()
        for i, (keys, action) in enumerate(KEYS):
            y = MARGIN + i * line
            panel.blit(self.keys_font.render(keys, True, (255, 220, 120)), (MARGIN, y))
            panel.blit(self.keys_font.render(action, True, (255, 255, 255)), (keys_width, y))
        self.screen.blit(panel, (MARGIN, HUD_HEIGHT + MARGIN))
