"""The sky of a world as a panorama of view directions (:class:`SkyPanorama`).

Sky pixels (depth at or beyond the far plane) are directions, not surfaces: the world memory
(:mod:`~lv2_env.conditioning.world_memory`) keeps them apart from its surfels, in a fixed grid of view directions
``SKY_BIN_DEG`` apart (a few MiB) where the first observation wins, so the start frame's sky stays as it was however
far the camera walks, and a new direction keeps the first sky drawn there.
"""

from __future__ import annotations

import numpy as np

from lv2_env.signals.camera import Intrinsics

# Sky panorama cells: finer than a pixel of the 70-degree 128-pixel camera (0.6 deg), so storing and looking up
# again moves a sky pixel by at most a fifth of a pixel.
SKY_BIN_DEG = 0.25


class SkyPanorama:
    """The sky seen so far, by view direction: uint8 ``rgb`` ``[rows, columns, 3]`` by (elevation, azimuth) cell,
    and ``seen`` ``[rows, columns]``, the cells that hold a look (the first one).

    Args:
        intrinsics: the camera of the frames stored and of the views looked up.
    """

    def __init__(self, intrinsics: Intrinsics) -> None:
        self.intrinsics = intrinsics
        self._columns, self._rows = round(360 / SKY_BIN_DEG), round(180 / SKY_BIN_DEG)
        self.rgb = np.zeros((self._rows, self._columns, 3), np.uint8)  # by (elevation, azimuth)
        self.seen = np.zeros((self._rows, self._columns), bool)

    @property
    def nbytes(self) -> int:
        """Bytes the panorama holds: fixed."""
        return int(self.rgb.nbytes + self.seen.nbytes)

    def clear(self) -> None:
        self.seen[:] = False

    def _cells(self, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Panorama (row, column) of world ``directions`` ``[N, 3]`` (world z up): elevation and azimuth cells."""
        x, y, z = directions[:, 0], directions[:, 1], directions[:, 2]
        azimuth = np.arctan2(y, x)
        elevation = np.arctan2(z, np.hypot(x, y))
        column = np.floor((azimuth + np.pi) / (2 * np.pi) * self._columns).astype(np.int64) % self._columns
        row = np.clip(np.floor((elevation + np.pi / 2) / np.pi * self._rows).astype(np.int64), 0, self._rows - 1)
        return row, column

    def add(self, frame: np.ndarray, sky: np.ndarray, pose: np.ndarray) -> None:
        """Store the ``sky`` pixels of ``frame`` in the panorama cells not seen before: every cell near the sky
        pixels' directions is looked up in the frame (backward, nearest pixel), so none it covers is skipped
        whatever the pixel's angular size or the cells' narrowing toward the zenith."""
        if not sky.any():
            return
        h, w = sky.shape
        rays = self.intrinsics.pixel_rays()[sky] @ pose[:3, :3].T
        rows, columns = self._cells(rays)
        pixel_deg = np.degrees(1.0 / min(self.intrinsics.fx, self.intrinsics.fy))
        row_margin = int(np.ceil(pixel_deg / SKY_BIN_DEG)) + 1
        low, high = max(rows.min() - row_margin, 0), min(rows.max() + row_margin, self._rows - 1)
        narrowest = max(np.cos(np.radians((np.array([low, high + 1]) * SKY_BIN_DEG) - 90.0)).min(), 1e-3)
        column_margin = min(int(np.ceil(pixel_deg / (SKY_BIN_DEG * narrowest))) + 1, self._columns)
        near = np.zeros(self._columns, bool)
        near[columns] = True
        near = np.convolve(np.concatenate([near[-column_margin:], near, near[:column_margin]]).astype(np.int32),
                           np.ones(2 * column_margin + 1, np.int32), mode="same")[column_margin:-column_margin] > 0
        cell_rows, cell_columns = np.meshgrid(np.arange(low, high + 1), np.flatnonzero(near), indexing="ij")
        cell_rows, cell_columns = cell_rows.ravel(), cell_columns.ravel()
        fresh = ~self.seen[cell_rows, cell_columns]
        cell_rows, cell_columns = cell_rows[fresh], cell_columns[fresh]
        azimuth = (cell_columns + 0.5) / self._columns * 2 * np.pi - np.pi
        elevation = (cell_rows + 0.5) / self._rows * np.pi - np.pi / 2
        directions = np.stack([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                               np.sin(elevation)], axis=-1)
        camera = directions @ pose[:3, :3]  # world -> camera (R^T)
        ahead = camera[:, 2] > 1e-6
        z = np.where(ahead, camera[:, 2], 1.0)
        u = np.floor(self.intrinsics.fx * camera[:, 0] / z + self.intrinsics.cx).astype(np.int64)
        v = np.floor(self.intrinsics.fy * camera[:, 1] / z + self.intrinsics.cy).astype(np.int64)
        inside = ahead & (u >= 0) & (u < w) & (v >= 0) & (v < h)
        take = np.zeros(len(u), bool)
        take[inside] = sky[v[inside], u[inside]]
        self.rgb[cell_rows[take], cell_columns[take]] = frame[v[take], u[take]]
        self.seen[cell_rows[take], cell_columns[take]] = True

    def look_up(self, pose: np.ndarray, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The panorama seen from ``pose`` at the pixels ``where`` ``[H, W]``: ``(rgb [N, 3], seen [N])`` of
        those pixels in raster order, nearest cell."""
        if not self.seen.any() or not where.any():
            return np.zeros((int(where.sum()), 3), np.uint8), np.zeros(int(where.sum()), bool)
        rays = self.intrinsics.pixel_rays()[where] @ pose[:3, :3].T
        row, column = self._cells(rays)
        return self.rgb[row, column], self.seen[row, column]
