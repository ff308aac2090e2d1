"""What a generated frame shows that the truth has not, and whether the goal keeps its named colour. Scored with
the renderer's object ids (``-1`` sky, ``0`` ground, ``k + 1`` object ``k``), so neither needs a model.

* **Phantom share** (:func:`phantom_mask`, :func:`phantom_share`): of the pixels where the truth shows open ground
  or sky (no object, and far enough from every object that one drawn up to :data:`EDGE_PIXELS` off, with the
  gradient window around its edge, does not count), the share where the frame has structure the truth has not there: local gradient energy well above the
  truth's (:data:`STRUCTURE_GAIN` times it plus :data:`STRUCTURE_FLOOR`), or a colour far from the truth's
  surroundings (more than :data:`COLOUR_FAR` RGB units from every colour the truth shows within
  :data:`SURROUNDINGS` pixels). The truth itself scores 0, and blur is not a phantom: a blurred frame has less
  structure than the truth and colours between the truth's neighbours. Debris, ghost objects and blocky fragments
  on open ground are.
* **Goal colour error** (:func:`goal_colour_error`): the distance in RGB (0-255 per channel) between the goal
  object's mean colour in the frame and in the truth, on the truth's mask of it, over the frames that show at least
  :data:`~lv2_env.evaluation.objects.MIN_OBJECT_PIXELS` of it. The goal is named by its colour, so this caps what an
  agent can learn in a generated world.
"""

from __future__ import annotations

import numpy as np

from lv2_env.evaluation.objects import MIN_OBJECT_PIXELS

EDGE_PIXELS = 3  # open pixels this near an object are left out (a drawn object may sit a few pixels off)
WINDOW = 5  # pixels: the local window of gradient energy
SURROUNDINGS = 4  # pixels: how far from a pixel the truth's colours count as its surroundings
STRUCTURE_GAIN = 2.0
STRUCTURE_FLOOR = 6.0  # grey levels per pixel: below this, no structure however the ratio goes
COLOUR_FAR = 60.0  # RGB units from the nearest colour of the truth's surroundings


def _box_mean(image: np.ndarray, size: int) -> np.ndarray:
    """Mean over a ``size`` x ``size`` window around each pixel of ``image`` ``[H, W, ...]`` (edges replicated)."""
    pad = size // 2
    padded = np.pad(image.astype(np.float64), [(pad, pad), (pad, pad)] + [(0, 0)] * (image.ndim - 2), mode="edge")
    summed = padded.cumsum(0).cumsum(1)
    summed = np.pad(summed, [(1, 0), (1, 0)] + [(0, 0)] * (image.ndim - 2))
    h, w = image.shape[:2]
    return (summed[size:size + h, size:size + w] - summed[:h, size:size + w] - summed[size:size + h, :w]
            + summed[:h, :w]) / (size * size)


def _gradient_energy(frame: np.ndarray) -> np.ndarray:
    """Local mean of the grey image's gradient magnitude, ``[H, W]`` (grey levels per pixel)."""
    grey = frame.astype(np.float64).mean(axis=-1)
    gy, gx = np.gradient(grey)
    return _box_mean(np.hypot(gx, gy), WINDOW)


def _distance_to_surroundings(frame: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``[H, W]``: each pixel's RGB distance to the nearest colour ``truth`` shows within :data:`SURROUNDINGS`
    pixels of it (0 where the frame is the truth)."""
    r = SURROUNDINGS
    h, w = frame.shape[:2]
    padded = np.pad(truth.astype(np.float32), [(r, r), (r, r), (0, 0)], mode="edge")
    pixels = frame.astype(np.float32)
    nearest = np.full((h, w), np.inf, np.float32)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            d = np.sum((pixels - padded[dy:dy + h, dx:dx + w]) ** 2, axis=-1)
            np.minimum(nearest, d, out=nearest)
    return np.sqrt(nearest)


def open_pixels(object_ids: np.ndarray) -> np.ndarray:
    """Bool ``[H, W]``: ground or sky, more than :data:`EDGE_PIXELS` plus the gradient window's reach from every
    object."""
    objects = object_ids >= 1
    reach = EDGE_PIXELS + WINDOW // 2 + 1  # + 1: the gradient's central difference
    near = _box_mean(objects.astype(np.float64), 2 * reach + 1) > 0
    return ~near


def phantom_mask(frame: np.ndarray, truth: np.ndarray, object_ids: np.ndarray,
                 open_mask: np.ndarray | None = None) -> np.ndarray:
    """Bool ``[H, W]``: the open pixels (:func:`open_pixels`, or ``open_mask`` already computed from
    ``object_ids``) where ``frame`` (uint8 ``[H, W, 3]``) has structure or a colour that ``truth`` has not there."""
    if not (frame.shape == truth.shape and frame.ndim == 3 and truth.shape[:2] == object_ids.shape):
        raise ValueError(f"expected a frame and its truth [H, W, 3] and object ids [H, W] of the same H, W; got "
                         f"{frame.shape}, {truth.shape} and {object_ids.shape}")
    structure = _gradient_energy(frame) > STRUCTURE_GAIN * _gradient_energy(truth) + STRUCTURE_FLOOR
    far = _distance_to_surroundings(frame, truth) > COLOUR_FAR
    return (open_pixels(object_ids) if open_mask is None else open_mask) & (structure | far)


def phantom_counts(frame: np.ndarray, truth: np.ndarray, object_ids: np.ndarray) -> tuple[int, int]:
    """``(phantom pixels, open pixels)`` of one frame: :func:`phantom_mask`'s count and :func:`open_pixels`'."""
    open_mask = open_pixels(object_ids)
    return int(phantom_mask(frame, truth, object_ids, open_mask).sum()), int(open_mask.sum())


def phantom_share(frames: np.ndarray, truth: np.ndarray, object_ids: np.ndarray) -> float:
    """The share of the open pixels of ``frames`` ``[N, H, W, 3]`` that are phantom (:func:`phantom_mask`), over
    all of them; NaN when the truth shows no open pixel."""
    phantom = open_total = 0
    for f, t, ids in zip(frames, truth, object_ids):
        counts = phantom_counts(f, t, ids)
        phantom, open_total = phantom + counts[0], open_total + counts[1]
    return phantom / open_total if open_total else float("nan")


def goal_colour_error(frames: np.ndarray, truth: np.ndarray, object_ids: np.ndarray, goal_id: int) -> float:
    """Mean over the frames that show the goal (object id ``goal_id``, at least ``MIN_OBJECT_PIXELS`` pixels of it
    in the truth) of the RGB distance between its mean colour in ``frames`` and in ``truth``; NaN if none does."""
    errors = []
    for f, t, ids in zip(frames.astype(np.float64), truth.astype(np.float64), object_ids):
        mask = ids == goal_id
        if mask.sum() >= MIN_OBJECT_PIXELS:
            errors.append(float(np.linalg.norm(f[mask].mean(axis=0) - t[mask].mean(axis=0))))
    return float(np.mean(errors)) if errors else float("nan")
