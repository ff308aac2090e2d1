"""Procedural outdoor worlds with exact geometry, and a vectorised torch ray caster.

:func:`generate_scene` builds a :class:`Scene` from a seed (objects on a ground plane, a style, a caption and a
unique landmark); :class:`Renderer` ray casts it from camera poses into RGB, exact depth, world points and
object ids (:class:`RenderOutput`). Conventions (frames, poses, depth) are those of :mod:`lv2_env.signals.camera`.
"""

from lv2_env.worlds.raycast import Renderer, RenderOutput
from lv2_env.worlds.scene import (
    CAPTION_VOCABULARY,
    COLOURS,
    KINDS,
    TEXTURES,
    Scene,
    SceneObject,
    generate_scene,
)
from lv2_env.worlds.styles import STYLES, Style, get_style

__all__ = [
    "CAPTION_VOCABULARY",
    "COLOURS",
    "KINDS",
    "STYLES",
    "TEXTURES",
    "RenderOutput",
    "Renderer",
    "Scene",
    "SceneObject",
    "Style",
    "generate_scene",
    "get_style",
]
