"""The published names: LongVie 2's file names and key prefixes, and :data:`RENAME_MAP`, the one table between
the release's key names (the original Wan naming of DiffSynth-Studio) and :class:`~model.transformer.LongVieTransformer`'s.

The release is an overlay on a stock Wan2.1-I2V-14B-480P: ``control.safetensors`` holds both control branches
(``control_blocks_{dense,sparse}.{i}.<Wan block>``), the input projections, the shared text / timestep projections
and the fusion layers, its keys possibly prefixed ``pipe.dual_controller.`` (or ``dual_controller.``);
``dit.safetensors`` holds the retrained self-attention (q, k, v, o, norm_q, norm_k) of every base block,
``blocks.{i}.self_attn.*``, optionally prefixed ``pipe.dit.`` / ``dit.`` / ``model.diffusion_model.``.

The table is read in both directions (:func:`to_lv2_name`, :func:`to_published_name`), so loading and exporting can
never disagree. Its Wan block part is the same correspondence as diffusers' own converter
(``convert_wan_transformer_to_diffusers``): ``self_attn``/``cross_attn`` -> ``attn1``/``attn2``, ``q/k/v/o`` ->
``to_q/to_k/to_v/to_out.0``, ``k_img/v_img`` -> ``add_k_proj/add_v_proj``, ``norm_k_img`` -> ``norm_added_k``, the
original ``norm3`` (the cross-attention norm, the only block norm with weights) -> diffusers ``norm2``,
``ffn.0/ffn.2`` -> ``ffn.net.0.proj/ffn.net.2``, ``modulation`` -> ``scale_shift_table``.
"""

from __future__ import annotations

import re
from typing import Iterable

# The release's two files (export writes the same names).
CONTROL_FILE = "control.safetensors"
DIT_FILE = "dit.safetensors"

# ---------------------------------------------------------------------------------------------------------------
# The rename map: (published, lv2) templates, read top to bottom, first match wins, in both directions.
#
# A key is a *container* followed, for containers ending in ``*``, by a Wan block parameter. Placeholders:
# ``{m}`` a control modality name (``dense``, ``sparse``, ...), ``{i}`` a block index, ``{p}`` ``weight`` or
# ``bias`` (whether the model really has a bias is the loader's business: it then reports the key as unexpected).
# ---------------------------------------------------------------------------------------------------------------
RENAME_MAP: dict[str, tuple[tuple[str, str], ...]] = {
    "containers": (
        ("control_blocks_{m}.{i}.*", "control.branches.{m}.{i}.*"),
        ("control_initial_combine_linear_{m}.{p}", "control.initial_linears.{m}.{p}"),
        ("control_text_linear.{p}", "control.text_linear.{p}"),
        ("control_t_mod.{p}", "control.time_linear.{p}"),
        ("control_combine_linears.{i}.{p}", "control.combine_linears.{i}.{p}"),
        ("blocks.{i}.*", "base.blocks.{i}.*"),
    ),
    # Inside a Wan block: original Wan -> diffusers WanTransformerBlock.
    "wan_block": (
        ("self_attn.q.{p}", "attn1.to_q.{p}"),
        ("self_attn.k.{p}", "attn1.to_k.{p}"),
        ("self_attn.v.{p}", "attn1.to_v.{p}"),
        ("self_attn.o.{p}", "attn1.to_out.0.{p}"),
        ("self_attn.norm_q.{p}", "attn1.norm_q.{p}"),
        ("self_attn.norm_k.{p}", "attn1.norm_k.{p}"),
        ("cross_attn.q.{p}", "attn2.to_q.{p}"),
        ("cross_attn.k.{p}", "attn2.to_k.{p}"),
        ("cross_attn.v.{p}", "attn2.to_v.{p}"),
        ("cross_attn.o.{p}", "attn2.to_out.0.{p}"),
        ("cross_attn.k_img.{p}", "attn2.add_k_proj.{p}"),
        ("cross_attn.v_img.{p}", "attn2.add_v_proj.{p}"),
        ("cross_attn.norm_q.{p}", "attn2.norm_q.{p}"),
        ("cross_attn.norm_k.{p}", "attn2.norm_k.{p}"),
        ("cross_attn.norm_k_img.{p}", "attn2.norm_added_k.{p}"),
        ("norm3.{p}", "norm2.{p}"),  # original norm3 is the cross-attention norm; diffusers calls it norm2
        ("ffn.0.{p}", "ffn.net.0.proj.{p}"),
        ("ffn.2.{p}", "ffn.net.2.{p}"),
        ("modulation", "scale_shift_table"),
    ),
}

