"""Does each object keep its colour, and can it still be told from what is around it? Scored with the renderer's
object ids, which say what every true pixel shows: blur and colour drift that PSNR forgives show up here.

For every object a true frame shows over at least :data:`MIN_OBJECT_PIXELS` pixels, on the pixels the truth gives
it (its mask):

* **colour error**: the distance in RGB (0-255 per channel) between the frame's mean colour on the mask and the
  truth's;
* **visible**: the frame's mean colour on the mask is nearer the object's true colour than the true colour of the
  ring of pixels around the mask (:data:`RING_PIXELS` wide). Only objects that stand out from their ring in the
  truth (by :data:`MIN_CONTRAST`) are judged, so a grey box on grey ground is neither visible nor lost.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MIN_OBJECT_PIXELS = 16
RING_PIXELS = 3
MIN_CONTRAST = 20.0  # RGB distance between an object's true colour and its ring's, for its visibility to count


def _dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(pixels):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def objects_drawn_first(object_ids: np.ndarray, revealed: np.ndarray) -> set[int]:
    """The objects (ids of ``object_ids`` ``[N, H, W]``) the model drew first: in the first frame that shows an
    object over at least :data:`MIN_OBJECT_PIXELS` pixels, most of them are ``revealed`` (bool ``[N, H, W]``:
    pixels nothing the world showed before covers, so the model, not a memory, drew them)."""
    if object_ids.shape != revealed.shape:
        raise ValueError(f"expected object ids and revealed pixels of one shape, got {object_ids.shape} and "
                         f"{revealed.shape}")
    seen: set[int] = set()
    drawn: set[int] = set()
    for ids, new in zip(object_ids, revealed):
        for k in np.unique(ids[ids >= 1]):
            mask = ids == k
            if int(k) in seen or mask.sum() < MIN_OBJECT_PIXELS:
                continue
            seen.add(int(k))
            if new[mask].mean() > 0.5:
                drawn.add(int(k))
    return drawn


def object_scores(frames: np.ndarray, truth: np.ndarray, object_ids: np.ndarray,
                  only: set[int] | None = None) -> dict[str, Any]:
    """Colour error and visibility of the objects (ids >= 1 of ``object_ids`` ``[N, H, W]``; those in ``only``
    if given) in ``frames`` against ``truth`` (uint8 ``[N, H, W, 3]`` each): ``colour_error`` (mean over
    object-frames), ``visible`` (the share of the judged object-frames in which the object is visible), and how
    many were scored and judged."""
    if not (frames.shape == truth.shape and truth.shape[:3] == object_ids.shape):
        raise ValueError(f"expected frames and truth [N, H, W, 3] and object ids [N, H, W] of the same N, H, W; got "
                         f"{frames.shape}, {truth.shape} and {object_ids.shape}")
    errors: list[float] = []
    visible: list[bool] = []
    for g, t, ids in zip(frames.astype(np.float32), truth.astype(np.float32), object_ids):
        for k in np.unique(ids[ids >= 1]):
            mask = ids == k
            if mask.sum() < MIN_OBJECT_PIXELS or (only is not None and int(k) not in only):
                continue
            true_colour, colour = t[mask].mean(axis=0), g[mask].mean(axis=0)
            errors.append(float(np.linalg.norm(colour - true_colour)))
            ring = _dilate(mask, RING_PIXELS) & (ids != k)
            if not ring.any():
                continue
            around = t[ring].mean(axis=0)
            if np.linalg.norm(true_colour - around) >= MIN_CONTRAST:
                visible.append(bool(np.linalg.norm(colour - true_colour) < np.linalg.norm(colour - around)))
    return {"colour_error": float(np.mean(errors)) if errors else float("nan"),
            "visible": float(np.mean(visible)) if visible else float("nan"),
            "object_frames": len(errors), "judged": len(visible)}
