"""A bounded memory of what a world has shown, in world coordinates, rendered along the next camera path.

Each step of a generated world is conditioned on what the clip should start from. The last frame alone forgets
everything it does not see, and it carries the last clip's blur and colour error into the next. The env knows
every frame's camera pose (and, with scene control, its exact depth), so it can remember what each surface looked
like where it was first seen, as GEN3C's 3D cache does.

:class:`WorldMemory` keeps surfels: the frames' pixels lifted into world coordinates with their depth, one per
voxel of ``voxel`` metres (hashed into a sorted key array, so a lookup is a binary search):

* **first observation wins**: a pixel of a new frame is stored only where the memory does not already show a
  surface at that depth from that camera (within ``depth_tolerance``), and a voxel already held is not
  overwritten, since later generated frames are blurrier copies of earlier ones (the one exception: a generated
  look seen through far more fog than from where the camera is now, below); seen nearer, a surface first
  seen far away keeps its far look (each surfel drawn as large as it then covers, up to
  ``MAX_SPLAT_HALF_SIDE``) rather than taking on the generated detail of the nearer view;
* **protected frames** (the start frame: the truth, or the user's picture) are never evicted;
* **bounded**: at most ``capacity`` surfels; when full, the oldest unprotected ones make room, so memory stays
  flat over a 30-minute episode (``nbytes`` is fixed at construction);
* sky pixels (depth at or beyond ``far``) are directions, not surfaces: they go to a sky panorama
  (:class:`~lv2_env.conditioning.sky_panorama.SkyPanorama`: a fixed grid of view directions, ``SKY_BIN_DEG``
  apart, a few MiB) where, too, the first observation wins, so the start
  frame's sky stays as it was however far the camera walks, and a new direction keeps the first sky drawn there.
  (Carrying the last frame's sky forward instead let every clip's fringes around tall objects become sky, and
  pile up into streaks.) From an unprotected (generated) frame, only sky ``sky_margin`` pixels clear of every
  surface is stored, for the same reason: the model blurs an object's edge into the sky beside it.

:meth:`WorldMemory.render` splats the surfels into each camera of a path with a z-buffer (each surfel a square of
its world footprint, and of its slanted surface when seen nearer than it was, so near surfaces have no pinholes or
rows of holes) and looks the sky up behind them, leaving holes empty (``covered=False``). Given the path's depth
(the scene's, or what the controls were built from), a surfel is shown only where it lies on that surface (within
``RENDER_DEPTH_TOLERANCE``) and the sky only where the depth says sky: splats of a far look drawn near leave gaps
through which surfaces behind would show, and a splat's edge can overhang a surface in front of it. With depth the
start frame's surfels are drawn first and later ones only where those are not on the surface, so back at the start
the world shows its start frame, not a generated look that landed a few centimetres in front of it.

With the world's :class:`~lv2_env.conditioning.atmosphere.Atmosphere` (the env passes a procedural scene's fog), the
protected looks are rendered with the fog of the distance they are seen from now rather than of their first look:
the start frame's far ground, grey in fog, comes out green as the camera walks up to it. Generated looks are shown
as first seen: a generated far look's difference from the fog colour is mostly the model's error, and moving it out
of the fog enlarged that error (measured: docs/world-memory.md#refogging-the-models-own-looks). Instead, a generated
look seen through much more fog than where it is seen from now (``MAX_FOG_GAIN_SHOWN``) is no longer drawn: it is a
hole the model fills, and the model's nearer look replaces it in the memory, so in fog the ground the camera walks
up to is drawn again as it comes out of the fog rather than kept at the grey of its first, far look.

A full memory holds a whole walk, and a clip's cameras see a few of its bricks (2.56 m cubes of voxels, kept
together by the voxel keys' order): the render projects only the surfels of bricks inside some camera's frustum,
which draws the same pixels at a fraction of the cost (measured: docs/world-memory.md#brick-culling).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lv2_env.conditioning.atmosphere import Atmosphere
from lv2_env.conditioning.point_cache import unproject
from lv2_env.conditioning.raster import erode, splat_boxes, surface_slant
from lv2_env.conditioning.sky_panorama import SkyPanorama
from lv2_env.conditioning.warp import SKY_DEPTH
from lv2_env.signals.camera import Intrinsics

MAX_SPLAT_HALF_SIDE = 6  # pixels: a surfel seen far away and now near is drawn at most 13x13
# A surfel shows on the path's surface if its depth is within this fraction of it: loose enough for a splat drawn
# a few pixels wide across ground seen at a grazing angle, tight enough to drop a surface seen through a gap.
RENDER_DEPTH_TOLERANCE = 0.15
# Pixels: an unprotected (generated) frame's sky is stored only this far from any surface pixel. A generated frame
# blurs an object's edge a pixel or two into the sky around it; stored as sky, that fringe stays in the panorama
# (first look wins) and, once parallax has moved the object, hangs in the sky as a streak.
SKY_EDGE_MARGIN = 2
# A voxel key's low 7 bits per axis are its place inside a brick of 128 voxels (2.56 m at 2 cm): sorted keys keep a
# brick's surfels together, and a path's view is culled brick by brick (WorldMemory._in_view).
BRICK_BITS = 7
# A generated look is shown only while the fog it was seen through is at most this many times the fog of where it is
# seen from now (in transmittance, exp(-density * d)): nearer, it is a hole the model draws again, and that nearer
# look takes its voxel. In fog (0.07 per metre) a look is redrawn once the camera is 5.8 m nearer than it was.
# Too small a gain redraws every nearer look, too large keeps the grey far looks; the scores are noisy, and 1.5, the
# value first chosen, scored best of the three tried on a fog scene outside lv2 eval's six.
# Measured: docs/world-memory.md#max_fog_gain_shown
MAX_FOG_GAIN_SHOWN = 1.5


@dataclass(frozen=True)
class MemoryRender:
    """The memory seen along a path: uint8 ``frames`` ``[F, H, W, 3]`` (black in holes) and ``covered`` ``[F, H, W]``."""

    frames: np.ndarray
    covered: np.ndarray


class WorldMemory:
    """Surfels of the frames a world has shown (see the module docstring).

    Args:
        intrinsics: the camera of the frames (and of the renders).
        capacity: the most surfels kept; at least one frame's pixels (``H * W``), else ``ValueError``.
        voxel: edge of a memory voxel in metres; one surfel per voxel.
        far: depths at or beyond it are sky and are not stored (the renderer's sky is 150 m).
        depth_tolerance: a new pixel whose depth is within this fraction of the surface the memory already shows
            there is the same surface, seen again: not stored.
        sky_margin: pixels an unprotected frame's sky must lie clear of every surface to be stored (0: all of it).
        atmosphere: the world's fog (:class:`Atmosphere`), when known: the start frame's surfels are rendered with
            the fog of their distance now rather than of their first look, and a generated look seen through far more
            fog than from the camera now is left out and replaced by the next look there (module docstring). None
            (the default): colours as first seen, first look kept.
    """

    def __init__(self, intrinsics: Intrinsics, capacity: int = 1 << 18, voxel: float = 0.02,
                 far: float = SKY_DEPTH, depth_tolerance: float = 0.05, sky_margin: int = SKY_EDGE_MARGIN,
                 atmosphere: Atmosphere | None = None) -> None:
        pixels = intrinsics.width * intrinsics.height
        if not isinstance(capacity, (int, np.integer)) or capacity < pixels:
            raise ValueError(f"memory capacity must be at least one frame's pixels ({intrinsics.width}x"
                             f"{intrinsics.height} = {pixels} surfels), got {capacity!r}")
        if not voxel > 0:
            raise ValueError(f"voxel must be a positive size in metres, got {voxel!r}")
        if not isinstance(sky_margin, (int, np.integer)) or sky_margin < 0:
            raise ValueError(f"sky_margin must be a whole number of pixels >= 0, got {sky_margin!r}")
        self.sky_margin = int(sky_margin)
        self.atmosphere = atmosphere
        self.intrinsics, self.capacity, self.voxel, self.far = intrinsics, int(capacity), float(voxel), float(far)
        self.depth_tolerance = float(depth_tolerance)
        self._keys = np.empty(0, np.int64)  # sorted voxel keys of the surfels held, and each one's slot
        self._slots = np.empty(0, np.int64)
        self.xyz = np.zeros((self.capacity, 3), np.float32)
        self.rgb = np.zeros((self.capacity, 3), np.uint8)
        self.footprint = np.zeros(self.capacity, np.float32)  # metres one pixel covered facing, when it was seen
        self.slant = np.ones(self.capacity, np.float32)  # how many times that it covered of its slanted surface
        self.seen_at = np.zeros(self.capacity, np.float32)  # metres from the camera of its first look
        self.protected = np.zeros(self.capacity, bool)
        self.stamp = np.full(self.capacity, -1, np.int64)  # insertion order; -1: a free slot
        self._clock = 0
        self.panorama = SkyPanorama(intrinsics)  # the sky, by view direction

    def __len__(self) -> int:
        return int(len(self._keys))

    @property
    def nbytes(self) -> int:
        """Bytes the memory holds: fixed by ``capacity``, whatever has been added."""
        held = (self.xyz, self.rgb, self.footprint, self.slant, self.seen_at, self.protected, self.stamp)
        return int(sum(a.nbytes for a in held) + self.panorama.nbytes + 2 * 8 * self.capacity)

    def clear(self) -> None:
        self._keys, self._slots = np.empty(0, np.int64), np.empty(0, np.int64)
        self.protected[:] = False
        self.stamp[:] = -1
        self._clock = 0
        self.panorama.clear()

    def add(self, frame: np.ndarray, depth: np.ndarray, pose: np.ndarray, protected: bool = False) -> int:
        """Remember ``frame`` (uint8 ``[H, W, 3]``) seen from ``pose`` with metric ``depth`` ``[H, W]``: its surfaces
        as surfels, its sky in the panorama; returns how many new surfels it added (voxels already held, and sky
        directions already seen, keep their first observation)."""
        h, w = self.intrinsics.height, self.intrinsics.width
        frame, depth = np.asarray(frame), np.asarray(depth, dtype=np.float64)
        if frame.shape != (h, w, 3) or frame.dtype != np.uint8 or depth.shape != (h, w):
            raise ValueError(f"expected a uint8 frame [{h}, {w}, 3] and depth [{h}, {w}], got {frame.dtype} "
                             f"{frame.shape} and {depth.shape}")
        sky = depth >= self.far
        self.panorama.add(frame, sky if protected else erode(sky, self.sky_margin), np.asarray(pose, np.float64))
        surface = (depth < self.far) & np.isfinite(depth) & (depth > 0)
        surface &= ~self._shown_at(depth, np.asarray(pose, np.float64))
        grid = unproject(np.where(surface, depth, 1.0), np.asarray(pose, np.float64), self.intrinsics)
        points = grid[surface.ravel()]
        colours = frame.reshape(-1, 3)[surface.ravel()]
        footprint = (depth[surface] / self.intrinsics.fx).astype(np.float32)
        slant = surface_slant(grid.reshape(h, w, 3), depth, self.intrinsics.fx)[surface]
        keys = self._voxel_keys(points)
        keys, first = np.unique(keys, return_index=True)  # one surfel per voxel of this frame
        held = self._holds(keys)
        self._replace_fogged(keys[held], points[first[held]], colours[first[held]], footprint[first[held]],
                             slant[first[held]], np.asarray(pose, np.float64), protected)
        keys, first = keys[~held], first[~held]
        if len(keys) == 0:
            return 0
        slots = self._free_slots(len(keys))
        keep = len(slots)
        keys, first = keys[:keep], first[:keep]
        self.xyz[slots], self.rgb[slots], self.footprint[slots] = points[first], colours[first], footprint[first]
        self.slant[slots] = slant[first]
        self.seen_at[slots] = np.linalg.norm(points[first] - pose[:3, 3], axis=-1)
        self.protected[slots] = protected
        self.stamp[slots] = self._clock + np.arange(keep)
        self._clock += keep
        merged = np.concatenate([self._keys, keys])
        order = np.argsort(merged, kind="stable")
        self._keys, self._slots = merged[order], np.concatenate([self._slots, slots])[order]
        return keep

    def render(self, poses: np.ndarray, depth: np.ndarray | None = None) -> MemoryRender:
        """The memory seen from every camera of ``poses`` ``[F, 4, 4]``: the surfels splatted with a z-buffer
        (nearest wins), the sky panorama behind them. With the path's metric ``depth`` ``[F, H, W]``, a surfel is
        kept only where it lies on that surface (the start frame's first) and the sky only where that depth is sky
        (module docstring)."""
        h, w = self.intrinsics.height, self.intrinsics.width
        poses = np.asarray(poses, np.float64)
        if depth is not None:
            depth = np.asarray(depth, np.float32)
            if depth.shape != (len(poses), h, w):
                raise ValueError(f"expected the path's depth [{len(poses)}, {h}, {w}], got {depth.shape}")
        frames = np.zeros((len(poses), h, w, 3), np.uint8)
        covered = np.zeros((len(poses), h, w), bool)
        slots = self._in_view(poses)
        # With the path's depth, the start frame's surfels are drawn first and the later ones only where those are
        # not on the surface: two looks within the tolerance of one surface, the first one wins (nearest would
        # let a later, generated look a few centimetres in front replace the truth).
        groups = [slots] if depth is None else [slots[self.protected[slots]], slots[~self.protected[slots]]]
        tiers = [(self.xyz[g], self.rgb[g], self.footprint[g], self.slant[g], self.seen_at[g],
                  self.protected[g]) for g in groups if len(g)]
        for f, pose in enumerate(poses):
            hit = np.zeros((h, w), bool)
            eye = pose[:3, 3].astype(np.float32)
            for xyz, rgb, footprint, slant, seen_at, protected in tiers:
                winner = self._splat_shown(xyz, footprint, slant, seen_at, protected, pose)
                shown = (winner >= 0) & ~hit
                if depth is not None:
                    z = (xyz[winner[shown]] - eye) @ pose[:3, 2].astype(np.float32)
                    shown[shown] = np.abs(z - depth[f][shown]) <= RENDER_DEPTH_TOLERANCE * depth[f][shown]
                drawn = winner[shown]
                colours = rgb[drawn]
                if self.atmosphere is not None and self.atmosphere.density > 0:
                    # Only the protected looks (the truth): a generated far look's difference from the fog colour
                    # is mostly the model's error, and moving it out of the fog made the walks worse (module doc).
                    truth = drawn[protected[drawn]]
                    now = np.linalg.norm(xyz[truth] - eye, axis=-1)
                    colours[protected[drawn]] = self.atmosphere.refog(rgb[truth], seen_at[truth], now)
                frames[f][shown] = colours
                hit |= shown
            open_sky = ~hit if depth is None else depth[f] >= self.far
            sky_rgb, sky_seen = self.panorama.look_up(pose, open_sky)
            sky_hit = np.zeros_like(open_sky)
            sky_hit[open_sky] = sky_seen
            frames[f][sky_hit] = sky_rgb[sky_seen]
            covered[f] = hit | sky_hit
        return MemoryRender(frames, covered)

    # ------------------------------------------------------------------ helpers

    def _shown_at(self, depth: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """``[H, W]``: where the memory, seen from ``pose``, already shows a surface at ``depth`` (within the
        tolerance): those pixels are a second look at it."""
        if len(self._slots) == 0:
            return np.zeros(depth.shape, bool)
        slots = self._in_view(pose[None])
        xyz = self.xyz[slots]
        winner = self._splat_shown(xyz, self.footprint[slots], self.slant[slots], self.seen_at[slots],
                                   self.protected[slots], pose)
        hit = winner >= 0
        shown = np.zeros(depth.shape, bool)
        z = (xyz[winner[hit]] - pose[:3, 3]) @ pose[:3, 2]  # camera z of the surfel each pixel shows
        shown[hit] = np.abs(z - depth[hit]) <= self.depth_tolerance * depth[hit]
        return shown

    def _voxel_keys(self, points: np.ndarray) -> np.ndarray:
        """One int64 per voxel: 21 bits per axis (+-21 km at 2 cm), so distinct voxels get distinct keys. The
        brick's bits (the axes' top 14) come first, so the sorted keys hold each brick's surfels together."""
        cells = np.floor(points / self.voxel).astype(np.int64) + (1 << 20)
        cells = np.clip(cells, 0, (1 << 21) - 1)
        brick, local = cells >> BRICK_BITS, cells & ((1 << BRICK_BITS) - 1)
        brick_key = (brick[:, 0] << 28) | (brick[:, 1] << 14) | brick[:, 2]
        local_key = (local[:, 0] << (2 * BRICK_BITS)) | (local[:, 1] << BRICK_BITS) | local[:, 2]
        return (brick_key << (3 * BRICK_BITS)) | local_key

    def _in_view(self, poses: np.ndarray) -> np.ndarray:
        """The slots of the surfels in bricks that some camera of ``poses`` may see (each brick's box tested
        against each frustum, widened by the largest splat): a superset of what :meth:`_splat` draws, so culling
        with it changes no pixel, and a path sees a few of a full memory's bricks."""
        if len(self._keys) == 0:
            return self._slots
        bricks = self._keys >> (3 * BRICK_BITS)
        starts = np.flatnonzero(np.r_[True, bricks[1:] != bricks[:-1]])
        ends = np.r_[starts[1:], len(bricks)]
        brick = bricks[starts]
        cells = np.stack([brick >> 28, (brick >> 14) & 0x3FFF, brick & 0x3FFF], axis=-1)
        corner0 = ((cells << BRICK_BITS) - (1 << 20)) * self.voxel  # [B, 3] the bricks' lowest corners, metres
        offsets = np.array([[i, j, l] for i in (0, 1) for j in (0, 1) for l in (0, 1)], np.float64)
        corners = corner0[:, None] + offsets * ((1 << BRICK_BITS) * self.voxel)  # [B, 8, 3]
        k, h, w = self.intrinsics, self.intrinsics.height, self.intrinsics.width
        reach = MAX_SPLAT_HALF_SIDE + 1.0  # _splat's reach and a pixel of slack for its float32 rounding
        visible = np.zeros(len(brick), bool)
        for pose in np.asarray(poses, np.float64):
            x, y, z = np.moveaxis((corners - pose[:3, 3]) @ pose[:3, :3], -1, 0)  # camera frame, [B, 8] each
            # The frustum's half-spaces, multiplied through by z: in front, and within the widened image.
            planes = (z - 1e-3, k.fx * x + (k.cx + reach) * z, (w + reach - k.cx) * z - k.fx * x,
                      k.fy * y + (k.cy + reach) * z, (h + reach - k.cy) * z - k.fy * y)
            visible |= ~np.any([(plane <= 0).all(axis=1) for plane in planes], axis=0)
        keep = np.flatnonzero(visible)
        if len(keep) == len(brick):
            return self._slots
        counts = ends[keep] - starts[keep]
        within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return self._slots[np.repeat(starts[keep], counts) + within]

    def _fogged(self, seen_at: np.ndarray, protected: np.ndarray, now: np.ndarray) -> np.ndarray:
        """Which looks, seen ``seen_at`` metres away and ``now`` that far, are generated looks seen through too much
        fog to show from here (``MAX_FOG_GAIN_SHOWN``): all False without fog."""
        if self.atmosphere is None or self.atmosphere.density <= 0:
            return np.zeros(len(seen_at), bool)
        return ~protected & (self.atmosphere.gain(seen_at, now) > MAX_FOG_GAIN_SHOWN)

    def _splat_shown(self, xyz: np.ndarray, footprint: np.ndarray, slant: np.ndarray, seen_at: np.ndarray,
                     protected: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """:meth:`_splat` of the surfels camera ``pose`` shows: not those :meth:`_fogged` from there."""
        if self.atmosphere is None or self.atmosphere.density <= 0 or protected.all():
            return self._splat(xyz, footprint, slant, pose)
        now = np.linalg.norm(xyz - pose[:3, 3].astype(np.float32), axis=-1)
        shown = np.flatnonzero(~self._fogged(seen_at, protected, now))
        if len(shown) == len(xyz):
            return self._splat(xyz, footprint, slant, pose)
        if len(shown) == 0:
            return np.full((self.intrinsics.height, self.intrinsics.width), -1, np.int64)
        winner = self._splat(xyz[shown], footprint[shown], slant[shown], pose)
        return np.where(winner >= 0, shown[np.maximum(winner, 0)], -1)

    def _replace_fogged(self, keys: np.ndarray, points: np.ndarray, colours: np.ndarray, footprint: np.ndarray,
                        slant: np.ndarray, pose: np.ndarray, protected: bool) -> None:
        """A new look at voxels already held (``keys``) takes the place of a generated look seen through too much
        fog to show from this ``pose`` (:meth:`_fogged`): the render left it out, so this look is what was drawn."""
        if self.atmosphere is None or self.atmosphere.density <= 0 or len(keys) == 0:
            return
        slots = self._slots[np.searchsorted(self._keys, keys)]
        now = np.linalg.norm(points - pose[:3, 3], axis=-1)
        stale = self._fogged(self.seen_at[slots], self.protected[slots], now)
        if not stale.any():
            return
        slots = slots[stale]
        self.xyz[slots], self.rgb[slots], self.footprint[slots] = points[stale], colours[stale], footprint[stale]
        self.slant[slots], self.seen_at[slots], self.protected[slots] = slant[stale], now[stale], protected
        self.stamp[slots] = self._clock + np.arange(len(slots))
        self._clock += len(slots)

    def _holds(self, keys: np.ndarray) -> np.ndarray:
        if len(self._keys) == 0:
            return np.zeros(len(keys), bool)
        at = np.clip(np.searchsorted(self._keys, keys), 0, len(self._keys) - 1)
        return self._keys[at] == keys

    def _free_slots(self, wanted: int) -> np.ndarray:
        """Up to ``wanted`` slots: free ones first, then the oldest unprotected surfels (forgotten here)."""
        free = np.flatnonzero(self.stamp < 0)[:wanted]
        if len(free) == wanted:
            return free
        evictable = np.flatnonzero((self.stamp >= 0) & ~self.protected)
        oldest = evictable[np.argsort(self.stamp[evictable], kind="stable")[: wanted - len(free)]]
        if len(oldest):
            gone = np.isin(self._slots, oldest)
            self._keys, self._slots = self._keys[~gone], self._slots[~gone]
            self.stamp[oldest] = -1
        return np.concatenate([free, oldest])

    def _splat(self, xyz: np.ndarray, footprint: np.ndarray, slant: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """The surfel each pixel of camera ``pose`` shows (``[H, W]``, -1 for none), from surfels ``xyz``
        (float32: millimetres at kilometres from the origin, and half the memory traffic of float64)."""
        k, h, w = self.intrinsics, self.intrinsics.height, self.intrinsics.width
        cam = (xyz - pose[:3, 3].astype(np.float32)) @ pose[:3, :3].astype(np.float32)  # world -> camera (R^T)
        front = np.flatnonzero(cam[:, 2] > 1e-3)
        cam = cam[front]
        z = cam[:, 2]
        u, v = k.fx * cam[:, 0] / z + k.cx, k.fy * cam[:, 1] / z + k.cy
        reach = MAX_SPLAT_HALF_SIDE + 0.15  # no box is larger: what lies further outside the frame is not drawn
        near = np.flatnonzero((u > -reach) & (u < w + reach) & (v > -reach) & (v < h + reach))
        index, u, v, z = front[near], u[near], v[near], z[near]
        # Half a surfel's footprint in pixels at this distance, plus a little slack so that a surface tiles; seen
        # nearer than it was, as large as its slanted surface then was (seen from as far, exactly its pixel).
        magnification = footprint[index] * k.fx / z
        size = np.where(magnification > 1.0 + 1e-6, magnification * slant[index], magnification)
        half = np.clip(0.5 * size + 0.15, 0.5, reach)
        return splat_boxes(u, v, half, half, z, index, h, w)