# Prefixes the release (or re-saves of it) put in front of the keys; stripped before renaming.
CONTROL_PREFIXES: tuple[str, ...] = ("pipe.dual_controller.", "dual_controller.")
DIT_PREFIXES: tuple[str, ...] = ("pipe.dit.", "dit.", "model.diffusion_model.")

_PLACEHOLDERS = {"m": r"(?P<m>[^.]+)", "i": r"(?P<i>\d+)", "p": r"(?P<p>weight|bias)"}


def _compile(template: str) -> re.Pattern[str]:
    """A template -> an anchored regex; a trailing ``*`` captures the rest of the key as ``rest``."""
    tail = template.endswith("*")
    body = template[:-1] if tail else template
    pattern = ""
    for literal, name in re.findall(r"([^{]*)(?:\{(\w)\})?", body):
        pattern += re.escape(literal) + (_PLACEHOLDERS[name] if name else "")
    return re.compile(pattern + ("(?P<rest>.+)" if tail else "") + r"\Z")


def _fill(template: str, match: re.Match[str], rest: str = "") -> str:
    out = template[:-1] if template.endswith("*") else template
    for name, value in match.groupdict().items():
        if name != "rest":
            out = out.replace("{" + name + "}", value)
    return out + rest


def _rules(section: str, forward: bool) -> list[tuple[re.Pattern[str], str]]:
    return [(_compile(a if forward else b), b if forward else a) for a, b in RENAME_MAP[section]]


_RULES = {forward: {s: _rules(s, forward) for s in RENAME_MAP} for forward in (True, False)}


def rename_key(key: str, forward: bool) -> str:
    """``key`` (without prefix) renamed by :data:`RENAME_MAP`: published -> lv2 when ``forward``, else lv2 ->
    published. Raises ValueError for a key no rule covers."""
    naming = ("published", "lv2") if forward else ("lv2", "published")
    for pattern, target in _RULES[forward]["containers"]:
        match = pattern.match(key)
        if match is None:
            continue
        if "rest" not in match.groupdict():
            return _fill(target, match)
        rest = match["rest"]
        for inner, inner_target in _RULES[forward]["wan_block"]:
            inner_match = inner.match(rest)
            if inner_match is not None:
                return _fill(target, match, _fill(inner_target, inner_match))
        known = ", ".join(a if forward else b for a, b in RENAME_MAP["wan_block"])
        raise ValueError(f"{naming[0]} key {key!r}: {rest!r} is not a Wan block parameter; expected one of: {known}")
    known = ", ".join(a if forward else b for a, b in RENAME_MAP["containers"])
    raise ValueError(f"no rename rule covers the {naming[0]} key {key!r}; expected it to start with one of: {known}")


def split_prefix(key: str, prefixes: Iterable[str] = CONTROL_PREFIXES + DIT_PREFIXES) -> tuple[str, str]:
    """``(prefix, rest)``: the first of ``prefixes`` that ``key`` starts with ("" if none), and the key without it."""
    for prefix in prefixes:
        if key.startswith(prefix):
            return prefix, key[len(prefix):]
    return "", key


def strip_prefix(key: str, prefixes: Iterable[str] = CONTROL_PREFIXES + DIT_PREFIXES) -> str:
    """``key`` without the first of ``prefixes`` it starts with (the release saves ``pipe.dual_controller.*``)."""
    return split_prefix(key, prefixes)[1]


def to_lv2_name(key: str) -> str:
    """Published (original Wan) name -> :class:`LongVieTransformer` state-dict name. Known file prefixes
    (``pipe.dual_controller.``, ``pipe.dit.``, ...) are stripped first. Raises ValueError for a key no rule covers."""
    return rename_key(strip_prefix(key), forward=True)


def to_published_name(key: str) -> str:
    """:class:`LongVieTransformer` state-dict name -> published name (no prefix). Inverse of :func:`to_lv2_name`."""
    return rename_key(key, forward=False)

