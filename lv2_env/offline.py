"""Offline generation, LongVie 2's benchmark setting: control videos given in full, generated clip by clip.

The control videos (dense depth and sparse tracks, uint8, any length) are cut into clips of ``F`` frames that
overlap by one frame, each clip gets its own prompt (a prompt file has one line per clip; the last line repeats
when there are more clips than lines), and the generator chains the clips with its history context.

A model conditioned on its last frame *rendered along the camera path* (``condition="rendered"``, the shipped
tiny model) also needs what the control videos do not carry: the camera path and its metric depth
(:class:`CameraGeometry`). Each clip is then conditioned as ``LV2/World-v0`` conditions a step: by default on
the world memory (:mod:`lv2_env.conditioning.world_memory`) of the first frame and of every clip's last frame
(the :class:`~lv2_env.conditioning.clip_conditioner.ClipConditioner` World-v0 runs),
rendered into every camera of the clip with the given depth, and composited over the generated frames; or,
with ``conditioning="last_frame"``, on the previous clip's last frame alone, lifted with its depth
(:func:`lv2_env.conditioning.warp.render_along_path`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from tqdm import tqdm

from lv2_env.conditioning.clip_conditioner import ClipConditioner, ClipConditioning
from lv2_env.media.video import Mp4Writer, read_video
from lv2_env.signals.camera import FOV_DEG, Intrinsics

NPY_MAGIC = b"\x93NUMPY"  # how every file numpy.save writes begins


def clip_starts(total_frames: int, clip_frames: int) -> list[int]:
    """First frame index of every clip of ``clip_frames`` frames with a one-frame overlap that fits in the video."""
    if total_frames < clip_frames:
        raise ValueError(f"the control videos have {total_frames} frames; one clip needs {clip_frames}")
    step = clip_frames - 1
    return list(range(0, total_frames - clip_frames + 1, step))


def read_prompts(prompt: str | None, prompt_file: str | Path | None, clips: int) -> list[str]:
    """One prompt per clip, from ``--prompt`` or a file with one prompt per line."""
    if (prompt is None) == (prompt_file is None):
        raise ValueError("give exactly one of a prompt or a prompt file")
    if prompt is not None:
        return [prompt] * clips
    try:
        text = Path(prompt_file).read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"prompt file {str(prompt_file)!r} cannot be read as text ({err})") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"prompt file {str(prompt_file)!r} has no prompts")
    return [lines[min(i, len(lines) - 1)] for i in range(clips)]


def load_control_video(path: str | Path, name: str, height: int, width: int) -> np.ndarray:
    """A control video as uint8 ``[N, H, W, 3]``; one that cannot be decoded, or of another size than the model's,
    raises ``ValueError`` naming it."""
    try:
        video = read_video(path)
    except (OSError, av.error.FFmpegError) as err:  # FFmpeg found no video stream it can decode in the file
        raise ValueError(f"{name} video {str(path)!r} cannot be decoded as a video ({err})") from None
    if video.ndim != 4 or len(video) == 0:
        raise ValueError(f"{name} video {str(path)!r} has no frames")
    if video.shape[1:3] != (height, width):
        raise ValueError(f"{name} video {path} is {video.shape[2]}x{video.shape[1]}, but the model makes {width}x{height}")
    return video


def load_array(path: str | os.PathLike[str], name: str) -> np.ndarray:
    """A ``.npy`` array (no pickles); a file that is not one raises ``ValueError`` naming ``name`` and the path."""
    where = f"{name} {str(path)!r}"
    try:
        with open(path, "rb") as file:
            magic = file.read(len(NPY_MAGIC))
    except OSError as err:
        raise ValueError(f"{where} cannot be read ({err.strerror or err})") from None
    if magic[:2] == b"PK":  # a zip: numpy.savez's archive of several arrays
        raise ValueError(f"{where} is an .npz archive; expected one array saved with numpy.save (.npy)")
    if magic != NPY_MAGIC:  # np.load would try it as a pickle and say so, which misleads
        raise ValueError(f"{where} is not a .npy file (it does not start with NumPy's header)")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:  # a truncated file, or an array of Python objects
        raise ValueError(f"{where} cannot be read as a .npy array ({err})") from None
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{where} holds {array.dtype} values; expected numbers")
    return array


@dataclass(frozen=True)
class CameraGeometry:
    """The camera path of a video and the metric depth along it: what a ``condition="rendered"`` model needs
    besides the control videos.

    Attributes:
        poses: float64 ``[N, 4, 4]`` camera-to-world, OpenCV camera (x right, y down, z forward), world z up
            (:mod:`lv2_env.signals.camera`), one per frame of the control videos.
        depth: float32 ``[N, H, W]`` camera-frame z in metres, finite and positive (sky: a far depth, e.g. 150 m
            as the renderer reports it, is taken as a direction at infinity).
        intrinsics: the pinhole camera of the ``H x W`` frames.
    """

    poses: np.ndarray
    depth: np.ndarray
    intrinsics: Intrinsics

    def __post_init__(self) -> None:
        poses, depth = self.poses, self.depth
        if poses.ndim != 3 or poses.shape[1:] != (4, 4):
            raise ValueError(f"poses must be camera-to-world matrices [N, 4, 4], got shape {poses.shape}")
        if not np.all(np.isfinite(poses)) or not np.allclose(poses[:, 3], [0.0, 0.0, 0.0, 1.0], atol=1e-6):
            raise ValueError("poses must be finite rigid transforms whose last row is [0, 0, 0, 1]")
        if depth.ndim != 3:
            raise ValueError(f"metric depth must be [N, H, W] metres, got shape {depth.shape}")
        if len(depth) != len(poses):
            raise ValueError(f"metric depth has {len(depth)} frames but poses has {len(poses)}; expected one each")
        if depth.shape[1:] != (self.intrinsics.height, self.intrinsics.width):
            raise ValueError(f"metric depth is {depth.shape[2]}x{depth.shape[1]}, but the model makes "
                             f"{self.intrinsics.width}x{self.intrinsics.height}")
        if not np.all(np.isfinite(depth) & (depth > 0)):
            raise ValueError("metric depth must be finite and positive everywhere (camera-frame z in metres)")

    def __len__(self) -> int:
        return len(self.poses)


def intrinsics_from_matrix(matrix: np.ndarray, height: int, width: int) -> Intrinsics:
    """The :class:`Intrinsics` of a ``[3, 3]`` pinhole matrix ``K`` (pixels) for ``height x width`` frames."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (3, 3) or not np.all(np.isfinite(matrix)):
        raise ValueError(f"intrinsics must be a finite [3, 3] matrix K, got shape {matrix.shape}")
    fx, fy, cx, cy = matrix[0, 0], matrix[1, 1], matrix[0, 2], matrix[1, 2]
    if not (fx > 0 and fy > 0) or matrix[0, 1] != 0 or not np.allclose(matrix[2], [0.0, 0.0, 1.0]):
        raise ValueError(f"intrinsics must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0, got {matrix.tolist()}")
    return Intrinsics(float(fx), float(fy), float(cx), float(cy), int(width), int(height))


