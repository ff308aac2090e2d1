"""The keys of ``lv2 play`` (:mod:`agents.keyboard`), as text: ``lv2 play --help`` shows them without importing
the player (pygame, gymnasium, the video writer), and the player's key overlay (H) draws the same table."""

# (keys, what they do): short enough for the overlay of a 256-pixel window (``--scale 2``).
KEYS: tuple[tuple[str, str], ...] = (
    ("W / S", "forward / back"),
    ("A / D", "strafe left / right"),
    ("left / right", "turn"),
    ("up / down", "look up / down"),
    ("R / F", "rise / sink"),
    ("G", "agent walks to the goal"),
    ("Enter", "type a new prompt"),
    ("V", "start / stop recording"),
    ("N", "new world"),
    ("H", "show / hide these keys"),
    ("Esc", "quit"),
)

# What --help says beyond the overlay's words.
_DETAILS = {
    "G": "the shipped pixel agent walks to the caption's goal (on / off; --agent picks another, a held key overrides)",
    "Enter": "type a new prompt (Enter again applies it, Esc cancels)",
    "Esc": "quit; so does closing the window (a recording in progress is kept)",
}

KEYS_HELP = (
    "Keys (the movement map is the env's ``get_keys_to_action()``; H shows this table in the window):\n\n"
    + "\n".join(f"    {keys:<14}{_DETAILS.get(keys, action)}" for keys, action in KEYS)
)
