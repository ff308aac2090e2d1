"""What ``lv2 generate`` takes, made from a procedural scene: a start image, both control videos, the camera
path, its metric depth and a prompt per clip (``lv2 data controls``).

LongVie 2's offline setting gives the model its control videos in full. This module makes them for a camera
path through one procedural scene, so offline generation runs from nothing::

    lv2 data controls --out ctl --seconds 5
    lv2 generate --checkpoint model/shipped --first-frame ctl/first.png --depth ctl/dense.mp4 \\
        --tracks ctl/sparse.mp4 --poses ctl/poses.npy --metric-depth ctl/depth.npy --prompts ctl/prompts.txt

The path is :func:`lv2_env.data.procedural.random_camera_states` (a player-like walk that obeys the collision
rule), rendered exactly by the ray caster. The controls are those of the training data
(:func:`lv2_env.data.procedural.build_sequence`): the dense video is depth normalised with one global range
fitted over the whole path (the offline setting sees it all), and the tracks are recomputed for every clip
(:func:`lv2_env.signals.control.compute_control_signals`). Clips share one frame; at a shared frame the
videos hold the frame of the clip that *starts* there, since a clip's tracks start on its first frame.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from lv2_env.data.procedural import SequenceSpec, random_camera_states
from lv2_env.media.video import Mp4Writer
from lv2_env.signals.camera import Intrinsics, poses_from_states
from lv2_env.signals.control import DepthRange, compute_control_signals
from lv2_env.worlds import Renderer, generate_scene

# The files write_controls writes, and what each holds.
CONTROL_FILES = {
    "first.png": "the start image: the exact render of the path's first frame",
    "dense.mp4": "--depth: depth normalised with the path's global range, near bright",
    "sparse.mp4": "--tracks: point tracks, recomputed for every clip",
    "poses.npy": "--poses: float64 [N, 4, 4] camera-to-world, OpenCV camera, world z up",
    "depth.npy": "--metric-depth: float32 [N, H, W] camera-frame z in metres (sky at the scene's far depth)",
    "intrinsics.npy": "--intrinsics: float64 [3, 3] pinhole matrix K of the frames",
    "prompts.txt": "--prompts: one prompt per clip (the scene's caption)",
    "truth.mp4": "the exact render of the whole path, to compare a generated video with",
}


@dataclass(frozen=True)
class ProceduralControls:
    """Everything ``lv2 generate`` takes for one camera path through a procedural scene (``N`` frames: ``clips``
    clips of ``F`` frames sharing one frame each)."""

    frames: np.ndarray  # uint8 [N, H, W, 3]: the exact render (frame 0 is the start image)
    dense: np.ndarray  # uint8 [N, H, W, 3]
    sparse: np.ndarray  # uint8 [N, H, W, 3]
    poses: np.ndarray  # float64 [N, 4, 4]
    depth: np.ndarray  # float32 [N, H, W] metres
    intrinsics: Intrinsics
    caption: str
    clips: int
    fps: int
    scene_seed: int
    style: str


def render_controls(
    scene_seed: int,
    clips: int,
    spec: SequenceSpec | None = None,
    style: str | None = None,
    path_seed: int = 0,
) -> ProceduralControls:
    """Render a random camera path of ``clips`` clips through the scene of ``scene_seed`` (its ``style``, or the
    scene's own if None) and compute both control videos; ``spec`` gives the frame size, clip length, frame rate
    and field of view (its ``clips_per_sequence`` and ``history_frames`` are not used); ``path_seed`` the walk."""
    if not isinstance(clips, (int, np.integer)) or clips < 1:
        raise ValueError(f"clips must be a positive integer, got {clips!r}")
    spec = replace(spec or SequenceSpec(), clips_per_sequence=int(clips), history_frames=0)
    scene = generate_scene(int(scene_seed), style=style)
    intrinsics = Intrinsics.from_fov(spec.fov_deg, spec.width, spec.height)
    states = random_camera_states(np.random.default_rng(path_seed), scene, spec.total_frames, spec.fps)
    poses = poses_from_states(states)
    out = Renderer(scene, intrinsics).render(poses)
    # One global range for the whole path, the sky left out (as the training data, model/clips.py).
    depth_range = DepthRange.fit_rendered(out.depth, sky_depth=scene.far)
    dense, sparse = [], []
    step = spec.frames - 1
    for k in range(clips):
        window = slice(k * step, k * step + spec.frames)
        videos = compute_control_signals(out.depth[window], poses[window], intrinsics, depth_range).videos()
        keep = spec.frames if k == clips - 1 else step  # the shared last frame comes from the next clip
        dense.append(videos["dense"][:keep])
        sparse.append(videos["sparse"][:keep])
    return ProceduralControls(
        frames=out.rgb, dense=np.concatenate(dense), sparse=np.concatenate(sparse), poses=poses,
        depth=out.depth.astype(np.float32), intrinsics=intrinsics, caption=scene.caption, clips=int(clips),
        fps=spec.fps, scene_seed=int(scene_seed), style=scene.style.name,
    )


def write_controls(directory: str | Path, controls: ProceduralControls) -> list[Path]:
    """Write the files of :data:`CONTROL_FILES` into ``directory`` (created if needed); returns their paths."""
    from PIL import Image

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {name: directory / name for name in CONTROL_FILES}
    Image.fromarray(controls.frames[0]).save(paths["first.png"])
    for name, video in (("dense.mp4", controls.dense), ("sparse.mp4", controls.sparse), ("truth.mp4", controls.frames)):
        with Mp4Writer(paths[name], fps=controls.fps) as writer:
            writer.write(video)
    np.save(paths["poses.npy"], controls.poses)
    np.save(paths["depth.npy"], controls.depth)
    np.save(paths["intrinsics.npy"], controls.intrinsics.matrix)
    paths["prompts.txt"].write_text("".join(f"{controls.caption}\n" for _ in range(controls.clips)))
    return list(paths.values())
