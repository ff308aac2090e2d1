"""``lv2 play``: steer a world with the keyboard in a pygame window.

:mod:`~agents.play.player` (the play loop, :class:`KeyboardPlayer`), :mod:`~agents.play.events` (what a key press
means), :mod:`~agents.play.stepping` (a clip generated on a worker thread), :mod:`~agents.play.autopilot` (G: a
pixel agent walks to the goal), :mod:`~agents.play.recording` (V: MP4 and side file), :mod:`~agents.play.hud`
(the window, its HUD and key table) and :mod:`~agents.play.text` (text fitted to the window). The key bindings
themselves are :mod:`lv2_env.envs.keys`.
"""

from agents.play.player import FIRST_WORLD_STYLES, KeyboardPlayer

__all__ = ["FIRST_WORLD_STYLES", "KeyboardPlayer"]
