"""The key bindings of the LV2 envs and of ``lv2 play``, written once, and the help text made from them.

Keys are named, not coded, so this module needs no pygame: a letter is its character (``"w"``), any other key
the name of its pygame constant (``"K_LEFT"``). The envs' ``get_keys_to_action()`` binds :data:`MOVEMENT_KEYS`
(for ``gymnasium.utils.play.play`` and ``lv2 play``); the player (:mod:`agents.play`) maps :data:`PLAYER_KEYS` to
pygame key codes; ``lv2 play --help`` shows :data:`KEYS_HELP`, and the player's key overlay (H) draws :data:`KEYS`.
"""

from __future__ import annotations

# Keyboard layout for gymnasium.utils.play.play and `lv2 play`: WASD walk, arrows turn and look, R/F rise and
# sink. Each discrete macro (lv2_env.signals.actions.DISCRETE_ACTIONS, by name) -> the key combination for it.
MOVEMENT_KEYS: dict[str, tuple[str, ...]] = {
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

# The keys of `lv2 play` itself: command -> key.
PLAYER_KEYS: dict[str, str] = {
    "agent": "g",  # the pixel agent walks to the goal (on / off)
    "prompt": "K_RETURN",  # type a new prompt; again: apply it
    "record": "v",  # start / stop recording
    "new_world": "n",
    "keys": "h",  # show / hide the key table
    "quit": "K_ESCAPE",  # quit; while typing a prompt: cancel it
}

# How the help names the keys that are not letters (letters are shown in capitals).
_KEY_LABELS = {"K_LEFT": "left", "K_RIGHT": "right", "K_UP": "up", "K_DOWN": "down", "K_RETURN": "Enter",
               "K_ESCAPE": "Esc"}

# The rows of the key table: the bindings (movements or commands) shown together, and what they do; short
# enough for the overlay of a 256-pixel window (``--scale 2``).
_ROWS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("forward", "back"), "forward / back"),
    (("strafe_left", "strafe_right"), "strafe left / right"),
    (("turn_left", "turn_right"), "turn"),
    (("look_up", "look_down"), "look up / down"),
    (("rise", "sink"), "rise / sink"),
    (("agent",), "agent walks to the goal"),
    (("prompt",), "type a new prompt"),
    (("record",), "start / stop recording"),
    (("new_world",), "new world"),
    (("keys",), "show / hide these keys"),
    (("quit",), "quit"),
)

# What --help says beyond the overlay's words.
_DETAILS = {
    "agent": "the shipped pixel agent walks to the caption's goal (on / off; --agent picks another, a held key overrides)",
    "prompt": "type a new prompt (Enter again applies it, Esc cancels)",
    "quit": "quit; so does closing the window (a recording in progress is kept)",
}


def key_label(name: str) -> str:
    """How the help shows the key ``name``: ``"w"`` -> ``"W"``, ``"K_LEFT"`` -> ``"left"``."""
    return _KEY_LABELS.get(name, name[2:].lower() if name.startswith("K_") else name.upper())


def _keys_of(binding: str) -> str:
    combo = MOVEMENT_KEYS[binding] if binding in MOVEMENT_KEYS else (PLAYER_KEYS[binding],)
    return " + ".join(key_label(name) for name in combo)


# (keys, what they do): the table the player's overlay (H) draws, made from the bindings above.
KEYS: tuple[tuple[str, str], ...] = tuple((" / ".join(_keys_of(b) for b in row), text) for row, text in _ROWS)

KEYS_HELP = (
    "Keys (the movement map is the env's ``get_keys_to_action()``; H shows this table in the window):\n\n"
    + "\n".join(f"    {keys:<14}{_DETAILS.get(row[0], action)}" for (keys, action), (row, _) in zip(KEYS, _ROWS))
)
