"""Procedural scenes: simple solids scattered on a ground plane, with a caption and a unique landmark.

Geometry is exact and analytic (spheres, yawed boxes and pillars, vertical capped cylinders on the plane
``z = 0``), so depth, world points, object ids and signed distances are ground truth rather than estimates.
Every random choice comes from ``np.random.default_rng(seed)``: the same seed and style give the same scene on
every machine. The style is drawn from the stream even when it is given, so one seed has one *layout* and the
style only changes its look.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from lv2_env.worlds.styles import STYLES, Style, get_style

COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.14, 0.12),
    "orange": (0.95, 0.50, 0.10),
    "yellow": (0.95, 0.85, 0.15),
    "green": (0.20, 0.70, 0.22),
    "blue": (0.15, 0.32, 0.88),
    "purple": (0.52, 0.22, 0.72),
    "pink": (0.96, 0.52, 0.70),
    "white": (0.93, 0.93, 0.93),
    "brown": (0.50, 0.31, 0.15),
    "cyan": (0.12, 0.78, 0.85),
    "grey": (0.50, 0.50, 0.52),
    "black": (0.10, 0.10, 0.11),
}
KINDS = ("box", "sphere", "cylinder", "pillar")
TEXTURES = ("plain", "striped", "checkered", "dotted")
PLURALS = {"box": "boxes", "sphere": "spheres", "cylinder": "cylinders", "pillar": "pillars"}
NUMBER_WORDS = ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")

# Shape codes shared with the renderer: pillars are boxes, and cylinders are boxes with a round footprint.
SHAPE_SPHERE, SHAPE_BOX, SHAPE_CYLINDER = 0, 1, 2
SHAPE_OF_KIND = {"box": SHAPE_BOX, "pillar": SHAPE_BOX, "sphere": SHAPE_SPHERE, "cylinder": SHAPE_CYLINDER}

WORLD_RADIUS = 32.0  # metres: object centres lie within this distance of the origin (dense enough for parallax)
SPAWN_CLEARANCE = 4.0  # metres: horizontal gap between the origin and every object surface
LANDMARK_DISTANCE = (8.0, 20.0)  # metres from the origin to the landmark's centre
OBJECT_GAP = 0.5  # metres between the footprint circles of two objects
NUM_OBJECTS_RANGE = (1, 200)  # accepted by generate_scene
DEFAULT_NUM_OBJECTS = (20, 100)  # drawn uniformly when not given
GROUND_NOISE_SIZE = 32  # cells per side of the periodic ground noise grid
KIND_PROBABILITIES = (0.35, 0.25, 0.25, 0.15)  # box, sphere, cylinder, pillar for non-landmark objects
MAX_PLACEMENT_TRIES = 2000


@dataclass(frozen=True, eq=False)
class SceneObject:
    """One solid resting on the ground.

    ``center`` is the world centre in metres (``z`` = radius for spheres, half height otherwise) and
    ``half_extents`` are half sizes along the object's local axes: ``(hx, hy, hz)`` for boxes and pillars,
    ``(r, r, r)`` for spheres and ``(r, r, half_height)`` for vertical cylinders. ``yaw`` turns boxes and
    pillars about world ``z`` (local to world is ``Rz(yaw)``) and is 0 for round objects.
    """

    kind: str
    colour: str
    texture: str
    center: np.ndarray
    half_extents: np.ndarray
    yaw: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.colour not in COLOURS:
            raise ValueError(f"colour must be one of {sorted(COLOURS)}, got {self.colour!r}")
        if self.texture not in TEXTURES:
            raise ValueError(f"texture must be one of {TEXTURES}, got {self.texture!r}")
        center = np.array(self.center, dtype=np.float64)
        half = np.array(self.half_extents, dtype=np.float64)
        if center.shape != (3,) or half.shape != (3,):
            raise ValueError(f"center and half_extents must have shape (3,), got {center.shape} and {half.shape}")
        if not np.all(half > 0):
            raise ValueError(f"half_extents must be positive, got {half.tolist()}")
        if self.kind in ("sphere", "cylinder") and half[0] != half[1]:
            raise ValueError(f"a {self.kind} needs half_extents (r, r, .), got {half.tolist()}")
        if self.kind == "sphere" and half[2] != half[0]:
            raise ValueError(f"a sphere needs half_extents (r, r, r), got {half.tolist()}")
        if self.kind in ("sphere", "cylinder") and self.yaw != 0.0:
            raise ValueError(f"a {self.kind} is round and takes yaw 0, got {self.yaw!r}")
        center.setflags(write=False)
        half.setflags(write=False)
        object.__setattr__(self, "center", center)
        object.__setattr__(self, "half_extents", half)
        object.__setattr__(self, "yaw", float(self.yaw))

    @property
    def name(self) -> str:
        """What a caption calls it, e.g. ``"red pillar"``."""
        return f"{self.colour} {self.kind}"

    @property
    def footprint_radius(self) -> float:
        """Radius of a vertical cylinder about ``center`` that contains the object (for spacing objects)."""
        if self.kind in ("box", "pillar"):
            return float(np.hypot(self.half_extents[0], self.half_extents[1]))
        return float(self.half_extents[0])

    def identity(self) -> tuple:
        """What makes two objects the same object (equality and hashing)."""
        return (self.kind, self.colour, self.texture, self.center.tobytes(), self.half_extents.tobytes(), self.yaw)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SceneObject) and self.identity() == other.identity()

    def __hash__(self) -> int:
        return hash(self.identity())


@dataclass(frozen=True)
class SceneArrays:
    """All objects packed into arrays for vectorised geometry (row ``k`` is ``scene.objects[k]``)."""

    centers: np.ndarray  # [N, 3] float64
    half_extents: np.ndarray  # [N, 3] float64
    yaw: np.ndarray  # [N] float64
    shapes: np.ndarray  # [N] int64: SHAPE_SPHERE / SHAPE_BOX / SHAPE_CYLINDER
    aabb_half: np.ndarray  # [N, 3] float64: half sizes of the world-axis-aligned box around each object


def _default_ground_noise() -> np.ndarray:
    return np.zeros((GROUND_NOISE_SIZE, GROUND_NOISE_SIZE), dtype=np.float32)


@dataclass(frozen=True, eq=False)
class Scene:
    """A world: its objects, style, caption, landmark (the navigation goal) and ground texture noise.

    ``ground_noise`` is a periodic ``[G, G]`` grid of values in ``[-1, 1]`` that the renderer interpolates to
    vary the ground brightness. ``far`` (metres) is the depth reported for sky pixels, and anything farther
    than it is drawn as sky.
    """

    seed: int
    style: Style
    objects: tuple[SceneObject, ...]
    landmark: int
    caption: str
    ground_noise: np.ndarray = field(default_factory=_default_ground_noise)
    far: float = 150.0

    def __post_init__(self) -> None:
        objects = tuple(self.objects)
        if not all(isinstance(o, SceneObject) for o in objects):
            raise ValueError("objects must all be SceneObject instances")
        if objects and not 0 <= self.landmark < len(objects):
            raise ValueError(f"landmark must index objects (0..{len(objects) - 1}), got {self.landmark!r}")
        noise = np.array(self.ground_noise, dtype=np.float32)
        if noise.ndim != 2 or noise.shape[0] < 2 or noise.shape[0] != noise.shape[1]:
            raise ValueError(f"ground_noise must be a square [G, G] grid with G >= 2, got shape {noise.shape}")
        if not self.far > 0:
            raise ValueError(f"far must be a positive distance in metres, got {self.far!r}")
        noise.setflags(write=False)
        object.__setattr__(self, "objects", objects)
        object.__setattr__(self, "ground_noise", noise)
        object.__setattr__(self, "far", float(self.far))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Scene)
            and (self.seed, self.style, self.objects, self.landmark, self.caption, self.far)
            == (other.seed, other.style, other.objects, other.landmark, other.caption, other.far)
            and np.array_equal(self.ground_noise, other.ground_noise)
        )

    __hash__ = None  # type: ignore[assignment]  # holds an array; equality is by value

    @cached_property
    def arrays(self) -> SceneArrays:
        """The objects packed into arrays (computed once; scenes are immutable)."""
        n = len(self.objects)
        centers = np.array([o.center for o in self.objects], dtype=np.float64).reshape(n, 3)
        half = np.array([o.half_extents for o in self.objects], dtype=np.float64).reshape(n, 3)
        yaw = np.array([o.yaw for o in self.objects], dtype=np.float64)
        shapes = np.array([SHAPE_OF_KIND[o.kind] for o in self.objects], dtype=np.int64)
        c, s = np.abs(np.cos(yaw)), np.abs(np.sin(yaw))
        aabb = half.copy()
        aabb[:, 0] = c * half[:, 0] + s * half[:, 1]
        aabb[:, 1] = s * half[:, 0] + c * half[:, 1]
        for a in (centers, half, yaw, shapes, aabb):
            a.setflags(write=False)
        return SceneArrays(centers=centers, half_extents=half, yaw=yaw, shapes=shapes, aabb_half=aabb)

    def signed_distance(self, points: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Exact signed distance from world points ``[N, 3]`` to the nearest object surface (negative inside).

        Returns ``(distance [N] float64, index [N] int64)`` with the index into ``objects`` of the nearest
        object. The ground is not included (callers handle ``z`` themselves). With no objects the distance is
        ``inf`` and the index ``-1``.
        """
        p = np.asarray(points, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != 3:
            raise ValueError(f"expected points of shape [N, 3], got {p.shape}")
        dist = np.full(len(p), np.inf)
        index = np.full(len(p), -1, dtype=np.int64)
        if not self.objects or len(p) == 0:
            return dist, index
        a = self.arrays
        cos, sin = np.cos(a.yaw), np.sin(a.yaw)  # [M]
        hx, hy, hz = a.half_extents.T  # [M] each
        for start in range(0, len(p), chunk):
            rel = p[start : start + chunk, None, :] - a.centers[None]  # [n, M, 3]
            lx = cos * rel[..., 0] + sin * rel[..., 1]  # [n, M] object-local (undo the yaw)
            ly = -sin * rel[..., 0] + cos * rel[..., 1]
            lz = rel[..., 2]
            qx, qy, qz = np.abs(lx) - hx, np.abs(ly) - hy, np.abs(lz) - hz  # [n, M]
            box = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2 + np.maximum(qz, 0) ** 2)
            box += np.minimum(np.maximum(np.maximum(qx, qy), qz), 0.0)
            qr = np.hypot(lx, ly) - hx  # [n, M] radial gap of a cylinder
            cyl = np.sqrt(np.maximum(qr, 0) ** 2 + np.maximum(qz, 0) ** 2) + np.minimum(np.maximum(qr, qz), 0.0)
            sph = np.sqrt(lx**2 + ly**2 + lz**2) - hx
            d = np.where(a.shapes == SHAPE_BOX, box, np.where(a.shapes == SHAPE_CYLINDER, cyl, sph))  # [n, M]
            k = np.argmin(d, axis=1)  # [n]
            index[start : start + chunk] = k
            dist[start : start + chunk] = np.take_along_axis(d, k[:, None], axis=1)[:, 0]
        return dist, index


