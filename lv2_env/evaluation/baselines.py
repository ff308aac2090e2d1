"""Baselines of long rollouts that need no model: what the frame-0 truth alone gives along a camera path.

The repeat and warp baselines are :func:`lv2_env.evaluation.clips.repeat_first_frame` and
:func:`lv2_env.conditioning.warp.warp_first_frame`; this module adds the one a world memory makes possible:
:func:`memory_inpaint`, frame 0 remembered (:class:`~lv2_env.conditioning.world_memory.WorldMemory`) and rendered along
the path, its holes filled by OpenCV's inpainting. A model has to beat it to earn its cost.

OpenCV is not a core dependency (it comes with the ``test`` and ``videos`` extras, through PySceneDetect):
:func:`inpainting_available` says whether it can run here, and evaluations leave this baseline out, saying so,
where it cannot.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from lv2_env.conditioning.atmosphere import Atmosphere
from lv2_env.conditioning.warp import as_intrinsics
from lv2_env.conditioning.world_memory import WorldMemory
from lv2_env.signals.camera import Intrinsics

INPAINT_RADIUS = 3  # pixels of neighbourhood cv2.inpaint draws on


def inpainting_available() -> bool:
    """Whether OpenCV (``cv2``) is installed, which :func:`memory_inpaint` needs."""
    return importlib.util.find_spec("cv2") is not None


def memory_inpaint(first_frame: np.ndarray, first_depth: np.ndarray, poses: np.ndarray,
                   intrinsics: Intrinsics | np.ndarray, depth: np.ndarray | None = None,
                   atmosphere: Atmosphere | None = None) -> np.ndarray:
    """uint8 ``[F, H, W, 3]``: ``first_frame`` (``[H, W, 3]``, metric ``first_depth`` ``[H, W]``, seen from
    ``poses[0]``) remembered (surfaces and sky) and rendered into every camera of ``poses`` ``[F, 4, 4]`` (with the
    path's ``depth`` ``[F, H, W]`` when known, and the world's ``atmosphere``, as the model's conditioning is), the
    holes inpainted (Telea's method)."""
    try:
        import cv2
    except ImportError:
        raise ImportError("the memory+inpaint baseline needs OpenCV: pip install opencv-python-headless "
                          "(or lv2's test or videos extra)") from None
    intrinsics = as_intrinsics(intrinsics, first_frame.shape[1], first_frame.shape[0])
    memory = WorldMemory(intrinsics, atmosphere=atmosphere)
    memory.add(first_frame, first_depth, poses[0], protected=True)
    render = memory.render(poses, depth)
    frames = render.frames
    holes = (~render.covered).astype(np.uint8)
    for f in range(len(poses)):
        if holes[f].any():
            frames[f] = cv2.inpaint(frames[f], holes[f], INPAINT_RADIUS, cv2.INPAINT_TELEA)
    frames[0] = first_frame
    return frames
