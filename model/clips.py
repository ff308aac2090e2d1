"""lv2's clip data directories: the one definition of their format, its writers' helpers and its reader.

``lv2 data procedural`` (lv2_env/data/procedural.py) and ``lv2 data videos`` (lv2_env/data/user_videos.py) write
them; training and evaluation read them through :class:`ClipDataset`. A data directory holds

    index.json            {"format": "lv2-clips", "version": 1, "split", "height", "width", "frames", "fps",
                           "history_frames", "clips_per_sequence", ..., "clips": [{"file", "sequence", "clip",
                           "caption", ...}, ...]}
    clips/SSSSSS_CC.npz   one clip: sequence SSSSSS, clip CC (:func:`clip_file`)

The header fields before ``clips`` say what shape of data the directory holds; a writer adds its own (the
procedural worlds: ``fov_deg``, and ``scene_seed``, ``style`` per clip; user videos: ``"poses_known": false``,
and ``video``, ``shot``, ``start_time``, ``history`` per clip). Every clip file (``numpy.savez_compressed``) has

    rgb        uint8   [F, H, W, 3]   the clip's frames
    history    uint8   [Hn, H, W, 3]  the Hn frames that precede the clip in its sequence
    depth      float16 [F, H, W]      depth (camera-frame z, metres when measured; sky = the scene's far distance)
    dense      uint8   [F, H, W]      dense control: depth normalised with the SEQUENCE's global p5/p95, near
                                      bright (one grey channel; the video is this channel three times)
    sparse     uint8   [F, H, W, 3]   sparse control: point tracks recomputed for this clip
    poses      float32 [F, 4, 4]      camera-to-world poses (OpenCV camera, world z up); NaN when unknown
    intrinsics float32 [3, 3]         NaN when unknown
    depth_range float32 [2]           the sequence's (p5, p95), sky left out
    caption    str                    the clip's caption

The control videos are :data:`CONTROL_MODALITIES`, one field each: :func:`control_fields` turns uint8
``[F, H, W, 3]`` videos into the fields (a grey video keeps one channel), :func:`control_videos` turns a clip's
fields back into the videos the model takes. Writers build a clip's fields with :func:`clip_record`, write every
file atomically (a temporary name, then a rename: :func:`save_clip_atomic`, :func:`write_index`), so a killed
build never leaves half a file, and refuse a directory that holds data of another shape
(:func:`check_index_header`). A directory of another format, version or clip shape fails to read at once, saying
what was expected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

FORMAT = "lv2-clips"
VERSION = 1
INDEX_NAME = "index.json"
CLIPS_FOLDER = "clips"
# The control videos a clip stores, one field each, in the order of the model presets' ``control_modalities``.
CONTROL_MODALITIES = ("dense", "sparse")
# Control videos whose three channels are equal, stored as one grey channel (a third of the bytes).
GREY_CONTROL_MODALITIES = ("dense",)


# ---------------------------------------------------------------------------------------------------- writing


def clip_file(sequence: int, clip: int) -> str:
    """The clip file's path relative to the data directory: ``clips/SSSSSS_CC.npz``."""
    return f"{CLIPS_FOLDER}/{sequence:06d}_{clip:02d}.npz"


def clip_record(
    *,
    rgb: np.ndarray,
    history: np.ndarray,
    depth: np.ndarray,
    controls: Mapping[str, np.ndarray],
    poses: np.ndarray,
    intrinsics: np.ndarray,
    depth_range: Sequence[float],
    caption: str,
) -> dict[str, Any]:
    """The fields of one clip file in the format's dtypes (see the module docstring), from the clip's arrays and its
    control videos (modality -> uint8 ``[F, H, W, 3]``, stored by :func:`control_fields`)."""
    rgb, history = np.asarray(rgb), np.asarray(history)
    for name, frames in (("rgb", rgb), ("history", history)):
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"{name} must be uint8 [N, H, W, 3], got {frames.dtype} {frames.shape}")
    float16_max = float(np.finfo(np.float16).max)  # an estimate beyond it would be stored as inf
    return {
        "rgb": rgb,
        "history": history,
        "depth": np.clip(np.asarray(depth), -float16_max, float16_max).astype(np.float16),
        **control_fields(controls),
        "poses": np.asarray(poses, dtype=np.float32),
        "intrinsics": np.asarray(intrinsics, dtype=np.float32),
        "depth_range": np.asarray(depth_range, dtype=np.float32),
        "caption": str(caption),
    }


