"""V in ``lv2 play``: a recording, a fragmented MP4 (every frame written is kept, even if the process dies) with a
side file of poses and prompts (:class:`agents.rollout.SideFile`), appended clip by clip to a JSON Lines journal
while recording and written as one JSON object when the recording stops, so a killed player loses no finished
clip."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from agents.rollout import SideFile
from lv2_env.media.video import Mp4Writer


@dataclass
class Recording:
    """An MP4 and its side file (:class:`agents.rollout.SideFile`): a kill loses no finished clip of either."""

    video: Path
    side_file: Path
    fps: int
    writer: Mp4Writer = field(init=False)
    side: SideFile = field(init=False)

    def __post_init__(self) -> None:
        self.video.parent.mkdir(parents=True, exist_ok=True)
        self.writer = Mp4Writer(self.video, fps=self.fps)
        self.side = SideFile(self.side_file, {"fps": self.fps})

    @property
    def frames(self) -> list[dict]:
        """The frame records so far."""
        return self.side.frames

    def add(self, frames: np.ndarray, states: np.ndarray, poses: np.ndarray, prompt: str,
            step: dict | None = None) -> None:
        """Append frames (the video first, then their records; ``step`` describes the step that made them)."""
        self.writer.write(frames)
        first = len(self.side.frames)
        records = [{"index": first + i, "time": (first + i) / self.fps, "state": np.round(state, 6).tolist(),
                    "pose": np.round(pose, 6).tolist(), "prompt": prompt}
                   for i, (state, pose) in enumerate(zip(states, poses))]
        self.side.add(records, step)

    def close(self, stopped_by: str | None = None) -> None:
        """Close the video and write the side file; ``stopped_by`` names an error that ended the recording."""
        self.writer.close()
        self.side.close({"finished": stopped_by is None, **({"stopped_by": stopped_by} if stopped_by else {})})
