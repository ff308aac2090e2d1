"""The model's own frames beside the scene's exact depth: what the depth network of a world from a picture reads.

A world started from a picture (``control_source="cache"``) estimates depth on the frames it generated and steers
its next clip with it (:mod:`lv2_env.conditioning.point_cache`). A depth network trained on rendered frames only meets
the model's frames (blurrier, blockier, their colours shifted) for the first time there, and its errors steer the
model, whose frames it reads next. :func:`build_generated_frames` walks LV2/World-v0 through procedural scenes of a
split, as a user would (random one-second steps, mostly forward), and writes every generated clip with the scene's
exact depth along the same camera path: ``lv2 train depth --generated-data DIR`` mixes them into its batches.

The directory is in the clip format of :mod:`model.clips` with two fields per clip, ``rgb`` (the generated frames,
uint8 ``[F, H, W, 3]``) and ``depth`` (float16 ``[F, H, W]`` metres, the truth along the path). Where the model drew
something else than the scene holds, the target is still the scene's. Measured (docs/results.md, validation): a
depth network trained on half cache-world frames got worse on rendered and generated frames alike, so the shipped
one is not, and a cache world takes no depth from its generated frames by default.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from lv2_env.data.splits import split_scenes
from lv2_env.evaluation.rollouts import WALK, run_path
from model.clips import CLIPS_FOLDER, check_index_header, clip_file, save_clip_atomic, write_index

SOURCE = "generated"


def generated_clips(video: dict[str, np.ndarray], frames: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """A walk's generated frames and true depth (:func:`~lv2_env.evaluation.rollouts.run_path`) cut into its
    clips of ``frames`` frames that share one frame each: ``[(rgb, depth), ...]``."""
    generated, depth = video["generated"], video["depth"]
    step = frames - 1
    if (len(generated) - 1) % step:
        raise ValueError(f"a walk of {len(generated)} frames is not whole clips of {frames} frames sharing one")
    return [(generated[s : s + frames], depth[s : s + frames].astype(np.float16))
            for s in range(0, len(generated) - 1, step)]


def build_generated_frames(directory: str | Path, env, split: str = "train", sequences: int = 60,
                           steps: int = 8, seed: int = 0, progress: bool = True) -> Path:
    """Walk ``env`` (a LV2/World-v0 with scenes) ``steps`` one-second steps through each of ``sequences`` scenes of
    ``split`` and write every generated clip with its true depth into ``directory`` (resumable: sequences already
    written are kept). The actions are drawn from the evaluation walk's (mostly forward, some turns, strafes and
    looks) with a generator seeded by ``seed`` and the sequence."""
    if sequences < 1 or steps < 1:
        raise ValueError(f"sequences and steps must be >= 1, got {sequences} and {steps}")
    directory = Path(directory)
    unwrapped = env.unwrapped
    frames = unwrapped.clip.frames
    height, width = unwrapped.world.intrinsics.height, unwrapped.world.intrinsics.width
    header = {"split": split, "source": SOURCE, "height": height, "width": width, "frames": frames,
              "fps": unwrapped.clip.fps, "control_source": unwrapped.control_source, "steps_per_sequence": steps,
              "seed": seed}
    check_index_header(directory, header)
    (directory / CLIPS_FOLDER).mkdir(parents=True, exist_ok=True)
    entries = []
    scenes = split_scenes(split, sequences)
    for sequence, (scene, style) in enumerate(tqdm(scenes, desc=f"generated frames ({split})", unit="seq",
                                                    disable=not progress)):
        names = [clip_file(sequence, k) for k in range(steps)]
        caption_path = directory / CLIPS_FOLDER / f"{sequence:06d}.txt"  # written last: the sequence is complete
        if not caption_path.exists():
            rng = np.random.default_rng([seed, sequence])
            actions = [int(a) for a in rng.choice(WALK, size=steps)]
            video = run_path(env, actions, steps, scene, seed=seed + sequence, style=style)
            for name, (rgb, depth) in zip(names, generated_clips(video, frames)):
                save_clip_atomic(directory / name, {"rgb": rgb, "depth": depth})
            caption_path.write_text(video["caption"])
        caption = caption_path.read_text()
        entries += [{"file": name, "sequence": sequence, "clip": k, "scene_seed": scene, "style": style,
                     "caption": caption} for k, name in enumerate(names)]
    write_index(directory, header, entries)
    return directory