# ---------------------------------------------------------------------------------------------- captions


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _count_phrase(count: int, colour: str, kind: str) -> str:
    if count == 1:
        return f"{_article(colour)} {colour} {kind}"
    word = NUMBER_WORDS[count - 2] if count <= 10 else "many"
    return f"{word} {colour} {PLURALS[kind]}"


def make_caption(style: Style, objects: tuple[SceneObject, ...], landmark: int) -> str:
    """``"<style phrase> with a <landmark>, <n> <colour> <kinds> and <m> <colour> <kinds>"``.

    The landmark comes first (it is the goal a text-conditioned agent must find), then the two most numerous
    other (colour, kind) groups; ties go to the order of ``COLOURS`` and ``KINDS`` so captions are stable.
    """
    if not objects:
        return style.phrase
    goal = objects[landmark]
    groups = Counter((o.colour, o.kind) for i, o in enumerate(objects) if i != landmark)
    colour_rank = {c: i for i, c in enumerate(COLOURS)}
    kind_rank = {k: i for i, k in enumerate(KINDS)}
    ranked = sorted(groups.items(), key=lambda kv: (-kv[1], colour_rank[kv[0][0]], kind_rank[kv[0][1]]))
    parts = [f"{_article(goal.colour)} {goal.name}"]
    parts += [_count_phrase(n, colour, kind) for (colour, kind), n in ranked[:2]]
    if len(parts) == 1:
        return f"{style.phrase} with {parts[0]}"
    return f"{style.phrase} with {', '.join(parts[:-1])} and {parts[-1]}"


