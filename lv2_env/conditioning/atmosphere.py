"""The fog of a world (:class:`Atmosphere`): how far air hides a surface, and how a colour seen through one depth
of fog shows through another. The world memory renders its start frame's surfels through it
(:mod:`~lv2_env.conditioning.world_memory`), and the procedural styles describe their fog with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A look first seen far off in fog is brought nearer by at most this gain on its difference from the fog colour: the
# fog of a far look leaves little of the surface's own colour, and a larger gain would mostly enlarge its noise.
MAX_DEFOG_GAIN = 4.0


@dataclass(frozen=True)
class Atmosphere:
    """Exponential fog, as the procedural worlds draw it (Koschmieder's law): a surface ``d`` metres away shows
    ``colour + (its own colour - colour) * exp(-density * d)``. A surfel keeps its first look, fog and all; the
    memory's render moves it to the fog of the distance it is seen from now, so ground first seen grey in the
    distance comes out of the fog as the camera walks up to it, as it does in the truth.

    Args:
        colour: the fog's RGB, 0-255.
        density: per metre (0: clear air, and the render is unchanged).
    """

    colour: tuple[float, float, float]
    density: float

    def __post_init__(self) -> None:
        if len(self.colour) != 3 or not all(0.0 <= float(c) <= 255.0 for c in self.colour):
            raise ValueError(f"fog colour must be 3 values in [0, 255], got {self.colour!r}")
        if not float(self.density) >= 0.0:
            raise ValueError(f"fog density must be >= 0 per metre, got {self.density!r}")

    def gain(self, seen_at: np.ndarray, now: np.ndarray) -> np.ndarray:
        """How many times clearer a surface seen ``seen_at`` metres away shows ``now`` metres away: the ratio of
        their transmittances (1 when as far, above 1 when nearer)."""
        return np.exp(float(self.density) * (np.asarray(seen_at, np.float64) - np.asarray(now, np.float64)))

    def refog(self, rgb: np.ndarray, seen_at: np.ndarray, now: np.ndarray,
              max_gain: float | np.ndarray = MAX_DEFOG_GAIN) -> np.ndarray:
        """uint8 ``rgb`` ``[N, 3]`` seen ``seen_at`` metres away ``[N]``, as it shows ``now`` metres away ``[N]``
        (nearer: less fog, the gain on its difference from the fog colour capped at ``max_gain``, one or ``[N]``)."""
        gain = np.minimum(self.gain(seen_at, now), max_gain)[:, None]
        fog = np.asarray(self.colour, np.float32)
        return np.clip(np.rint(fog + (rgb.astype(np.float32) - fog) * gain), 0, 255).astype(np.uint8)
