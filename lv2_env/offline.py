"""Offline generation, LongVie 2's benchmark setting: control videos given in full, generated clip by clip.

The control videos (dense depth and sparse tracks, uint8, any length) are cut into clips of ``F`` frames that
overlap by one frame, each clip gets its own prompt (a prompt file has one line per clip; the last line repeats
when there are more clips than lines), and the generator chains the clips with its history context.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lv2_env.media.video import Mp4Writer, read_video


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
    lines = [line.strip() for line in Path(prompt_file).read_text().splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"prompt file {str(prompt_file)!r} has no prompts")
    return [lines[min(i, len(lines) - 1)] for i in range(clips)]


def load_first_frame(path: str | Path, height: int, width: int) -> np.ndarray:
    """The start image as uint8 ``[H, W, 3]``; an image of another size is resized, with a warning."""
    import imageio.v3 as iio
    from PIL import Image

    image = np.asarray(iio.imread(path))
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    image = image[..., :3].astype(np.uint8)
    if image.shape[:2] != (height, width):
        warnings.warn(f"first frame {path} is {image.shape[1]}x{image.shape[0]}; resized to the model's {width}x{height}")
        image = np.asarray(Image.fromarray(image).resize((width, height), Image.BICUBIC))
    return image


def load_control_video(path: str | Path, name: str, height: int, width: int) -> np.ndarray:
    video = read_video(path)
    if video.shape[1:3] != (height, width):
        raise ValueError(f"{name} video {path} is {video.shape[2]}x{video.shape[1]}, but the model makes {width}x{height}")
    return video


def generate_video(
    generator,
    first_frame: np.ndarray,
    controls: dict[str, np.ndarray],
    prompts: list[str],
    out: str | Path,
    fps: int = 16,
    progress: bool = True,
) -> int:
    """Generate every clip the control videos cover and write them as one video; returns the frames written."""
    lengths = {name: len(v) for name, v in controls.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"control videos must have the same length, got {lengths}")
    total = next(iter(lengths.values()))
    starts = clip_starts(total, generator.frames)
    if len(prompts) != len(starts):
        raise ValueError(f"expected one prompt per clip ({len(starts)}), got {len(prompts)}")
    generator.reset(first_frame)
    written = 0
    with Mp4Writer(out, fps=fps) as writer:
        for i, start in enumerate(tqdm(starts, desc="generating", unit="clip", disable=not progress)):
            clip_controls = {name: v[start : start + generator.frames] for name, v in controls.items()}
            frames = generator.generate_clip(clip_controls, prompts[i])
            writer.write(frames if i == 0 else frames[1:])
            written += len(frames) if i == 0 else len(frames) - 1
    return written
