"""What a key press means to the player: keys as pygame key codes (:func:`key_code`), the movement a set of held
keys asks for (:func:`movement_action`), the player's command keys (:func:`command_keys`, from
:data:`lv2_env.envs.keys.PLAYER_KEYS`) and the editing of a prompt being typed (:func:`edit_prompt`)."""

from __future__ import annotations

from typing import Any

from lv2_env.envs.keys import PLAYER_KEYS


def key_code(pygame: Any, key: str | int) -> int:
    """A key as a pygame key code: a key name of :mod:`lv2_env.envs.keys` (a character such as ``"w"``, as the
    env's key map has it too, or a pygame constant's name such as ``"K_RETURN"``), or a key code already."""
    if isinstance(key, str):
        return int(getattr(pygame, key)) if key.startswith("K_") else ord(key)
    return int(key)


def movement_action(pygame: Any, keys_to_action: dict[tuple, Any], pressed: set[int], noop: Any) -> Any:
    """The action of the held movement keys ``pressed`` (key codes) in the env's ``get_keys_to_action()`` map (one
    binding each; the first that matches), else ``noop``."""
    for combo, action in keys_to_action.items():
        if {key_code(pygame, k) for k in combo} <= pressed:
            return action
    return noop


def command_keys(pygame: Any) -> dict[int, str]:
    """The player's commands (:data:`lv2_env.envs.keys.PLAYER_KEYS`) by key code."""
    return {key_code(pygame, name): command for command, name in PLAYER_KEYS.items()}


def edit_prompt(pygame: Any, commands: dict[int, str], line: str, event: Any) -> tuple[str | None, str | None]:
    """A key pressed while a prompt is typed: ``(the line after it, None when typing ends; the prompt to apply, or
    None)``. The prompt key (Enter) applies the line, the quit key (Esc) cancels it, Backspace deletes the last
    character, and a printable character is typed (a movement or command letter too)."""
    command = commands.get(event.key)
    if command == "prompt":
        return None, line.strip()
    if command == "quit":
        return None, None
    if event.key == pygame.K_BACKSPACE:
        return line[:-1], None
    if event.unicode and event.unicode.isprintable():
        return line + event.unicode, None
    return line, None
