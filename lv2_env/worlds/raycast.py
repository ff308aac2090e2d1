"""A vectorised torch ray caster for :class:`~lv2_env.worlds.scene.Scene` (float32, CPU, deterministic).

One primary ray per pixel, exact analytic intersections, no shadows or reflections: the point is fast,
bit-reproducible frames with *exact* depth, world points and object ids for training targets.

How it stays fast: ray directions keep the ``z = 1`` scaling of :meth:`Intrinsics.pixel_rays`, so the hit
parameter ``t`` is the camera depth directly. All geometry is expressed relative to the camera position, so every
ray starts at the origin (this also keeps float32 precise far from the world origin). The image is cut into
small pixel tiles and each object is tested against each tile's frustum with its world-axis-aligned bounding
box; this culling is conservative (it never drops a hittable object), so only (ray, object) pairs that can
hit are intersected, as flat gathered tensors per object shape rather than dense ``[rays, objects]`` grids.
The nearest hit per ray is a ``scatter_reduce(amin)``, whose result does not depend on evaluation order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lv2_env.signals.camera import Intrinsics
from lv2_env.worlds.scene import COLOURS, SHAPE_BOX, SHAPE_CYLINDER, SHAPE_SPHERE, TEXTURES, Scene

T_MIN = 1e-4  # hits at t <= T_MIN are ignored (self-intersection guard)
CHECKER_TILE = 2.0  # metres per ground checker square
NOISE_CELLS = (3.0, 0.9)  # metres per ground noise cell: a coarse and a fine octave
NOISE_WEIGHTS = (0.65, 0.35)
PATTERN_DARK = 0.55  # albedo factor of the dark parts of object textures
STRIPE_WIDTH = 0.3  # metres per band of the striped texture
CHECKER_CELL = 0.4  # metres per cell of the checkered object texture
DOT_SPACING, DOT_RADIUS = 0.4, 0.12  # metres
SUN_RADIUS = 0.04  # radians: visible sun disc
_TEXTURE_CODE = {name: i for i, name in enumerate(TEXTURES)}
_SHAPE_GROUPS = (SHAPE_SPHERE, SHAPE_BOX, SHAPE_CYLINDER)


@dataclass
class RenderOutput:
    """Frames of a clip. ``object_id``: -1 sky, 0 ground, ``k + 1`` for ``scene.objects[k]``."""

    rgb: np.ndarray | None  # [F, H, W, 3] uint8; None when rendered with shade=False
    depth: np.ndarray  # [F, H, W] float32, camera-frame z in metres; sky = scene.far
    points: np.ndarray  # [F, H, W, 3] float32 world points; sky: camera position + far * ray (ray z = 1)
    object_id: np.ndarray  # [F, H, W] int16


def _smoothstep(edge0: float, edge1: float, x: torch.Tensor) -> torch.Tensor:
    s = ((x - edge0) / (edge1 - edge0)).clamp(0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


def _contrast_fade(footprint: torch.Tensor, period: float) -> torch.Tensor:
    """1 where a pattern of this period is well resolved, fading to 0 once a pixel covers half a period.

    A pixel's footprint larger than half the pattern period would alias into moire; fading the contrast to
    the mean there is a cheap stand-in for supersampling.
    """
    return (2.0 - 4.0 * footprint / period).clamp(0.0, 1.0)


class Renderer:
    """Renders a fixed scene through a fixed pinhole camera from any camera-to-world poses.

    ``chunk_rays`` bounds memory: whole frames are grouped up to that many rays (a larger frame is cut into
    bands of rows), and each chunk's (ray, object) candidate pairs are processed at most ``4 * chunk_rays`` at
    a time. ``tile`` is the side in pixels of the culling tiles.
    """

    def __init__(self, scene: Scene, intrinsics: Intrinsics, chunk_rays: int = 65536, tile: int = 8):
        if chunk_rays < 1 or tile < 1:
            raise ValueError(f"chunk_rays and tile must be >= 1, got chunk_rays={chunk_rays!r}, tile={tile!r}")
        self.scene = scene
        self.intrinsics = intrinsics
        self.chunk_rays = int(chunk_rays)
        self.tile = int(tile)
        self._rays_cam = torch.from_numpy(intrinsics.pixel_rays().astype(np.float32))  # [H, W, 3]
        self._focal = float(min(intrinsics.fx, intrinsics.fy))

        a = scene.arrays
        style = scene.style
        self._centers64 = a.centers  # [N, 3] float64: subtracted from camera positions in float64
        self._aabb = torch.from_numpy((a.aabb_half + 1e-3).astype(np.float32))  # [N, 3] small safety margin
        self._half = torch.from_numpy(a.half_extents.astype(np.float32))  # [N, 3]
        self._cos = torch.from_numpy(np.cos(a.yaw).astype(np.float32))  # [N]
        self._sin = torch.from_numpy(np.sin(a.yaw).astype(np.float32))  # [N]
        self._shape = torch.from_numpy(a.shapes.copy())  # [N] int64 (copy: the scene array is read-only)
        self._texture = torch.tensor([_TEXTURE_CODE[o.texture] for o in scene.objects], dtype=torch.int64)  # [N]
        albedo = [style.object_colour(COLOURS[o.colour]) for o in scene.objects]
        self._albedo = torch.tensor(albedo, dtype=torch.float32).reshape(-1, 3)  # [N, 3]
        self._groups = {s: torch.from_numpy(np.flatnonzero(a.shapes == s)) for s in _SHAPE_GROUPS}  # global ids

        f32 = lambda v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
        self._sky_zenith, self._sky_horizon = f32(style.sky_zenith), f32(style.sky_horizon)
        self._sun_dir, self._sun_colour = f32(style.sun_direction), f32(style.sun_colour)
        self._fog_colour = f32(style.fog_colour)
        self._ground = f32(style.ground_colours)  # [2, 3]
        self._noise = torch.tensor(scene.ground_noise, dtype=torch.float32)  # [G, G] copy: the scene's is read-only

    # ------------------------------------------------------------------------------------------ public

    def render(self, poses: np.ndarray, shade: bool = True) -> RenderOutput:
        """Render camera-to-world ``poses [F, 4, 4]`` into RGB, depth, world points and object ids.

        ``shade=False`` skips the colours (``rgb`` is None), over half of the cost: a generated world's
        control signals need only the geometry."""
        poses = np.asarray(poses, dtype=np.float64)
        if poses.ndim != 3 or poses.shape[1:] != (4, 4):
            raise ValueError(f"expected camera-to-world poses of shape [F, 4, 4], got {poses.shape}")
        if not np.all(np.isfinite(poses)):
            raise ValueError("poses must be finite")
        h, w = self.intrinsics.height, self.intrinsics.width
        n = len(poses)
        out = RenderOutput(
            rgb=np.empty((n, h, w, 3), np.uint8) if shade else None,
            depth=np.empty((n, h, w), np.float32),
            points=np.empty((n, h, w, 3), np.float32),
            object_id=np.empty((n, h, w), np.int16),
        )
        frames_per_chunk = max(1, self.chunk_rays // (h * w))
        rows_per_chunk = h if h * w <= self.chunk_rays else self._band_rows()
        with torch.inference_mode():
            for f0 in range(0, n, frames_per_chunk):
                f1 = min(n, f0 + frames_per_chunk)
                for r0 in range(0, h, rows_per_chunk):
                    r1 = min(h, r0 + rows_per_chunk)
                    rgb, depth, points, ids = self._render_chunk(poses[f0:f1], r0, r1, shade)
                    if shade:
                        out.rgb[f0:f1, r0:r1] = rgb.numpy()
                    out.depth[f0:f1, r0:r1] = depth.numpy()
                    out.points[f0:f1, r0:r1] = points.numpy()
                    out.object_id[f0:f1, r0:r1] = ids.numpy()
        return out

    # ------------------------------------------------------------------------------------------ chunks

    def _band_rows(self) -> int:
        """Rows per band when one frame has more than ``chunk_rays`` pixels (a multiple of the tile size)."""
        rows = max(1, self.chunk_rays // self.intrinsics.width)
        return max(self.tile, rows // self.tile * self.tile)

    def _render_chunk(self, poses: np.ndarray, r0: int, r1: int, shade: bool = True):
        """Frames ``poses [Fc, 4, 4]``, image rows ``r0:r1``; returns rgb (None unless ``shade``), depth, points,
        ids as tensors."""
        fc, hc, w = len(poses), r1 - r0, self.intrinsics.width
        rot = torch.from_numpy(poses[:, :3, :3].astype(np.float32))  # [Fc, 3, 3]
        origin = torch.from_numpy(poses[:, :3, 3].astype(np.float32))  # [Fc, 3]
        rays_cam = self._rays_cam[r0:r1].reshape(-1, 3)  # [Rc, 3] camera frame, z = 1
        # R @ ray as explicit products and sums: unlike a batched matmul, the rounding cannot depend on how many
        # frames share a chunk, so a frame renders bit-identically whatever it is batched with.
        x, y, z = rays_cam[:, 0], rays_cam[:, 1], rays_cam[:, 2]  # [Rc]
        dirs = torch.stack([rot[:, i, 0:1] * x + rot[:, i, 1:2] * y + rot[:, i, 2:3] * z for i in range(3)], -1)
        dirs = dirs.reshape(-1, 3)  # [R, 3] world directions, R = Fc * Rc
        frame = torch.arange(fc).repeat_interleave(hc * w)  # [R]

        # Ground plane z = 0, seen from height oz: t = -oz / dz.
        oz = origin[frame, 2]  # [R]
        dz = dirs[:, 2]
        t_ground = -oz / torch.where(dz == 0, torch.full_like(dz, 1e-30), dz)
        t_best = torch.where(t_ground > T_MIN, t_ground, torch.full_like(dz, torch.inf))  # [R]
        id_best = torch.where(torch.isfinite(t_best), 0, -1).to(torch.int64)  # [R]

        if len(self.scene.objects):
            oc = torch.from_numpy((self._centers64[None] - poses[:, None, :3, 3]).astype(np.float32))  # [Fc, N, 3]
            visible = self._cull(rot, oc, r0, r1)  # [Fc, Ty, Tx, N]
            for shape, members in self._groups.items():
                if len(members):
                    self._intersect_group(shape, members, visible, oc, dirs, hc, t_best, id_best)

        far = self.scene.far
        sky = ~(t_best <= far)  # also catches inf
        id_best = torch.where(sky, -1, id_best)
        t = torch.where(sky, torch.full_like(t_best, far), t_best)  # [R]
        points = origin[frame] + t[:, None] * dirs  # [R, 3]
        rgb = None
        if shade:
            rgb = self._shade(dirs, t, id_best, points, oc if len(self.scene.objects) else None, frame, origin)
            rgb = rgb.reshape(fc, hc, w, 3)
        return (
            rgb,
            t.reshape(fc, hc, w),
            points.reshape(fc, hc, w, 3),
            id_best.to(torch.int16).reshape(fc, hc, w),
        )

    # ------------------------------------------------------------------------------------------ geometry

    def _tile_bounds(self, r0: int, r1: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Camera-frame ``x`` (resp. ``y``) of the first and last pixel centres of each tile column (row)."""
        k, intr = self.tile, self.intrinsics
        u_first = torch.arange(0, intr.width, k, dtype=torch.float64)
        u_last = torch.clamp(u_first + k - 1, max=intr.width - 1)
        v_first = torch.arange(r0, r1, k, dtype=torch.float64)
        v_last = torch.clamp(v_first + k - 1, max=r1 - 1)
        x = lambda u: ((u + 0.5 - intr.cx) / intr.fx).float()  # noqa: E731
        y = lambda v: ((v + 0.5 - intr.cy) / intr.fy).float()  # noqa: E731
        return x(u_first), x(u_last), y(v_first), y(v_last)

    def _cull(self, rot: torch.Tensor, oc: torch.Tensor, r0: int, r1: int) -> torch.Tensor:
        """Which objects may be hit by some ray of each tile: ``[Fc, Ty, Tx, N]`` bool.

        A ray ``(x, y, 1)`` of a tile has ``x0 <= x <= x1`` and ``y0 <= y <= y1``, so every point it reaches at
        ``t > 0`` lies on the inner side of the four planes through the camera centre with camera-frame normals
        ``(1, 0, -x0)``, ``(-1, 0, x1)``, ``(0, 1, -y0)``, ``(0, -1, y1)`` and in front (``z >= 0``). An object whose
        bounding box lies wholly outside one of those half-spaces cannot be hit from that tile.
        """
        x0, x1, y0, y1 = self._tile_bounds(r0, r1)
        zeros, ones = torch.zeros_like(x0), torch.ones_like(x0)
        left = torch.stack([ones, zeros, -x0], -1)  # [Tx, 3] camera-frame normals
        right = torch.stack([-ones, zeros, x1], -1)
        zy, oy = torch.zeros_like(y0), torch.ones_like(y0)
        top = torch.stack([zy, oy, -y0], -1)  # [Ty, 3]
        bottom = torch.stack([zy, -oy, y1], -1)

        def inside(normals_cam: torch.Tensor) -> torch.Tensor:  # [T, 3] -> [Fc, T, N]
            n_world = torch.einsum("fij,tj->fti", rot, normals_cam)  # [Fc, T, 3]
            reach = torch.einsum("fti,fni->ftn", n_world, oc) + torch.einsum("fti,ni->ftn", n_world.abs(), self._aabb)
            return reach >= 0

        cols = inside(left) & inside(right)  # [Fc, Tx, N]
        rows = inside(top) & inside(bottom)  # [Fc, Ty, N]
        front = inside(torch.tensor([[0.0, 0.0, 1.0]]))[:, 0]  # [Fc, N]
        return rows[:, :, None, :] & cols[:, None, :, :] & front[:, None, None, :]

    def _intersect_group(
        self,
        shape: int,
        members: torch.Tensor,
        visible: torch.Tensor,
        oc: torch.Tensor,
        dirs: torch.Tensor,
        hc: int,
        t_best: torch.Tensor,
        id_best: torch.Tensor,
    ) -> None:
        """Intersect rays with the objects ``members`` (all of one shape); updates ``t_best``, ``id_best`` in place."""
        k, w = self.tile, self.intrinsics.width
        cand = visible[..., members].nonzero()  # [M, 4]: frame, tile row, tile column, member
        if len(cand) == 0:
            return
        dv = torch.arange(k).repeat_interleave(k)  # [k*k] pixel offsets inside a tile
        du = torch.arange(k).repeat(k)
        step = max(1, 4 * self.chunk_rays // (k * k))
        for s in range(0, len(cand), step):
            f, ty, tx, m = cand[s : s + step].unbind(-1)  # [Ms] each
            v = (ty[:, None] * k + dv).clamp(max=hc - 1)  # [Ms, k*k]; edge tiles repeat their last pixel
            u = (tx[:, None] * k + du).clamp(max=w - 1)
            ray = ((f[:, None] * hc + v) * w + u).reshape(-1)  # [P]
            obj = members[m].repeat_interleave(k * k)  # [P] global object index
            rel = oc[f, members[m]].repeat_interleave(k * k, dim=0)  # [P, 3] object centre relative to camera
            d = dirs[ray]  # [P, 3]
            if shape == SHAPE_SPHERE:
                t = _hit_sphere(d, rel, self._half[obj, 0])
            elif shape == SHAPE_BOX:
                t = _hit_box(d, rel, self._half[obj], self._cos[obj], self._sin[obj])
            else:
                t = _hit_cylinder(d, rel, self._half[obj, 0], self._half[obj, 2])
            _merge_hits(t, ray, obj + 1, t_best, id_best)

    # ------------------------------------------------------------------------------------------ shading

    def _sky(self, unit: torch.Tensor) -> torch.Tensor:
        """Sky colour ``[R, 3]`` for unit world directions ``[R, 3]``: gradient, sun disc and horizon fog."""
        style = self.scene.style
        elevation = unit[:, 2]
        s = elevation.clamp(0.0, 1.0).sqrt()[:, None]
        colour = self._sky_horizon + (self._sky_zenith - self._sky_horizon) * s
        below = (-elevation).clamp(0.0, 1.0)[:, None]  # slightly darker haze under the horizon
        colour = colour * (1.0 - 0.15 * below)
        if style.sun_disc > 0:
            cos_sun = (unit * self._sun_dir).sum(-1).clamp(-1.0, 1.0)
            disc = _smoothstep(float(np.cos(SUN_RADIUS * 1.4)), float(np.cos(SUN_RADIUS)), cos_sun)
            glow = 0.35 * cos_sun.clamp(min=0.0) ** 64 + 0.12 * cos_sun.clamp(min=0.0) ** 8
            colour = colour + style.sun_disc * (disc + glow)[:, None] * self._sun_colour
        haze = (1.0 - np.exp(-style.fog_density * self.scene.far)) * (1.0 - _smoothstep(0.0, 0.35, elevation))
        return colour + (self._fog_colour - colour) * haze[:, None]

    def _value_noise(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Smooth periodic value noise in ``[-1, 1]`` at grid coordinates ``x, y`` (bilinear, smoothstep weights)."""
        g = self._noise.shape[0]
        xf, yf = torch.floor(x), torch.floor(y)
        fx, fy = x - xf, y - yf
        fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
        i0, j0 = xf.long() % g, yf.long() % g
        i1, j1 = (i0 + 1) % g, (j0 + 1) % g
        flat = self._noise.reshape(-1)
        a, b = flat[j0 * g + i0], flat[j0 * g + i1]
        c, d = flat[j1 * g + i0], flat[j1 * g + i1]
        return (a + (b - a) * fx) * (1 - fy) + (c + (d - c) * fx) * fy

    def _ground_albedo(self, points: torch.Tensor, footprint: torch.Tensor) -> torch.Tensor:
        """Checker of two colours (faded where tiles alias) times seeded value noise; ``[R, 3]``."""
        x, y = points[:, 0], points[:, 1]
        checker = torch.remainder(torch.floor(x / CHECKER_TILE) + torch.floor(y / CHECKER_TILE), 2.0)  # [R]
        mix = 0.5 + (checker - 0.5) * _contrast_fade(footprint, 2 * CHECKER_TILE)
        colour = self._ground[0] + (self._ground[1] - self._ground[0]) * mix[:, None]
        noise = torch.zeros_like(x)
        for cell, weight, shift in zip(NOISE_CELLS, NOISE_WEIGHTS, (0.0, 17.3)):
            octave = self._value_noise(x / cell + shift, y / cell + shift)
            noise = noise + weight * octave * _contrast_fade(footprint, 2 * cell)
        return colour * (1.0 + self.scene.style.ground_noise * noise)[:, None]

    def _object_surface(
        self, p_rel: torch.Tensor, obj: torch.Tensor, footprint_scale: torch.Tensor, unit: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """World normals ``[R, 3]`` and textured albedo ``[R, 3]`` at points ``p_rel`` relative to object centres."""
        shape, half = self._shape[obj], self._half[obj]  # [R], [R, 3]
        cos, sin = self._cos[obj], self._sin[obj]
        lx = cos * p_rel[:, 0] + sin * p_rel[:, 1]  # object-local coordinates (undo the yaw)
        ly = -sin * p_rel[:, 0] + cos * p_rel[:, 1]
        lz = p_rel[:, 2]
        local = torch.stack([lx, ly, lz], -1)  # [R, 3]

        # Box: the face whose slab the point sits on (largest |l| - h). Cylinder: cap or side, same rule.
        gap = local.abs() - half  # [R, 3]
        axis = gap.argmax(-1)  # [R]
        n_box = torch.nn.functional.one_hot(axis, 3).float() * torch.sign(local)
        radial = torch.sqrt(lx * lx + ly * ly).clamp(min=1e-12)
        on_cap = (lz.abs() - half[:, 2]) > (radial - half[:, 0])
        n_cyl_side = torch.stack([lx / radial, ly / radial, torch.zeros_like(lx)], -1)
        n_cyl_cap = torch.stack([torch.zeros_like(lz), torch.zeros_like(lz), torch.sign(lz)], -1)
        n_cyl = torch.where(on_cap[:, None], n_cyl_cap, n_cyl_side)
        n_sph = local / local.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        n_local = torch.where(
            (shape == SHAPE_BOX)[:, None], n_box, torch.where((shape == SHAPE_CYLINDER)[:, None], n_cyl, n_sph)
        )
        normal = torch.stack(
            [cos * n_local[:, 0] - sin * n_local[:, 1], sin * n_local[:, 0] + cos * n_local[:, 1], n_local[:, 2]], -1
        )
        normal = torch.where(((normal * unit).sum(-1) > 0)[:, None], -normal, normal)  # face the camera

        # Texture pattern in object-local coordinates, faded where it would alias.
        cosine = (normal * unit).sum(-1).abs().clamp(min=0.2)
        footprint = footprint_scale / cosine  # [R] metres covered by a pixel on the surface
        texture = self._texture[obj]
        stripes = torch.remainder(torch.floor(lz / STRIPE_WIDTH), 2.0)
        cells = torch.floor(local / CHECKER_CELL).sum(-1)
        checks = torch.remainder(cells, 2.0)
        g = local / DOT_SPACING - torch.round(local / DOT_SPACING)  # [R, 3] offset to the nearest lattice point
        tangential = (g * g).sum(-1) - (g * n_local).sum(-1) ** 2  # squared, normal component removed
        dots = (tangential.clamp(min=0.0) < (DOT_RADIUS / DOT_SPACING) ** 2).float()
        mask = torch.zeros_like(lz)  # [r] 1 where the pattern darkens the albedo
        for name, pattern, period in (
            ("striped", stripes, 2 * STRIPE_WIDTH),
            ("checkered", checks, 2 * CHECKER_CELL),
            ("dotted", dots, 2 * DOT_RADIUS),
        ):
            mask = torch.where(texture == _TEXTURE_CODE[name], pattern * _contrast_fade(footprint, period), mask)
        albedo = self._albedo[obj] * (1.0 - (1.0 - PATTERN_DARK) * mask)[:, None]
        return normal, albedo

    def _shade(
        self,
        dirs: torch.Tensor,
        t: torch.Tensor,
        ids: torch.Tensor,
        points: torch.Tensor,
        oc: torch.Tensor | None,
        frame: torch.Tensor,
        origin: torch.Tensor,
    ) -> torch.Tensor:
        """uint8 colours ``[R, 3]``: Lambert-lit albedo, exponential fog, sky, and a fade to sky near ``far``.

        Each kind of surface is shaded only on its own rays (gathered by index): object shading is the most
        expensive part and usually covers a small fraction of the image.
        """
        style, far = self.scene.style, self.scene.far
        length = dirs.norm(dim=-1)  # [R]
        unit = dirs / length[:, None]
        distance = t * length  # metres along the ray
        footprint_scale = distance / self._focal  # metres a pixel spans facing the camera
        colour = torch.zeros_like(dirs)  # [R, 3]

        rows = (ids == 0).nonzero()[:, 0]  # ground
        if len(rows):
            up = torch.where(origin[frame[rows], 2] >= 0, 1.0, -1.0)  # the side of the plane facing the camera
            footprint = footprint_scale[rows] / unit[rows, 2].abs().clamp(min=0.02)
            light = style.ambient + (1.0 - style.ambient) * (up * self._sun_dir[2]).clamp(min=0.0)
            colour[rows] = self._ground_albedo(points[rows], footprint) * light[:, None]

        rows = (ids > 0).nonzero()[:, 0]  # objects
        if len(rows) and oc is not None:
            obj = ids[rows] - 1
            p_rel = t[rows, None] * dirs[rows] - oc[frame[rows], obj]  # [r, 3] hit point relative to the centre
            normal, albedo = self._object_surface(p_rel, obj, footprint_scale[rows], unit[rows])
            light = style.ambient + (1.0 - style.ambient) * (normal * self._sun_dir).sum(-1).clamp(min=0.0)
            colour[rows] = albedo * light[:, None]

        colour = colour * self._sun_colour
        keep = torch.exp(-style.fog_density * distance)[:, None]
        colour = self._fog_colour + (colour - self._fog_colour) * keep

        # Sky rays take the sky colour; surfaces close to the far clip fade into it so there is no seam.
        fade = _smoothstep(0.6 * far, far, t)  # [R]
        fade = torch.where(ids < 0, 1.0, fade)
        rows = (fade > 0).nonzero()[:, 0]
        if len(rows):
            w = fade[rows, None]
            colour[rows] = colour[rows] * (1.0 - w) + self._sky(unit[rows]) * w
        return torch.round(colour.clamp(0.0, 1.0) * 255.0).to(torch.uint8)


# ---------------------------------------------------------------------------------------------- hits


def _merge_hits(
    t: torch.Tensor, ray: torch.Tensor, ids: torch.Tensor, t_best: torch.Tensor, id_best: torch.Tensor
) -> None:
    """Fold candidate hits ``t [P]`` of rays ``ray [P]`` into the running nearest hit, in place.

    Uses per-ray minima (order independent, so deterministic); among equal nearest ``t`` the lowest id wins.
    """
    hit = torch.isfinite(t)
    if not bool(hit.any()):
        return
    t, ray, ids = t[hit], ray[hit], ids[hit]
    nearest = torch.full_like(t_best, torch.inf).scatter_reduce_(0, ray, t, "amin")  # [R]
    wins = t == nearest[ray]
    winner = torch.full_like(id_best, torch.iinfo(torch.int64).max).scatter_reduce_(0, ray[wins], ids[wins], "amin")
    better = nearest < t_best
    t_best.copy_(torch.where(better, nearest, t_best))
    id_best.copy_(torch.where(better, winner, id_best))


def _first_positive(t0: torch.Tensor, t1: torch.Tensor) -> torch.Tensor:
    """The nearer of two hit parameters that exceeds ``T_MIN`` (``inf`` if neither does); ``t0 <= t1``."""
    inf = torch.full_like(t0, torch.inf)
    return torch.where(t0 > T_MIN, t0, torch.where(t1 > T_MIN, t1, inf))


def _quadratic_roots(
    a: torch.Tensor, b: torch.Tensor, c: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Roots ``t0 <= t1`` of ``a t^2 - 2 b t + c = 0`` (``a > 0``) without cancellation, and whether they are real."""
    disc = b * b - a * c
    real = disc >= 0
    q = b + torch.copysign(torch.sqrt(disc.clamp(min=0.0)), b)  # |q| >= |b|: no cancellation
    q = torch.where(q == 0, torch.full_like(q, 1e-30), q)
    r0, r1 = q / a, c / q
    return torch.minimum(r0, r1), torch.maximum(r0, r1), real


def _hit_sphere(d: torch.Tensor, c: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Ray ``t d`` (from the origin) against spheres of centre ``c [P, 3]``, radius ``r [P]``; ``t`` or ``inf``."""
    a = (d * d).sum(-1)
    b = (d * c).sum(-1)
    cc = (c * c).sum(-1) - r * r
    t0, t1, real = _quadratic_roots(a, b, cc)
    return torch.where(real, _first_positive(t0, t1), torch.full_like(a, torch.inf))


def _hit_box(d: torch.Tensor, c: torch.Tensor, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Slab test against boxes of centre ``c``, half sizes ``h`` and yaw (``cos``, ``sin``), in each box's frame."""
    dx = cos * d[:, 0] + sin * d[:, 1]  # ray direction in the box frame
    dy = -sin * d[:, 0] + cos * d[:, 1]
    ox = -(cos * c[:, 0] + sin * c[:, 1])  # ray origin (the camera) in the box frame
    oy = -(-sin * c[:, 0] + cos * c[:, 1])
    dl = torch.stack([dx, dy, d[:, 2]], -1)  # [P, 3]
    ol = torch.stack([ox, oy, -c[:, 2]], -1)
    dl = torch.where(dl.abs() < 1e-12, torch.full_like(dl, 1e-12), dl)  # parallel rays: huge but finite slabs
    inv = 1.0 / dl
    ta, tb = (-h - ol) * inv, (h - ol) * inv  # [P, 3]
    t_near = torch.minimum(ta, tb).amax(-1)
    t_far = torch.maximum(ta, tb).amin(-1)
    t = _first_positive(t_near, t_far)
    return torch.where(t_near <= t_far, t, torch.full_like(t, torch.inf))


def _hit_cylinder(d: torch.Tensor, c: torch.Tensor, r: torch.Tensor, hh: torch.Tensor) -> torch.Tensor:
    """Vertical capped cylinders (centre ``c``, radius ``r``, half height ``hh``): side and both caps."""
    inf = torch.full_like(r, torch.inf)
    a = (d[:, 0] ** 2 + d[:, 1] ** 2).clamp(min=1e-12)
    b = d[:, 0] * c[:, 0] + d[:, 1] * c[:, 1]
    cc = c[:, 0] ** 2 + c[:, 1] ** 2 - r * r
    t0, t1, real = _quadratic_roots(a, b, cc)

    def on_side(t: torch.Tensor) -> torch.Tensor:
        ok = real & (t > T_MIN) & ((t * d[:, 2] - c[:, 2]).abs() <= hh)
        return torch.where(ok, t, inf)

    dz = torch.where(d[:, 2] == 0, torch.full_like(a, 1e-30), d[:, 2])

    def on_cap(z: torch.Tensor) -> torch.Tensor:
        t = z / dz
        px, py = t * d[:, 0] - c[:, 0], t * d[:, 1] - c[:, 1]
        ok = (t > T_MIN) & (px * px + py * py <= r * r)
        return torch.where(ok, t, inf)

    sides = torch.minimum(on_side(t0), on_side(t1))
    caps = torch.minimum(on_cap(c[:, 2] - hh), on_cap(c[:, 2] + hh))
    return torch.minimum(sides, caps)