def caption_words(caption: str) -> list[str]:
    """The words of a caption, lower-cased, without punctuation (how CAPTION_VOCABULARY counts them)."""
    return re.findall(r"[a-z]+", caption.lower())


CAPTION_VOCABULARY: frozenset[str] = frozenset(
    {w for s in STYLES.values() for w in caption_words(s.phrase)}
    | {"with", "a", "an", "and", "many"}
    | set(NUMBER_WORDS)
    | set(COLOURS)
    | set(KINDS)
    | set(PLURALS.values())
)


# ---------------------------------------------------------------------------------------------- generation


def _sample_size(rng: np.random.Generator, kind: str) -> tuple[np.ndarray, float]:
    """Half extents and yaw of a new object of ``kind`` (sizes in the ranges the module docs promise)."""
    if kind == "box":
        half = rng.uniform(0.25, 1.25, size=3)
        return half, float(rng.uniform(0.0, np.pi))
    if kind == "pillar":
        w = rng.uniform(0.2, 0.5)
        return np.array([w, w, rng.uniform(1.5, 4.0)]), float(rng.uniform(0.0, np.pi / 2))
    if kind == "sphere":
        r = rng.uniform(0.4, 1.5)
        return np.array([r, r, r]), 0.0
    r = rng.uniform(0.3, 1.0)  # cylinder
    return np.array([r, r, rng.uniform(0.25, 1.5)]), 0.0


