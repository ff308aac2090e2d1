"""What an evaluation writes: strict-JSON reports and picture grids of frames (shared by clips and rollouts).

Every file is written whole or not at all (a temporary file, then ``os.replace``), so an evaluation killed while
rewriting its report keeps the previous one; :func:`append_json_line` adds one record to a JSON Lines file.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np


def _strict_json(value: Any) -> Any:
    """The report with inf/NaN as None: strict JSON (jq, browsers) has no Infinity or NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(v) for v in value]
    return value


def _temporary(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def write_report(report: Mapping[str, Any], path: str | Path) -> Path:
    """Write the report as strict JSON (non-finite numbers as null, as the report's notes say), atomically."""
    path = Path(path)
    temporary = _temporary(path)
    temporary.write_text(json.dumps(_strict_json(dict(report)), indent=1, allow_nan=False) + "\n")
    os.replace(temporary, path)
    return path


def _nan_for_null(value: Any) -> Any:
    if value is None:
        return math.nan
    if isinstance(value, dict):
        return {k: _nan_for_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_for_null(v) for v in value]
    return value


def read_json_lines(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSON Lines file written by :func:`append_json_line`, each null read back as NaN (it stood
    for a number that was infinite or undefined; means leave either out). A last line cut short by a kill is
    dropped."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(_nan_for_null(json.loads(line)))
        except json.JSONDecodeError:
            if number < len(lines):
                raise ValueError(f"{path}: line {number} of {len(lines)} is not JSON") from None
    return records


def append_json_line(record: Mapping[str, Any], path: str | Path) -> Path:
    """Append ``record`` to a JSON Lines file as one line of strict JSON (non-finite numbers as null), handed to
    the OS at once: a process killed later loses none of the lines it appended."""
    path = Path(path)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(_strict_json(dict(record)), allow_nan=False) + "\n")
    return path


def save_figure(figure: Any, path: str | Path) -> Path:
    """Save a matplotlib figure atomically, in the format its suffix names (``.png``)."""
    path = Path(path)
    temporary = _temporary(path)
    figure.savefig(temporary, format=path.suffix.lstrip(".") or "png")
    os.replace(temporary, path)
    return path


def picture_grid(
    rows: Sequence[tuple[str, np.ndarray]],
    frame_indices: Sequence[int] | None = None,
    *,
    path: str | Path,
    title: str | None = None,
    column_titles: Sequence[str] | None = None,
) -> Path:
    """A PNG of frames: one row per ``(label, frames [F, H, W, 3])``, one column per frame index.

    Pass rows in the order to compare, e.g. truth, model, warp for each clip. ``frame_indices`` defaults to the
    first, middle and last frame of the shortest row; negative indices count from the end. Columns are titled
    ``frame i``, or ``column_titles`` (rows that hold a few frames picked from longer videos).
    """
    from matplotlib.figure import Figure

    if not rows:
        raise ValueError("picture_grid needs at least one (label, frames) row, got none")
    videos = []
    for label, frames in rows:
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"row {label!r}: expected uint8 frames [F, H, W, 3], got {frames.dtype} {frames.shape}")
        videos.append((str(label), frames))
    shortest = min(len(f) for _, f in videos)
    indices = [0, shortest // 2, shortest - 1] if frame_indices is None else [int(i) for i in frame_indices]
    bad = [i for i in indices if not -shortest <= i < shortest]
    if bad:
        raise ValueError(f"frame indices {bad} are outside the shortest row's {shortest} frames")
    indices = [i % shortest for i in indices]
    if column_titles is None:
        column_titles = [f"frame {i}" for i in indices]
    elif len(column_titles) != len(indices):
        raise ValueError(f"expected one column title per frame index ({len(indices)}), got {len(column_titles)}")

    cell, header, heading = 1.5, 0.3, (0.3 if title else 0.0)  # inches: image cell, column titles, figure title
    width, height = 1.3 + cell * len(indices), header + heading + cell * len(videos) + 0.05
    fig = Figure(figsize=(width, height), dpi=110)
    grid = fig.subplots(len(videos), len(indices), squeeze=False)
    for r, (label, frames) in enumerate(videos):
        for c, index in enumerate(indices):
            ax = grid[r][c]
            ax.imshow(frames[index], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(column_titles[c], fontsize=7)
            if c == 0:
                ax.set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=8, y=1.0 - 0.08 / height, va="top")
    fig.subplots_adjust(left=1.2 / width, right=1.0 - 0.05 / width, bottom=0.05 / height, wspace=0.04, hspace=0.06,
                        top=1.0 - (header + heading) / height)
    return save_figure(fig, path)
