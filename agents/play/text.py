"""Text fitted to the width of the window: one line cut with an ellipsis (:func:`fit_line`), or words wrapped on a
few lines (:func:`wrap_lines`), measured by any ``measure(text) -> pixels`` (a pygame font's, or ``len``)."""

from __future__ import annotations

from typing import Callable

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
