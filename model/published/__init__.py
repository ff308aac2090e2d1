"""LongVie 2's published weights (``control.safetensors``, ``dit.safetensors``) on a Wan2.1-I2V base, read into and
written from :class:`~model.transformer.LongVieTransformer`; docs/full-size-weights.md is the guide.

* :mod:`~model.published.names`: the release's file names, key prefixes and :data:`RENAME_MAP`, the one table
  between its (original Wan) key names and lv2's, read both ways by :func:`to_lv2_name` / :func:`to_published_name`.
* :mod:`~model.published.report`: :class:`LoadReport` (what a load did) and :class:`WeightsMismatchError`.
* :mod:`~model.published.loading`: :func:`load_longvie_weights`, strict by default, one tensor at a time.
* :mod:`~model.published.export`: :func:`export_longvie_weights`, the same two files in the published naming.
* :mod:`~model.published.wan_base`: :func:`load_wan_base`, the Wan2.1-I2V transformer from a local directory.
* :mod:`~model.published.assembly`: :func:`build_longvie_from_published`, the full model from all three.
"""

from model.published.assembly import build_longvie_from_published
from model.published.export import export_longvie_weights
from model.published.loading import load_longvie_weights
from model.published.names import (
    CONTROL_FILE,
    CONTROL_PREFIXES,
    DIT_FILE,
    DIT_PREFIXES,
    RENAME_MAP,
    split_prefix,
    strip_prefix,
    to_lv2_name,
    to_published_name,
)
from model.published.report import LoadReport, WeightsMismatchError
from model.published.wan_base import load_wan_base

__all__ = [
    "CONTROL_FILE",
    "CONTROL_PREFIXES",
    "DIT_FILE",
    "DIT_PREFIXES",
    "RENAME_MAP",
    "LoadReport",
    "WeightsMismatchError",
    "build_longvie_from_published",
    "export_longvie_weights",
    "load_longvie_weights",
    "load_wan_base",
    "split_prefix",
    "strip_prefix",
    "to_lv2_name",
    "to_published_name",
]