def _make_object(rng: np.random.Generator, kind: str, colour: str, xy: np.ndarray, half: np.ndarray, yaw: float):
    texture = TEXTURES[int(rng.integers(len(TEXTURES)))]
    center = np.array([xy[0], xy[1], half[2]])
    return SceneObject(kind=kind, colour=colour, texture=texture, center=center, half_extents=half, yaw=yaw)


def _ground_noise(rng: np.random.Generator) -> np.ndarray:
    """A periodic grid of values in ``[-1, 1]``, lightly smoothed so the ground looks like patchy grass/sand."""
    g = rng.uniform(-1.0, 1.0, size=(GROUND_NOISE_SIZE, GROUND_NOISE_SIZE))
    g = 0.5 * g + 0.125 * (np.roll(g, 1, 0) + np.roll(g, -1, 0) + np.roll(g, 1, 1) + np.roll(g, -1, 1))
    return (g / np.abs(g).max()).astype(np.float32)


def generate_scene(seed: int, style: str | None = None, num_objects: int | None = None) -> Scene:
    """A random world from ``seed``: 20-100 objects (or ``num_objects``) within ~32 m of the origin.

    The landmark's (colour, kind) pair is unique in the scene and it stands 8-20 m from the origin. No object
    comes within 4 m (horizontally) of the origin, so a camera spawned there is free. Objects do not overlap.
    """
    given_style = None if style is None else get_style(style)  # fail before drawing anything
    if num_objects is not None:
        if isinstance(num_objects, bool) or not isinstance(num_objects, (int, np.integer)):
            expected = list(NUM_OBJECTS_RANGE)
            raise ValueError(f"num_objects must be an integer in {expected} or None, got {num_objects!r}")
        if not NUM_OBJECTS_RANGE[0] <= num_objects <= NUM_OBJECTS_RANGE[1]:
            raise ValueError(f"num_objects must be in {list(NUM_OBJECTS_RANGE)}, got {num_objects}")
    rng = np.random.default_rng(seed)
    style_names = list(STYLES)
    drawn_style = style_names[int(rng.integers(len(style_names)))]
    drawn_count = int(rng.integers(DEFAULT_NUM_OBJECTS[0], DEFAULT_NUM_OBJECTS[1] + 1))
    chosen = get_style(drawn_style) if given_style is None else given_style
    count = drawn_count if num_objects is None else int(num_objects)
    colours = list(COLOURS)

    # The landmark first: its spot is guaranteed free, and later objects avoid its (colour, kind).
    kind = KINDS[int(rng.integers(len(KINDS)))]
    colour = colours[int(rng.integers(len(colours)))]
    half, yaw = _sample_size(rng, kind)
    distance, angle = rng.uniform(*LANDMARK_DISTANCE), rng.uniform(0.0, 2 * np.pi)
    xy = distance * np.array([np.cos(angle), np.sin(angle)])
    placed = [_make_object(rng, kind, colour, xy, half, yaw)]
    landmark_key = (colour, kind)

    centers = np.zeros((count, 2))  # [count, 2] footprint centres placed so far
    radii = np.zeros(count)  # [count]
    centers[0], radii[0] = xy, placed[0].footprint_radius
    for i in range(1, count):
        kind = KINDS[int(rng.choice(len(KINDS), p=KIND_PROBABILITIES))]
        colour = colours[int(rng.integers(len(colours)))]
        if (colour, kind) == landmark_key:
            colour = colours[(colours.index(colour) + 1 + int(rng.integers(len(colours) - 1))) % len(colours)]
        half, yaw = _sample_size(rng, kind)
        radius = float(np.hypot(half[0], half[1])) if kind in ("box", "pillar") else float(half[0])
        for _ in range(MAX_PLACEMENT_TRIES):
            r, turn = WORLD_RADIUS * np.sqrt(rng.uniform()), rng.uniform(0.0, 2 * np.pi)  # uniform over the disc
            xy = r * np.array([np.cos(turn), np.sin(turn)])
            if np.hypot(*xy) - radius < SPAWN_CLEARANCE:
                continue
            gaps = np.hypot(*(centers[:i] - xy).T) - radii[:i] - radius  # [i]
            if np.all(gaps >= OBJECT_GAP):
                break
        else:
            raise RuntimeError(f"could not place object {i} of {count} after {MAX_PLACEMENT_TRIES} tries (seed {seed})")
        placed.append(_make_object(rng, kind, colour, xy, half, yaw))
        centers[i], radii[i] = xy, radius

    order = rng.permutation(count)  # the landmark should not always be objects[0]
    objects = tuple(placed[j] for j in order)
    landmark = int(np.flatnonzero(order == 0)[0])
    noise = _ground_noise(rng)
    caption = make_caption(chosen, objects, landmark)
    return Scene(seed=int(seed), style=chosen, objects=objects, landmark=landmark, caption=caption, ground_noise=noise)
