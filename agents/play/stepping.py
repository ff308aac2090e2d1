"""One clip generated on a worker thread (:func:`step_on_worker`), so the window, the HUD and a prompt being typed
stay live while it is generated; a generated world hands over each chunk of frames as its decoder produces it
(``on_frames``, reached through ``env.get_wrapper_attr`` / ``set_wrapper_attr``: :func:`set_stream`), and they are
played as they come."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import gymnasium as gym
import numpy as np


@dataclass(frozen=True)
class SteppedClip:
    """What :func:`step_on_worker` returns: ``env.step``'s five values, its seconds (the step alone, not the
    playback beside it) and how many of the new frames were already played as they streamed."""

    out: tuple
    seconds: float
    shown: int


def set_stream(env: gym.Env, callback: Callable[[np.ndarray], Any] | None) -> bool:
    """Point the env's ``on_frames`` at ``callback``; False for an env that does not stream (the ground truth)."""
    try:
        env.get_wrapper_attr("on_frames")
    except AttributeError:
        return False
    env.set_wrapper_attr("on_frames", callback)
    return True


def step_on_worker(env: gym.Env, action: Any, fps: int, show: Callable[[np.ndarray], None],
                   idle: Callable[[], None], stream: bool = True) -> SteppedClip:
    """``env.step(action)`` on a worker thread, while this (the UI) thread calls ``show`` with each chunk of frames
    the env streams out (with ``stream``, where the env can) and ``idle`` every ``1 / fps`` seconds that brings
    none. An error of the step is raised here, once the worker is done; the stream is detached either way."""
    streamed: queue.Queue = queue.Queue()
    streaming = stream and set_stream(env, lambda chunk: streamed.put(chunk))
    result: dict[str, Any] = {}

    def generate() -> None:
        tick = time.perf_counter()
        try:
            result["out"] = env.step(action)
        except BaseException as error:  # re-raised on the UI thread
            result["error"] = error
        result["seconds"] = time.perf_counter() - tick  # the step alone, not the playback beside it

    worker = threading.Thread(target=generate, name="lv2-step", daemon=True)
    worker.start()
    shown = 0
    try:
        while worker.is_alive() or not streamed.empty():
            try:
                chunk = streamed.get(timeout=1.0 / fps)
            except queue.Empty:
                idle()  # generating: keep events, HUD and the prompt line live
                continue
            show(chunk)
            shown += len(chunk)
        worker.join()
    finally:
        if streaming:
            set_stream(env, None)
    if "error" in result:
        raise result["error"]
    return SteppedClip(result["out"], result["seconds"], shown)