def load_camera_geometry(
    poses: str | os.PathLike[str],
    depth: str | os.PathLike[str],
    height: int,
    width: int,
    fov_deg: float = FOV_DEG,
    intrinsics: str | os.PathLike[str] | None = None,
) -> CameraGeometry:
    """:class:`CameraGeometry` from ``.npy`` files: ``poses`` ``[N, 4, 4]``, metric ``depth`` ``[N, H, W]``, and
    the camera as a horizontal field of view ``fov_deg`` or an ``intrinsics`` file with ``K`` ``[3, 3]``."""
    if intrinsics is None:
        camera = Intrinsics.from_fov(fov_deg, width, height)
    else:
        matrix = load_array(intrinsics, "intrinsics")
        try:
            camera = intrinsics_from_matrix(matrix, height, width)
        except ValueError as err:
            raise ValueError(f"{err} (intrinsics {str(intrinsics)!r})") from None
    pose_array = load_array(poses, "poses").astype(np.float64)
    depth_array = load_array(depth, "metric depth").astype(np.float32)
    try:
        return CameraGeometry(pose_array, depth_array, camera)
    except ValueError as err:
        raise ValueError(f"{err} (poses {str(poses)!r}, metric depth {str(depth)!r})") from None


def generate_video(
    generator,
    first_frame: np.ndarray,
    controls: dict[str, np.ndarray],
    prompts: list[str],
    out: str | Path,
    fps: int = 16,
    progress: bool = True,
    geometry: CameraGeometry | None = None,
    conditioning: str | None = None,
    composite: bool | None = None,
    trained_conditioning: str | None = None,
) -> int:
    """Generate every clip the control videos cover and write them as one video; returns the frames written.

    ``geometry``: the camera path and metric depth of the control videos, required by a ``condition="rendered"``
    generator and unused by any other. ``conditioning``, ``composite``: as ``LV2/World-v0``'s (module docstring;
    :func:`~lv2_env.conditioning.clip_conditioner.memory_options`, with the model's ``trained_conditioning``).
    """
    lengths = {name: len(v) for name, v in controls.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"control videos must have the same length, got {lengths}")
    total = next(iter(lengths.values()))
    rendered_condition = generator.condition == "rendered"
    if rendered_condition and geometry is None:
        raise ValueError("this model is conditioned on its last frame rendered along the camera path: it needs the "
                         "camera poses and metric depth of the control videos (a CameraGeometry)")
    if rendered_condition and len(geometry) != total:
        raise ValueError(f"the camera path has {len(geometry)} frames but the control videos have {total}; "
                         "expected one pose and one depth map per control frame")
    conditioner = None
    if rendered_condition:
        conditioner = ClipConditioner(generator.condition, geometry.intrinsics, conditioning, composite,
                                      trained_conditioning)
        conditioner.start(first_frame, geometry.depth[0], geometry.poses[0])
    starts = clip_starts(total, generator.frames)
    if len(prompts) != len(starts):
        raise ValueError(f"expected one prompt per clip ({len(starts)}), got {len(prompts)}")
    generator.reset(first_frame)
    written = 0
    with Mp4Writer(out, fps=fps) as writer:
        for i, start in enumerate(tqdm(starts, desc="generating", unit="clip", disable=not progress)):
            clip_controls = {name: v[start : start + generator.frames] for name, v in controls.items()}
            window = slice(start, start + generator.frames)
            conditioned = (conditioner.condition(geometry.poses[window], geometry.depth[window])
                           if conditioner is not None else ClipConditioning())
            frames = generator.generate_clip(clip_controls, prompts[i], rendered=conditioned.rendered,
                                             known=conditioned.known)
            writer.write(frames if i == 0 else frames[1:])
            written += len(frames) if i == 0 else len(frames) - 1
            if conditioner is not None:
                end = start + generator.frames - 1
                conditioner.remember(frames[-1], geometry.depth[end], geometry.poses[end])
    return written
