"""Training data from the procedural worlds, written to disk in the format `model.training` reads.

The world model never imports this package: the data reaches it as files, in the clip format of
:mod:`model.clips` (``index.json`` plus one ``clips/SSSSSS_CC.npz`` per clip; the fields of a clip file are
listed there). The procedural header adds ``clips_per_sequence`` and ``fov_deg``, and every clip entry
``scene_seed`` and ``style``; the stored ``depth`` is measured metric depth, and ``poses`` and ``intrinsics``
are the exact camera.

A *sequence* is one camera path through one scene: ``history_frames`` frames of run-up, then
``clips_per_sequence`` clips of ``F`` frames that share one frame each, as the environments produce them.
Training and evaluation scenes come from disjoint seed ranges fixed here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lv2_env.data.splits import scene_seed
from lv2_env.signals.camera import FOV_DEG, Intrinsics, apply_motion, poses_from_states
from lv2_env.signals.collision import resolve_collisions
from lv2_env.signals.control import DepthRange, compute_control_signals
from lv2_env.worlds import Renderer, generate_scene
from model.clips import CLIPS_FOLDER, check_index_header, clip_file, clip_record, save_clip_atomic, write_index

@dataclass(frozen=True)
class SequenceSpec:
    """Shape of the sequences a data directory holds."""

    height: int = 128
    width: int = 128
    frames: int = 17
    fps: int = 16
    clips_per_sequence: int = 4
    history_frames: int = 16
    fov_deg: float = FOV_DEG

    @property
    def total_frames(self) -> int:
        return self.history_frames + self.clips_per_sequence * (self.frames - 1) + 1


def random_camera_states(rng: np.random.Generator, scene, frames: int, fps: int) -> np.ndarray:
    """A smooth random walk of ``frames`` camera states from the spawn point, obeying the collision rule.

    Speed, turn rate, pitch and height drift follow slow random processes, so sequences mix walking, turning,
    looking up and down, and a little rising and sinking, like a player's path.
    """
    state = np.array([0.0, 0.0, float(rng.uniform(1.0, 2.5)), float(rng.uniform(-np.pi, np.pi)), 0.0, 0.0])
    states = [state]
    speed, turn, climb = rng.uniform(0.0, 2.0), 0.0, 0.0
    dt = 1.0 / fps
    for _ in range(frames - 1):
        speed = float(np.clip(speed + rng.normal(0.0, 0.15), -0.5, 2.5))
        turn = float(np.clip(0.97 * turn + rng.normal(0.0, 0.06), -0.9, 0.9))
        climb = float(np.clip(0.95 * climb + rng.normal(0.0, 0.03) - 0.02 * (state[2] - 1.6), -0.6, 0.6))
        pitch_rate = float(-0.6 * state[4] + rng.normal(0.0, 0.15))
        motion = np.array([speed * dt, 0.0, climb * dt, turn * dt, pitch_rate * dt, 0.0])
        proposed = apply_motion(state, motion)
        resolved, report = resolve_collisions(scene, np.stack([state, proposed]))
        if report.collided:
            speed, turn = -0.3 * speed, turn + float(rng.choice([-0.6, 0.6]))  # back off and turn away
        state = resolved[1]
        states.append(state)
    return np.stack(states)


def build_sequence(split: str, sequence: int, spec: SequenceSpec) -> list[dict]:
    """Render one sequence and cut it into clip records (dicts of the clip-file fields of :mod:`model.clips`)."""
    seed = scene_seed(split, sequence)
    rng = np.random.default_rng(seed)
    scene = generate_scene(seed)
    intrinsics = Intrinsics.from_fov(spec.fov_deg, spec.width, spec.height)
    states = random_camera_states(rng, scene, spec.total_frames, spec.fps)
    poses = poses_from_states(states)
    out = Renderer(scene, intrinsics).render(poses)
    # One global range for the whole sequence (LongVie 2), the sky left out.
    depth_range = DepthRange.fit_rendered(out.depth, sky_depth=scene.far)
    records = []
    for k in range(spec.clips_per_sequence):
        start = spec.history_frames + k * (spec.frames - 1)
        window = slice(start, start + spec.frames)
        control = compute_control_signals(out.depth[window], poses[window], intrinsics, depth_range)
        record = clip_record(
            rgb=out.rgb[window],
            history=out.rgb[start - spec.history_frames : start],
            depth=out.depth[window],
            controls=control.videos(),
            poses=poses[window],
            intrinsics=intrinsics.matrix,
            depth_range=(depth_range.near, depth_range.far),
            caption=scene.caption,
        )
        meta = {"sequence": sequence, "clip": k, "scene_seed": seed, "style": scene.style.name, "caption": scene.caption}
        records.append({**record, "_meta": meta})
    return records


def build_procedural(
    directory: str | Path, split: str, sequences: int, spec: SequenceSpec | None = None, progress: bool = True
) -> Path:
    """Write ``sequences`` sequences of the split into ``directory`` (resumable: existing clip files are kept)."""
    spec = spec or SequenceSpec()
    directory = Path(directory)
    header = {"split": split, "height": spec.height, "width": spec.width, "frames": spec.frames, "fps": spec.fps,
              "history_frames": spec.history_frames, "clips_per_sequence": spec.clips_per_sequence,
              "fov_deg": spec.fov_deg}
    check_index_header(directory, header)
    (directory / CLIPS_FOLDER).mkdir(parents=True, exist_ok=True)
    entries = []
    for sequence in tqdm(range(sequences), desc=f"procedural {split}", unit="seq", disable=not progress):
        names = [clip_file(sequence, k) for k in range(spec.clips_per_sequence)]
        metas_path = directory / CLIPS_FOLDER / f"{sequence:06d}.json"  # the sequence's entries, for resuming
        if all((directory / n).exists() for n in names):
            metas = json.loads(metas_path.read_text())
        else:
            records = build_sequence(split, sequence, spec)
            metas = []
            for name, record in zip(names, records):
                meta = record.pop("_meta")
                save_clip_atomic(directory / name, record)
                metas.append({"file": name, **meta})
            metas_path.write_text(json.dumps(metas))
        entries.extend(metas)
    write_index(directory, header, entries)
    return directory
