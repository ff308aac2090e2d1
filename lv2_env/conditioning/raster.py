"""Pixel-grid helpers the forward warp (:mod:`~lv2_env.conditioning.warp`) and the world memory
(:mod:`~lv2_env.conditioning.world_memory`) share: points splatted as boxes with a z-buffer, a mask eroded, and how
much of a slanted surface a pixel covers.
"""

from __future__ import annotations

import math

import numpy as np
import torch

# Neighbouring pixels whose depths differ by less than this fraction are one surface: the warp measures its grid
# spacing only between them, and a surfel's slant only spans them.
SAME_SURFACE = 0.1
SLANT_LIMIT = 2.0  # a pixel covers at most 2x its facing size of a slanted surface (as at 60 deg to the ray)


def erode(mask: np.ndarray, margin: int) -> np.ndarray:
    """``mask`` ``[H, W]`` where every pixel within ``margin`` (a square) is in it too; outside the frame counts as in."""
    if margin == 0:
        return mask
    padded = np.pad(mask, margin, constant_values=True)
    h, w = mask.shape
    out = mask.copy()
    for dy in range(2 * margin + 1):
        for dx in range(2 * margin + 1):
            out &= padded[dy : dy + h, dx : dx + w]
    return out


def surface_slant(points: np.ndarray, depth: np.ndarray, fx: float) -> np.ndarray:
    """How many times its facing size (``depth / fx``) of surface each pixel covers (``[H, W]`` float32 in
    ``[1, SLANT_LIMIT]``, from its world ``points`` ``[H, W, 3]``): the larger step to its right or lower neighbour
    on the same surface, over the facing size. The ground ahead covers far more along its slope than facing, and a
    surfel drawn only facing-size leaves rows of holes when seen nearer. Neighbours across a depth edge
    (``SAME_SURFACE``, 10% apart) are not the same surface."""
    facing = depth / fx
    size = facing.copy()
    for axis in (0, 1):
        step = np.linalg.norm(np.diff(points, axis=axis), axis=-1)
        near = np.diff(depth, axis=axis)
        same = np.abs(near) <= SAME_SURFACE * np.minimum(np.delete(depth, -1, axis), np.delete(depth, 0, axis))
        step = np.where(same, step, 0.0)
        pad = [(0, 1) if a == axis else (0, 0) for a in range(2)]
        size = np.maximum(size, np.pad(step, pad, mode="edge"))
    return np.clip(size / facing, 1.0, SLANT_LIMIT).astype(np.float32)


def zbuffer_winners(target: np.ndarray, depth: np.ndarray, source: np.ndarray, size: int) -> np.ndarray:
    """For each of ``size`` target pixels, the source that wins its z-buffer (-1: none landed).

    The nearest depth wins; among equally near sources (sky directions all have depth inf) the last in raster
    order, so the result does not depend on scatter order.
    """
    target_t, key = torch.from_numpy(target), torch.from_numpy(depth)
    nearest = torch.full((size,), math.inf, dtype=key.dtype).scatter_reduce(0, target_t, key, "amin")
    wins = key == nearest[target_t]
    winner = torch.full((size,), -1, dtype=torch.int64)
    return winner.scatter_reduce(0, target_t[wins], torch.from_numpy(source)[wins], "amax").numpy()


def splat_boxes(u: np.ndarray, v: np.ndarray, half_u: np.ndarray, half_v: np.ndarray, key: np.ndarray,
                source: np.ndarray, height: int, width: int) -> np.ndarray:
    """The ``source`` each pixel shows (``[H, W]``, -1 for none) when every point ``(u, v)`` is drawn as a box of
    half-sides ``(half_u, half_v)`` pixels and the smallest ``key`` (depth) wins each pixel (:func:`zbuffer_winners`).

    A box covers every pixel whose centre lies strictly inside it: a point on a pixel centre reaches no neighbour
    while its half-sides stay below 1, which is what keeps an unmoved camera exact. Each box is expanded into the
    pixels it covers at once (a range of columns by a range of rows per point), so the cost follows the pixels
    drawn, not the largest box times the points.
    """
    u, v, key, source = (np.asarray(a) for a in (u, v, key, source))
    half_u, half_v = np.broadcast_to(half_u, u.shape), np.broadcast_to(half_v, u.shape)
    # Pixel c is covered when |c + 0.5 - u| < half: the integers strictly between u - half - 0.5 and u + half - 0.5.
    col_lo = np.maximum(np.floor(u - half_u - 0.5) + 1, 0)
    col_hi = np.minimum(np.ceil(u + half_u - 0.5) - 1, width - 1)
    row_lo = np.maximum(np.floor(v - half_v - 0.5) + 1, 0)
    row_hi = np.minimum(np.ceil(v + half_v - 0.5) - 1, height - 1)
    cols_n = np.maximum(col_hi - col_lo + 1, 0).astype(np.int64)
    rows_n = np.maximum(row_hi - row_lo + 1, 0).astype(np.int64)
    counts = cols_n * rows_n
    drawn = np.flatnonzero(counts)
    if len(drawn) == 0:
        return np.full((height, width), -1, dtype=np.int64)
    counts, cols_n = counts[drawn], cols_n[drawn]
    point = np.repeat(np.arange(len(drawn)), counts)  # the box each drawn pixel belongs to
    within = np.arange(len(point)) - np.repeat(np.cumsum(counts) - counts, counts)  # its place inside the box
    cols = col_lo[drawn].astype(np.int64)[point] + within % cols_n[point]
    rows = row_lo[drawn].astype(np.int64)[point] + within // cols_n[point]
    return zbuffer_winners(rows * width + cols, key[drawn][point], source[drawn][point],
                           height * width).reshape(height, width)
