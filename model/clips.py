"""Reading lv2's clip data directories (written by ``lv2 data ...``; the format is in lv2_env/data/procedural.py).

Only the format is shared with the writer: an ``index.json`` whose ``format`` is ``"lv2-clips"`` and one
``.npz`` file per clip. A directory of another format, version or clip shape fails at once, saying what was
expected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

FORMAT = "lv2-clips"
VERSION = 1


def read_index(directory: str | Path, expect: dict[str, Any] | None = None) -> dict[str, Any]:
    """The data directory's index; ``expect`` lists header values (height, width, frames, ...) it must have."""
    directory = Path(directory)
    path = directory / "index.json"
    if not path.is_file():
        raise ValueError(f"{str(directory)!r} is not an lv2 data directory: expected {path.name} (run `lv2 data ...`)")
    index = json.loads(path.read_text())
    if index.get("format") != FORMAT or index.get("version") != VERSION:
        raise ValueError(
            f"{path}: expected format {FORMAT!r} version {VERSION}, got {index.get('format')!r} version {index.get('version')!r}"
        )
    wrong = {k: (v, index.get(k)) for k, v in (expect or {}).items() if index.get(k) != v}
    if wrong:
        raise ValueError(f"{path}: data of another shape: " + ", ".join(f"{k} expected {a!r}, got {b!r}" for k, (a, b) in wrong.items()))
    if not index.get("clips"):
        raise ValueError(f"{path}: the directory holds no clips")
    return index


class ClipDataset:
    """The clips of a data directory; ``dataset[i]`` is a dict of the requested fields (numpy arrays, caption)."""

    def __init__(self, directory: str | Path, fields: Sequence[str] = ("rgb",), expect: dict[str, Any] | None = None):
        self.directory = Path(directory)
        self.index = read_index(self.directory, expect)
        self.clips = self.index["clips"]
        self.fields = tuple(fields)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict[str, Any]:
        entry = self.clips[i]
        with np.load(self.directory / entry["file"]) as data:
            missing = [f for f in self.fields if f not in data.files]
            if missing:
                raise ValueError(f"{entry['file']}: missing fields {missing}; it has {sorted(data.files)}")
            item = {f: data[f] for f in self.fields}
        item["caption"] = entry["caption"]
        return item

    @property
    def captions(self) -> list[str]:
        return [c["caption"] for c in self.clips]
