"""Visual styles of the procedural worlds: sky, sun, fog, ground and object palettes.

A style changes only how a world *looks*, never its geometry, so one layout rendered in several styles gives
pairs of clips that differ in appearance alone (useful both for augmentation and for captions that name the
style). Colours are display RGB floats in ``[0, 1]``; directions are in the world frame of
:mod:`lv2_env.signals.camera` (``z`` up).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lv2_env.conditioning.atmosphere import Atmosphere

RGB = tuple[float, float, float]


def _unit(x: float, y: float, z: float) -> tuple[float, float, float]:
    """Normalise a direction written by hand so the style tables can use readable, unnormalised numbers."""
    v = np.array([x, y, z], dtype=np.float64)
    v /= np.linalg.norm(v)
    return float(v[0]), float(v[1]), float(v[2])


def _check_rgb(field: str, value: tuple) -> None:
    if len(value) != 3 or not all(0.0 <= float(c) <= 1.0 for c in value):
        raise ValueError(f"{field} must be 3 floats in [0, 1], got {value!r}")


@dataclass(frozen=True)
class Style:
    """How a world looks.

    ``sun_direction`` points *toward* the sun (or the moon at night) and must be a unit vector. Objects are lit
    as ``albedo * (ambient + (1 - ambient) * max(0, n . sun)) * sun_colour``; ``ambient`` therefore sets how
    dark the shadowed sides get. Fog is exponential in the distance along the ray: a surface ``d`` metres
    away keeps ``exp(-fog_density * d)`` of its colour. The ground is a two-colour checker whose brightness is
    modulated by ``1 + ground_noise * noise`` with ``noise`` in ``[-1, 1]``. Object colours are transformed by
    first scaling their saturation by ``object_saturation`` and then multiplying by ``object_tint``.
    ``sun_disc`` scales the visible sun (moon) disc and glow in the sky; 0 hides it.
    """

    name: str
    phrase: str
    sky_zenith: RGB
    sky_horizon: RGB
    sun_direction: tuple[float, float, float]
    sun_colour: RGB
    ambient: float
    fog_colour: RGB
    fog_density: float
    ground_colours: tuple[RGB, RGB]
    ground_noise: float
    object_tint: tuple[float, float, float]
    object_saturation: float
    sun_disc: float = 1.0

    def __post_init__(self) -> None:
        for field in ("sky_zenith", "sky_horizon", "sun_colour", "fog_colour"):
            _check_rgb(field, getattr(self, field))
        if len(self.ground_colours) != 2:
            raise ValueError(f"ground_colours must be 2 RGB colours, got {len(self.ground_colours)}")
        for i, colour in enumerate(self.ground_colours):
            _check_rgb(f"ground_colours[{i}]", colour)
        norm = float(np.linalg.norm(self.sun_direction))
        if len(self.sun_direction) != 3 or abs(norm - 1.0) > 1e-6:
            raise ValueError(f"sun_direction must be a unit 3-vector, got {self.sun_direction!r} (norm {norm:.6f})")
        if not 0.0 <= self.ambient <= 1.0:
            raise ValueError(f"ambient must be in [0, 1], got {self.ambient!r}")
        if not self.fog_density >= 0.0:
            raise ValueError(f"fog_density must be >= 0 per metre, got {self.fog_density!r}")
        if not 0.0 <= self.ground_noise <= 1.0:
            raise ValueError(f"ground_noise must be in [0, 1], got {self.ground_noise!r}")
        if len(self.object_tint) != 3 or min(self.object_tint) < 0.0:
            raise ValueError(f"object_tint must be 3 non-negative floats, got {self.object_tint!r}")
        if self.object_saturation < 0.0 or self.sun_disc < 0.0:
            raise ValueError(
                f"object_saturation and sun_disc must be >= 0, got {self.object_saturation!r}, {self.sun_disc!r}"
            )
        if not self.phrase or self.phrase != self.phrase.strip().lower():
            raise ValueError(f"phrase must be a non-empty lower-case caption phrase, got {self.phrase!r}")

    @property
    def atmosphere(self) -> Atmosphere:
        """This style's fog as the world memory renders it (0-255 colour, density per metre)."""
        return Atmosphere(tuple(255.0 * c for c in self.fog_colour), self.fog_density)

    def object_colour(self, rgb: RGB) -> tuple[float, float, float]:
        """An object's base colour under this style: saturation scaled around its luminance, then tinted."""
        c = np.asarray(rgb, dtype=np.float64)
        grey = float(c @ np.array([0.299, 0.587, 0.114]))
        out = (grey + self.object_saturation * (c - grey)) * np.asarray(self.object_tint)
        out = np.clip(out, 0.0, 1.0)
        return float(out[0]), float(out[1]), float(out[2])


STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style(
            name="sunny",
            phrase="a sunny meadow",
            sky_zenith=(0.22, 0.45, 0.85),
            sky_horizon=(0.70, 0.82, 0.95),
            sun_direction=_unit(0.45, 0.35, 0.75),
            sun_colour=(1.0, 0.97, 0.90),
            ambient=0.38,
            fog_colour=(0.74, 0.83, 0.94),
            fog_density=0.004,
            ground_colours=((0.40, 0.62, 0.26), (0.31, 0.52, 0.20)),
            ground_noise=0.22,
            object_tint=(1.0, 1.0, 1.0),
            object_saturation=1.0,
            sun_disc=1.0,
        ),
        Style(
            name="dusk",
            phrase="a field at dusk",
            sky_zenith=(0.16, 0.17, 0.40),
            sky_horizon=(0.96, 0.55, 0.30),
            sun_direction=_unit(-0.80, 0.55, 0.13),
            sun_colour=(1.0, 0.62, 0.36),
            ambient=0.34,
            fog_colour=(0.78, 0.48, 0.38),
            fog_density=0.009,
            ground_colours=((0.42, 0.38, 0.22), (0.34, 0.31, 0.18)),
            ground_noise=0.20,
            object_tint=(1.0, 0.88, 0.78),
            object_saturation=0.9,
            sun_disc=1.0,
        ),
        Style(
            name="night",
            phrase="a field at night",
            sky_zenith=(0.01, 0.02, 0.07),
            sky_horizon=(0.06, 0.09, 0.20),
            sun_direction=_unit(0.30, -0.55, 0.60),
            sun_colour=(0.55, 0.65, 0.95),
            ambient=0.32,
            fog_colour=(0.05, 0.07, 0.16),
            fog_density=0.016,
            ground_colours=((0.20, 0.27, 0.36), (0.15, 0.21, 0.29)),
            ground_noise=0.18,
            object_tint=(0.75, 0.82, 1.0),
            object_saturation=0.65,
            sun_disc=0.7,
        ),
        Style(
            name="snow",
            phrase="a snowy field",
            sky_zenith=(0.45, 0.60, 0.85),
            sky_horizon=(0.86, 0.90, 0.96),
            sun_direction=_unit(0.50, -0.35, 0.50),
            sun_colour=(1.0, 1.0, 1.0),
            ambient=0.48,
            fog_colour=(0.88, 0.90, 0.95),
            fog_density=0.010,
            ground_colours=((0.95, 0.96, 0.98), (0.87, 0.89, 0.94)),
            ground_noise=0.05,
            object_tint=(0.95, 0.97, 1.0),
            object_saturation=0.85,
            sun_disc=0.8,
        ),
        Style(
            name="fog",
            phrase="a foggy field",
            sky_zenith=(0.70, 0.72, 0.75),
            sky_horizon=(0.78, 0.79, 0.80),
            sun_direction=_unit(0.20, 0.40, 0.80),
            sun_colour=(0.92, 0.92, 0.92),
            ambient=0.55,
            fog_colour=(0.77, 0.78, 0.79),
            fog_density=0.070,
            ground_colours=((0.36, 0.46, 0.30), (0.30, 0.40, 0.26)),
            ground_noise=0.15,
            object_tint=(0.95, 0.95, 0.95),
            object_saturation=0.7,
            sun_disc=0.15,
        ),
        Style(
            name="desert",
            phrase="a sandy desert",
            sky_zenith=(0.28, 0.52, 0.85),
            sky_horizon=(0.93, 0.86, 0.72),
            sun_direction=_unit(-0.30, 0.40, 0.85),
            sun_colour=(1.0, 0.95, 0.85),
            ambient=0.42,
            fog_colour=(0.90, 0.82, 0.68),
            fog_density=0.006,
            ground_colours=((0.87, 0.74, 0.52), (0.80, 0.66, 0.45)),
            ground_noise=0.18,
            object_tint=(1.0, 0.97, 0.90),
            object_saturation=0.95,
            sun_disc=1.0,
        ),
    )
}


def get_style(name: str) -> Style:
    """The style called ``name``; a ``ValueError`` lists the valid names otherwise."""
    try:
        return STYLES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown style {name!r}; expected one of {sorted(STYLES)}") from None
