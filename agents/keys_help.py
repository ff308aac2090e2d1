"""The keys of ``lv2 play`` (:mod:`agents.keyboard`), as text: ``lv2 play --help`` shows it without importing
the player (pygame, gymnasium, the video writer)."""

KEYS_HELP = """\
Keys (the movement map is the env's ``get_keys_to_action()``):

    W / S        forward / back          A / D        strafe left / right
    left/right   turn                    up/down      look up / down
    R / F        rise / sink             Enter        type a new prompt (Enter again to apply, Esc to cancel)
    V            start / stop recording  N            new world (reset)
    Esc or closing the window: quit (a recording in progress is kept)"""
