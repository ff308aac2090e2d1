"""``lv2 play``: steer a world with the keyboard in a pygame window.

The keys are listed in :data:`agents.keys_help.KEYS_HELP` (what ``lv2 play --help`` shows); the movement map is
the env's ``get_keys_to_action()``.

Each step generates one clip (1 second of video) on a worker thread, so the window, the HUD and a prompt being
typed stay live while it is generated; a generated world hands over each chunk of frames as its decoder
produces it (``env.unwrapped.on_frames``), and the window plays them at 16 fps as they come, so the first new
frame shows before the whole clip is decoded. Then it reads the keys held at that moment (or, if none is held,
the last movement key pressed while the clip played) for the next step. N and Esc pressed during a step take
effect when it is done. The HUD shows the generated frames per second (new frames over the step's wall time),
the clip index, the recording state and the prompt. ``--compare`` shows the generated world beside the
ground-truth render of the same camera path (that clip plays once it is complete, since its truth comes with
it). Recordings are fragmented MP4s (every frame written is kept, even if the process dies)
with a JSON side file of poses and prompts, rewritten atomically after every clip.

The player only uses the Gymnasium API (``reset``, ``step``, ``get_keys_to_action``) plus ``set_prompt`` and
``on_frames`` of a generated world, reached through ``env.get_wrapper_attr`` / ``set_wrapper_attr``.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from lv2_env.media.video import Mp4Writer
from lv2_env.media.viewer import import_pygame

HUD_HEIGHT = 22


@dataclass
class Recording:
    """An MP4 and its side file, both kept valid after every clip."""

    video: Path
    side_file: Path
    fps: int
    writer: Mp4Writer = field(init=False)
    frames: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.video.parent.mkdir(parents=True, exist_ok=True)
        self.writer = Mp4Writer(self.video, fps=self.fps)

    def add(self, frames: np.ndarray, states: np.ndarray, poses: np.ndarray, prompt: str) -> None:
        self.writer.write(frames)
        for state, pose in zip(states, poses):
            index = len(self.frames)
            self.frames.append({"index": index, "time": index / self.fps, "state": np.round(state, 6).tolist(),
                                "pose": np.round(pose, 6).tolist(), "prompt": prompt})
        temporary = self.side_file.with_suffix(".json.tmp")
        temporary.write_text(json.dumps({"fps": self.fps, "frames": self.frames}))
        temporary.replace(self.side_file)

    def close(self) -> None:
        self.writer.close()


class KeyboardPlayer:
    """The play loop over any LV2 env made with ``render_mode=None`` (the player draws the window itself)."""

    def __init__(self, env: gym.Env, scale: int = 4, compare: bool = False, record_dir: str | Path = "recordings",
                 seed: int | None = None, options: dict | None = None) -> None:
        self.env = env
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
        self.message = ""
        self.screen = None
        self.font = None
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
        elif event.key == pg.K_n:
            if self.stepping:
                self.pending_reset = True
            else:
                self.reset()
        elif event.key == pg.K_ESCAPE:
            self.running = False
        elif event.key in self.movement_keys:
            self.last_pressed = event.key

    def _apply_prompt(self, prompt: str) -> None:
        if not prompt:
            return
        try:
            set_prompt = self.env.get_wrapper_attr("set_prompt")
        except AttributeError:
            self.message = "the ground truth has no prompt"
            return
        set_prompt(prompt)
        self.info["prompt"] = prompt

    # ------------------------------------------------------------------ recording

    def toggle_recording(self) -> None:
        if self.recording is not None:
            self.recording.close()
            self.message = f"saved {self.recording.video}"
            self.recording = None
            return
        stamp = time.strftime("%Y%m%d-%H%M%S")
        video = self.record_dir / f"lv2-{stamp}.mp4"
        self.recording = Recording(video, video.with_suffix(".json"), self.fps)
        self.recording.add(self.info["frames"][-1:], self.info["states"][-1:], self.info["poses"][-1:], self._prompt())
        self.message = f"recording to {video}"

    def _prompt(self) -> str:
        return str(self.info.get("prompt", self.info.get("caption", "")))

    # ------------------------------------------------------------------ loop

    def reset(self) -> None:
        _, self.info = self.env.reset(seed=self.seed, options=self.options)
        self.seed = None  # a new world each time N is pressed
        self.clip_index = 0
        self._show_clip(self.info["frames"][-1:], self._truth(self.info, last=1))

    def step(self) -> None:
        """One clip: generated on a worker thread while this (the UI) thread keeps the window live and plays
        the frames the env streams out as they are decoded."""
        held = self._held() if self.screen is not None else None
        pressed = {k for k in self.movement_keys if held is not None and held[k]}
        action = self.action_for(pressed)
        if self._is_noop(action) and self.last_pressed is not None:
            action = self.action_for({self.last_pressed})
        self.last_pressed = None
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
        _, _, terminated, truncated, self.info = result["out"]
        new = self.info["frames"][1:]
        self.generated_fps = len(new) / max(result["seconds"], 1e-9)
        self.clip_index += 1
        if self.recording is not None:
            self.recording.add(new, self.info["states"][1:], self.info["poses"][1:], self._prompt())
        if shown < len(new):  # not streamed (the ground truth, --compare): play the clip now
            self._show_clip(new[shown:], self._truth(self.info, last=len(new) - shown))
        if self.pending_reset or terminated or truncated:
            self.message = "a new world" if self.pending_reset else "episode over: a new world"
            self.pending_reset = False
            self.reset()

    def _set_stream(self, callback) -> bool:
        """Point the env's ``on_frames`` at ``callback``; False for an env that does not stream (the ground truth)."""
        try:
            self.env.get_wrapper_attr("on_frames")
        except AttributeError:
            return False
        self.env.set_wrapper_attr("on_frames", callback)
        return True

    def run(self, max_steps: int | None = None, screenshot: str | Path | None = None) -> None:
        """Play until the window closes (or ``max_steps`` clips; ``screenshot`` saves the last window)."""
        self.message = "W/A/S/D move, arrows turn/look, R/F rise/sink, Enter prompt, V record, N new world"
        try:
            self.reset()
            steps = 0
            while self.running and (max_steps is None or steps < max_steps):
                self.step()
                steps += 1
            if screenshot is not None and self.screen is not None:
                self.pygame.image.save(self.screen, str(screenshot))
        finally:
            if self.recording is not None:
                self.recording.close()
            self.env.close()
            if self.screen is not None:
                self.pygame.display.quit()

    # ------------------------------------------------------------------ drawing

    def _held(self):
        return self.pygame.key.get_pressed()

    def _is_noop(self, action: Any) -> bool:
        return np.array_equal(np.asarray(action), np.asarray(self.noop))

    def _truth(self, info: dict, last: int) -> np.ndarray | None:
        frames = info.get("ground_truth_frames")
        return None if not self.compare or frames is None else frames[-last:]

    def _open(self, height: int, width: int) -> None:
        pg = self.pygame
        pg.display.init()
        pg.font.init()
        panels = 2 if self.compare else 1
        self.screen = pg.display.set_mode((width * self.scale * panels, height * self.scale + 2 * HUD_HEIGHT))
        pg.display.set_caption("lv2 play")
        self.font = pg.font.Font(None, HUD_HEIGHT)
        self.clock = pg.time.Clock()

    def _show_clip(self, frames: np.ndarray, truth: np.ndarray | None) -> None:
        pg = self.pygame
        h, w = frames.shape[1:3]
        if self.screen is None:
            self._open(h, w)
        for i, frame in enumerate(frames):
            for event in pg.event.get():
                self.handle_event(event)
            if not self.running:
                return
            self.screen.fill((0, 0, 0))
            self._blit(frame, 0)
            if truth is not None:
                self._blit(truth[i], w * self.scale)
            self._draw_hud(w * self.scale * (2 if truth is not None else 1), h * self.scale)
            pg.display.flip()
            self.clock.tick(self.fps)

    def _draw_idle(self) -> None:
        """While a clip is generated: handle events and redraw the HUD over the frames on screen."""
        pg = self.pygame
        for event in pg.event.get():
            self.handle_event(event)
        if self.screen is None:
            return
        width, height = self.screen.get_width(), self.screen.get_height() - 2 * HUD_HEIGHT
        self.screen.fill((0, 0, 0), (0, 0, width, HUD_HEIGHT))
        self.screen.fill((0, 0, 0), (0, HUD_HEIGHT + height, width, HUD_HEIGHT))
        self._draw_hud(width, height)
        pg.display.flip()

    def _blit(self, frame: np.ndarray, x: int) -> None:
        pg = self.pygame
        surface = pg.image.frombuffer(np.ascontiguousarray(frame), (frame.shape[1], frame.shape[0]), "RGB")
        size = (frame.shape[1] * self.scale, frame.shape[0] * self.scale)
        self.screen.blit(pg.transform.scale(surface, size), (x, HUD_HEIGHT))

    def _draw_hud(self, width: int, height: int) -> None:
        rec = "  REC" if self.recording is not None else ""
        fps = "-" if not np.isfinite(self.generated_fps) else f"{self.generated_fps:.1f}"
        busy = f" | generating clip {self.clip_index + 1}" if self.stepping else ""
        top = f"{fps} generated fps | clip {self.clip_index}{busy}{rec}" + ("  | left: generated, right: ground truth" if self.compare else "")
        if self.prompt_line is not None:
            bottom = f"new prompt: {self.prompt_line}_"
        else:
            bottom = f"prompt: {self._prompt()}   {self.message}"
        for text, y, colour in ((top, 2, (255, 80, 80) if rec else (255, 255, 255)), (bottom, HUD_HEIGHT + height + 2, (255, 255, 255))):
            self.screen.blit(self.font.render(text, True, colour), (4, y))