def check_index_header(directory: str | Path, header: Mapping[str, Any]) -> None:
    """Refuse to write into ``directory`` when its existing ``index.json`` holds data of another kind.

    ``header`` is the writer's header fields (``split``, ``height``, ...; :data:`FORMAT` and :data:`VERSION` are
    added here); each must equal the existing index's. A directory without an index passes.
    """
    path = Path(directory) / INDEX_NAME
    if not path.exists():
        return
    existing = json.loads(path.read_text())
    requested = {"format": FORMAT, "version": VERSION, **header}
    mismatched = {k: (existing.get(k), v) for k, v in requested.items() if existing.get(k) != v}
    if mismatched:
        raise ValueError(f"{directory} holds data of another kind: {mismatched} (existing, requested)")


def write_index(directory: str | Path, header: Mapping[str, Any], clips: Sequence[Mapping[str, Any]]) -> Path:
    """Write ``index.json`` atomically: :data:`FORMAT`, :data:`VERSION`, the ``header`` fields, then ``clips``."""
    path = Path(directory) / INDEX_NAME
    write_text_atomic(path, json.dumps({"format": FORMAT, "version": VERSION, **header, "clips": list(clips)}, indent=1))
    return path


def save_clip_atomic(path: Path, arrays: Mapping[str, Any]) -> None:
    """Write a clip file under a temporary name, then rename it: a killed build never leaves half a clip."""
    temporary = path.with_suffix(".tmp.npz")
    np.savez_compressed(temporary, **arrays)
    temporary.replace(path)


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file under a temporary name, then rename it (as :func:`save_clip_atomic`)."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(text)
    temporary.replace(path)


# ---------------------------------------------------------------------------------------------------- reading


def read_index(directory: str | Path, expect: dict[str, Any] | None = None) -> dict[str, Any]:
    """The data directory's index; ``expect`` lists header values (height, width, frames, ...) it must have."""
    directory = Path(directory)
    path = directory / INDEX_NAME
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
    """The clips of a data directory; ``dataset[i]`` is a dict of the requested fields (numpy arrays), the caption
    and the style of a procedural clip (``None`` for others)."""

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
        item["style"] = entry.get("style")
        return item

    @property
    def captions(self) -> list[str]:
        return [c["caption"] for c in self.clips]


# ---------------------------------------------------------------------------------------------------- control videos


def control_fields(videos: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The clip-file fields of a clip's control videos (modality -> uint8 ``[F, H, W, 3]``, every one of
    :data:`CONTROL_MODALITIES`): the :data:`GREY_CONTROL_MODALITIES` keep their first channel."""
    _check_modalities(videos, "control videos")
    fields = {}
    for name in CONTROL_MODALITIES:
        video = np.asarray(videos[name])
        if video.dtype != np.uint8 or video.ndim != 4 or video.shape[-1] != 3:
            raise ValueError(f"control video {name!r} must be uint8 [F, H, W, 3], got {video.dtype} {video.shape}")
        fields[name] = video[..., 0] if name in GREY_CONTROL_MODALITIES else video
    return fields


def control_video(stored: np.ndarray) -> np.ndarray:
    """A stored control field as the model takes it, uint8 ``[F, H, W, 3]``: a grey ``[F, H, W]`` field (``dense``)
    is repeated to three channels, a ``[F, H, W, 3]`` one is returned as it is."""
    stored = np.asarray(stored)
    if stored.ndim == 4 and stored.shape[-1] == 3:
        return stored
    if stored.ndim != 3:
        raise ValueError(f"a control video must be [F, H, W] (one grey channel) or [F, H, W, 3], got {stored.shape}")
    return np.repeat(stored[..., None], 3, axis=-1)


def control_videos(clip: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Modality name -> uint8 ``[F, H, W, 3]`` control video, for every :data:`CONTROL_MODALITIES` of a clip's fields
    (a :class:`ClipDataset` item or a writer's record)."""
    _check_modalities(clip, "a clip's control fields")
    return {m: control_video(clip[m]) for m in CONTROL_MODALITIES}


def _check_modalities(given: Mapping[str, Any], what: str) -> None:
    missing = [m for m in CONTROL_MODALITIES if m not in given]
    if missing:
        raise ValueError(f"expected {what} {list(CONTROL_MODALITIES)}; missing {missing}, got {sorted(given)}")
