"""Load and export LongVie 2's published weights (``control.safetensors``, ``dit.safetensors``).

The release is an overlay on a stock Wan2.1-I2V-14B-480P, written in the *original* Wan naming of
DiffSynth-Studio, while :class:`~model.transformer.LongVieTransformer` is built from diffusers modules:

* ``control.safetensors``: both control branches (``control_blocks_{dense,sparse}.{i}.<Wan block>``), the
  input projections, the shared text / timestep projections and the fusion layers. Keys may carry the prefix
  ``pipe.dual_controller.`` (or ``dual_controller.``).
* ``dit.safetensors``: the retrained self-attention (q, k, v, o, norm_q, norm_k) of every base block,
  ``blocks.{i}.self_attn.*``, optionally prefixed ``pipe.dit.`` / ``dit.`` / ``model.diffusion_model.``.
  Everything else of the base comes from the Wan2.1-I2V checkpoint itself (:func:`load_wan_base`).

Names are translated by ONE table, :data:`RENAME_MAP`, read in both directions (:func:`to_lv2_name`,
:func:`to_published_name`), so loading and exporting can never disagree. The Wan block part of it is the same
correspondence as diffusers' own converter (``convert_wan_transformer_to_diffusers``): ``self_attn``/``cross_attn``
-> ``attn1``/``attn2``, ``q/k/v/o`` -> ``to_q/to_k/to_v/to_out.0``, ``k_img/v_img`` -> ``add_k_proj/add_v_proj``,
``norm_k_img`` -> ``norm_added_k``, the original ``norm3`` (the cross-attention norm, the only block norm with
weights) -> diffusers ``norm2``, ``ffn.0/ffn.2`` -> ``ffn.net.0.proj/ffn.net.2``, ``modulation`` ->
``scale_shift_table``.

Loading is strict by default and reports every missing and unexpected key (a silently half-loaded 14B model
produces plausible but wrong video). Tensors are read one at a time from the memory-mapped file and can be
*assigned* into a model built on the ``meta`` device, so the peak memory of a load is the model plus one tensor.
:func:`build_longvie_from_published` puts it together for the full size; docs/full-size-weights.md is the guide.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import torch
from diffusers import WanTransformer3DModel
from diffusers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFETENSORS_WEIGHTS_NAME
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from model.clips import CONTROL_MODALITIES
from model.transformer import LongVieTransformer

logger = logging.getLogger(__name__)

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


def _rename(key: str, forward: bool) -> str:
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
    return _rename(strip_prefix(key), forward=True)


def to_published_name(key: str) -> str:
    """:class:`LongVieTransformer` state-dict name -> published name (no prefix). Inverse of :func:`to_lv2_name`."""
    return _rename(key, forward=False)


# ---------------------------------------------------------------------------------------------------------------
# Reports and errors
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class LoadReport:
    """What a load did. ``missing`` are lv2 parameter names the files did not provide; ``unexpected`` are file
    keys (as written in the file) that name no parameter of the model; ``prefixes`` says, per file, how many keys
    had which prefix stripped (``""``: none); ``renamed`` pairs every loaded file key with the lv2 parameter it
    went into. The authors' own loader strips and renames nothing (their model uses the file's names), so these
    two say exactly where lv2 reads the files differently."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    prefixes: dict[str, dict[str, int]] = field(default_factory=dict)
    renamed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unexpected

    def describe(self) -> list[str]:
        """The renamings as lines (block indices folded into ``{i}``, one line per pattern), then any missing or
        unexpected keys: what ``lv2 generate --verbose`` prints."""
        lines = []
        for path, counts in self.prefixes.items():
            for prefix, count in counts.items():
                what = f"prefix {prefix!r} stripped" if prefix else "no prefix"
                lines.append(f"{path}: {count} keys, {what}")
        patterns: dict[tuple[str, str], int] = defaultdict(int)
        for file_key, name in self.renamed:
            patterns[_fold_index(strip_prefix(file_key)), _fold_index(name)] += 1
        lines.append(f"{len(self.renamed)} tensors loaded, renamed from the published (Wan) names to lv2's:")
        lines += [f"  {source} -> {target}" + (f"  ({n} keys)" if n > 1 else "") for (source, target), n in patterns.items()]
        if self.missing:
            lines.append(f"{len(self.missing)} parameters missing from the files (zero-filled): " + ", ".join(self.missing[:10]))
        if self.unexpected:
            lines.append(f"{len(self.unexpected)} file keys unused: " + ", ".join(self.unexpected[:10]))
        return lines


class WeightsMismatchError(ValueError):
    """The files and the model disagree. Carries the complete lists; the message groups and truncates them."""

    def __init__(
        self,
        what: str,
        missing: list[str] | None = None,
        unexpected: list[str] | None = None,
        mismatched: list[tuple[str, str, tuple[int, ...], tuple[int, ...]]] | None = None,
    ) -> None:
        self.missing = list(missing or [])
        self.unexpected = list(unexpected or [])
        #: (file key, lv2 name, shape in the file, shape in the model)
        self.mismatched = list(mismatched or [])
        super().__init__(self._message(what))

    def _message(self, what: str, limit: int = 40) -> str:
        counts = f"{len(self.missing)} missing, {len(self.unexpected)} unexpected, {len(self.mismatched)} wrong shape"
        lines = [f"{what}: the weights and the model do not match ({counts}); the full lists are on this "
                 "exception's `missing`, `unexpected` and `mismatched` attributes."]
        if self.mismatched:
            lines.append("wrong shape (file key -> lv2 name: file shape vs model shape):")
            lines += [f"  {k} -> {n}: file has {list(a)}, model expects {list(b)}" for k, n, a, b in self.mismatched[:limit]]
            if len(self.mismatched) > limit:
                lines.append(f"  ... and {len(self.mismatched) - limit} more")
        if self.missing:
            lines.append("missing (model parameters no file key provides; [published name] where there is one):")
            lines += _grouped(self.missing, limit, show_source=True)
        if self.unexpected:
            lines.append("unexpected (file keys that name no parameter of this model):")
            lines += _grouped(self.unexpected, limit, show_source=False)
        return "\n".join(lines)


_BLOCK_INDEX = re.compile(r"\.\d+\.")


def _fold_index(key: str) -> str:
    """``key`` with its block index (its first number) written ``{i}``."""
    return _BLOCK_INDEX.sub(".{i}.", key, count=1)


def _grouped(keys: list[str], limit: int, show_source: bool) -> list[str]:
    """One line per key pattern (block index folded into ``{i}``), so 1,000s of keys stay readable.
    ``show_source``: the keys are lv2 names; also show the published name they would be loaded from."""
    groups: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        groups[_fold_index(key)].append(key)
    lines = []
    for pattern, members in list(groups.items())[:limit]:
        single = len(members) == 1
        label = members[0] if single else f"{pattern}  ({len(members)} keys)"
        if show_source:
            try:
                source = to_published_name(members[0])
                label += f"  [{source if single else _fold_index(source)}]"
            except ValueError:
                pass
        lines.append("  " + label)
    if len(groups) > limit:
        rest = sum(len(m) for m in list(groups.values())[limit:])
        lines.append(f"  ... and {len(groups) - limit} more patterns ({rest} keys)")
    return lines


# ---------------------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    file_key: str  # as written in the file
    name: str  # lv2 parameter name
    prefix: str  # the prefix stripped from file_key ("" for none)


def _require_file(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path} (expected a .safetensors file)")
    return path


def _plan(
    path: Path, prefixes: tuple[str, ...], domain: str, parameters: dict[str, torch.Tensor]
) -> tuple[list[_Entry], list[str], list[tuple[str, str, tuple[int, ...], tuple[int, ...]]]]:
    """Read the file's keys and shapes (no tensor data) and sort them into loadable, unexpected and wrong-shape.

    A file whose parameter keys carry more than one of the known prefixes (or some one and some none) is
    refused: two copies of the model's weights may be in it, and which one is meant cannot be told."""
    entries: list[_Entry] = []
    unexpected: list[str] = []
    mismatched = []
    seen: dict[str, str] = {}
    with safe_open(str(path), framework="pt") as handle:
        for file_key in handle.keys():
            prefix, rest = split_prefix(file_key, prefixes)
            try:
                name = _rename(rest, forward=True)
            except ValueError:
                unexpected.append(file_key)
                continue
            if not name.startswith(domain) or name not in parameters:
                unexpected.append(file_key)
                continue
            if name in seen:
                raise ValueError(f"{path}: ambiguous: the keys {seen[name]!r} and {file_key!r} both name the parameter "
                                 f"{name!r} once their prefixes are stripped; keep one copy in the file")
            seen[name] = file_key
            shape = tuple(handle.get_slice(file_key).get_shape())
            if shape != tuple(parameters[name].shape):
                mismatched.append((file_key, name, shape, tuple(parameters[name].shape)))
                continue
            entries.append(_Entry(file_key, name, prefix))
    used = defaultdict(int)
    for entry in entries:
        used[entry.prefix] += 1
    if len(used) > 1:
        counts = ", ".join(f"{p or '(none)'}: {n} keys" for p, n in used.items())
        raise ValueError(f"{path}: ambiguous: its keys carry different prefixes ({counts}); a file of the release "
                         "uses one prefix throughout, so this one may hold two models' weights. Keep one prefix")
    return entries, unexpected, mismatched


def _owned(tensor: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """``tensor`` in memory of its own. A tensor read from a safetensors file may share the file's buffer, which
    is not 64-byte aligned: assigned as a parameter it makes CPU matmuls take other kernels (results differ in
    the last bits from the same weights loaded elsewhere) and keeps the file's memory alive."""
    return tensor.clone() if tensor.data_ptr() == source.data_ptr() else tensor


def _set_parameter(model: nn.Module, name: str, value: torch.Tensor, assign: bool) -> None:
    """Load one tensor into ``model``'s parameter ``name`` (copy, or replace it when ``assign``)."""
    owner_name, _, leaf = name.rpartition(".")
    owner = model.get_submodule(owner_name)
    current = owner._parameters[leaf]
    converted = value.to(dtype=current.dtype, device="cpu" if current.is_meta else current.device)
    owner.load_state_dict({leaf: _owned(converted, value) if assign else converted}, strict=False, assign=assign)


def _expected_dit_names(model: LongVieTransformer) -> list[str]:
    return [f"base.blocks.{i}.attn1.{n}" for i, block in enumerate(model.base.blocks) for n, _ in block.attn1.named_parameters()]


@torch.no_grad()
def load_longvie_weights(
    model: LongVieTransformer,
    control_path: str | Path,
    dit_path: str | Path | None = None,
    strict: bool = True,
    assign: bool = False,
    report: LoadReport | None = None,
) -> LoadReport:
    """Load LongVie 2's ``control.safetensors`` (and ``dit.safetensors``) into ``model``.

    Missing keys are the parameters of ``model.control`` the control file does not provide and, when ``dit_path``
    is given, the self-attention parameters of every base block the dit file does not provide. Unexpected keys
    are file keys that name no parameter of the model (a control key must land in ``control.*``, a dit key in
    ``base.blocks.*``; other Wan block weights in the dit file load like the self-attention ones).

    Nothing is written before every file has been checked: with ``strict`` (default) any missing or unexpected
    key raises :class:`WeightsMismatchError`; a shape mismatch raises it whatever ``strict`` says, because such a
    file belongs to another model size. ``strict=False`` loads what matches and returns the lists.

    Tensors are cast to the parameter's dtype. ``assign=True`` replaces the parameters by the loaded tensors
    (``load_state_dict(assign=True)``), which is how a model built on the ``meta`` device gets real weights
    without ever allocating random ones; it is required when the model has meta parameters.

    Returns the :class:`LoadReport` (``report``, filled in, if one is given): what was loaded, the prefixes
    stripped and every renaming. A control file with no key of one of the model's branches is refused (strict)
    naming the branch.
    """
    sources = [(_require_file(control_path, "LongVie 2 control weights"), CONTROL_PREFIXES, "control.")]
    if dit_path is not None:
        sources.append((_require_file(dit_path, "LongVie 2 dit weights"), DIT_PREFIXES, "base.blocks."))
    parameters = dict(model.named_parameters())

    plans = []
    report = report if report is not None else LoadReport()
    mismatched = []
    absent_branches: list[str] = []
    for path, prefixes, domain in sources:
        entries, unexpected, wrong = _plan(path, prefixes, domain, parameters)
        provided = {e.name for e in entries} | {w[1] for w in wrong}
        if domain == "control.":
            absent_branches = [m for m in model.control.modalities
                               if not any(n.startswith(f"control.branches.{m}.") for n in provided)]
        expected = [n for n in parameters if n.startswith("control.")] if domain == "control." else _expected_dit_names(model)
        report.missing += [n for n in expected if n not in provided]
        report.unexpected += unexpected
        mismatched += wrong
        plans.append((path, entries))

    what = " and ".join(str(path) for path, _, _ in sources)
    if strict and absent_branches:
        names = ", ".join(f"{m!r} (no control_blocks_{m}.* keys)" for m in absent_branches)
        raise WeightsMismatchError(f"{what}: the control file lacks the branch(es) {names}, which the model has",
                                   report.missing, report.unexpected, mismatched)
    if mismatched or (strict and not report.ok):
        raise WeightsMismatchError(what, report.missing, report.unexpected, mismatched)
    if not assign:
        on_meta = [e.name for _, entries in plans for e in entries if parameters[e.name].is_meta]
        if on_meta:
            raise ValueError(
                f"{len(on_meta)} parameters to load are on the meta device (first: {on_meta[0]}); "
                "copying into them would do nothing, so load with assign=True"
            )

    for path, entries in plans:
        with safe_open(str(path), framework="pt") as handle:
            counts = report.prefixes.setdefault(str(path), {})
            for entry in entries:
                _set_parameter(model, entry.name, handle.get_tensor(entry.file_key), assign)
                report.loaded.append(entry.name)
                report.renamed.append((entry.file_key, entry.name))
                counts[entry.prefix] = counts.get(entry.prefix, 0) + 1
    if not report.ok:
        logger.warning("loaded %s non-strictly: %d missing, %d unexpected keys", what, len(report.missing), len(report.unexpected))
    return report


# ---------------------------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------------------------


def _published_state(named: Iterator[tuple[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    state = {}
    for name, tensor in named:
        if tensor.is_meta:
            raise ValueError(f"cannot export {name}: it is on the meta device (never loaded)")
        state[to_published_name(name)] = tensor.detach().to("cpu").contiguous()
    return state


def export_longvie_weights(model: LongVieTransformer, directory: str | Path) -> tuple[Path, Path]:
    """Write ``control.safetensors`` (all of ``model.control``) and ``dit.safetensors`` (every base block's
    self-attention) in the published naming, without prefix: the key set of the release, so a fine-tuned model
    can be handed on in the same form. Returns ``(control_path, dit_path)``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    control = _published_state((f"control.{n}", p) for n, p in model.control.named_parameters())
    dit = _published_state(
        (f"base.blocks.{i}.attn1.{n}", p) for i, block in enumerate(model.base.blocks) for n, p in block.attn1.named_parameters()
    )
    control_path, dit_path = directory / CONTROL_FILE, directory / DIT_FILE
    save_file(control, str(control_path), metadata={"format": "pt"})
    save_file(dit, str(dit_path), metadata={"format": "pt"})
    return control_path, dit_path


# ---------------------------------------------------------------------------------------------------------------
# Building the full model from a Wan2.1-I2V directory plus the LongVie 2 files
# ---------------------------------------------------------------------------------------------------------------


def _accelerate_available() -> bool:
    try:
        import accelerate  # noqa: F401
    except ImportError:
        return False
    return True


def _transformer_dir(directory: str | Path) -> Path:
    """The diffusers-layout transformer directory: ``directory`` itself or its ``transformer/`` sub-directory
    (so the root of a Wan2.1-I2V-14B-480P-Diffusers download works too)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"Wan transformer directory not found: {directory}")
    for candidate in (directory, directory / "transformer"):
        if (candidate / "config.json").is_file():
            return candidate
    raise FileNotFoundError(
        f"{directory} is not a diffusers-layout Wan transformer: expected config.json plus "
        f"{SAFETENSORS_WEIGHTS_NAME} (or {SAFE_WEIGHTS_INDEX_NAME} and its shards) in it or in its transformer/ sub-directory"
    )


def _weight_files(directory: Path) -> list[Path]:
    """The safetensors files of a diffusers-layout model: the shards its index names, or the single file."""
    index = directory / SAFE_WEIGHTS_INDEX_NAME
    if index.is_file():
        names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        absent = [n for n in names if not (directory / n).is_file()]
        if absent:
            raise FileNotFoundError(f"{index} names shards that are not there: {absent}")
        return [directory / n for n in names]
    single = directory / SAFETENSORS_WEIGHTS_NAME
    if single.is_file():
        return [single]
    raise FileNotFoundError(
        f"{directory}: no {SAFETENSORS_WEIGHTS_NAME} and no {SAFE_WEIGHTS_INDEX_NAME} (only safetensors weights are read)"
    )


@contextmanager
def _parameters_on_meta() -> Iterator[None]:
    """Build modules with their parameters on the meta device but their buffers real.

    ``torch.device("meta")`` would also put computed buffers (Wan's rotary tables, which no checkpoint holds) on
    meta; here only parameters move, right after registration, so initialisers run on meta for free.
    """
    original = nn.Module.register_parameter

    def register(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        original(module, name, param)
        if param is not None and not param.is_meta:
            module._parameters[name] = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)

    nn.Module.register_parameter = register
    try:
        yield
    finally:
        nn.Module.register_parameter = original


def _load_wan_base_local(directory: Path, torch_dtype: torch.dtype | None) -> WanTransformer3DModel:
    """What ``from_pretrained(low_cpu_mem_usage=True)`` does, without ``accelerate`` (which diffusers needs for
    Wan): parameters built on meta, every tensor checked (strict) and then assigned one at a time from the
    memory-mapped files. Same dtype rule as diffusers: floating tensors become ``torch_dtype`` (float32 when
    None) except those of ``_keep_in_fp32_modules``, which stay float32."""
    config = WanTransformer3DModel.load_config(directory)
    default_dtype = torch.get_default_dtype()
    if torch_dtype is not None and torch_dtype.is_floating_point:
        torch.set_default_dtype(torch_dtype)  # as diffusers does while constructing: buffers follow it
    try:
        with _parameters_on_meta():
            model = WanTransformer3DModel.from_config(config)
    finally:
        torch.set_default_dtype(default_dtype)

    parameters = dict(model.named_parameters())
    files = _weight_files(directory)
    seen: set[str] = set()
    unexpected, mismatched = [], []
    for path in files:
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():
                if key not in parameters:
                    unexpected.append(key)
                    continue
                shape = tuple(handle.get_slice(key).get_shape())
                if shape != tuple(parameters[key].shape):
                    mismatched.append((key, key, shape, tuple(parameters[key].shape)))
                seen.add(key)
    missing = [n for n in parameters if n not in seen]
    if missing or unexpected or mismatched:
        raise WeightsMismatchError(f"Wan transformer weights in {directory}", missing, unexpected, mismatched)

    keep_fp32 = set(model._keep_in_fp32_modules or ())
    with torch.no_grad():
        for path in files:
            with safe_open(str(path), framework="pt") as handle:
                for key in handle.keys():
                    stored = tensor = handle.get_tensor(key)
                    if tensor.is_floating_point():
                        fp32 = torch_dtype is None or keep_fp32.intersection(key.split("."))
                        tensor = tensor.to(torch.float32 if fp32 else torch_dtype)
                    owner_name, _, leaf = key.rpartition(".")
                    model.get_submodule(owner_name).load_state_dict({leaf: _owned(tensor, stored)}, strict=False, assign=True)
    return model.eval()


def load_wan_base(directory: str | Path, torch_dtype: torch.dtype | None = None) -> WanTransformer3DModel:
    """A Wan2.1-I2V transformer from a LOCAL diffusers-layout directory (config.json + one safetensors file, or
    shards with their index). Never downloads; ``directory`` may also be the root of a Wan download that has a
    ``transformer/`` sub-directory.

    With ``accelerate`` installed this is ``WanTransformer3DModel.from_pretrained(directory, local_files_only=True,
    low_cpu_mem_usage=True)``. diffusers cannot load a Wan transformer without ``accelerate`` (its fp32-kept modules
    require low_cpu_mem_usage), so without it an equivalent meta-device loader of this module is used. Either way
    the peak memory is about the model in ``torch_dtype``; pass ``torch.bfloat16`` at full size.
    """
    path = _transformer_dir(directory)
    _weight_files(path)  # a clear "which file is missing" error on both paths
    if not _accelerate_available():
        return _load_wan_base_local(path, torch_dtype)
    model, info = WanTransformer3DModel.from_pretrained(
        str(path), local_files_only=True, use_safetensors=True, torch_dtype=torch_dtype, low_cpu_mem_usage=True,
        output_loading_info=True,
    )
    # diffusers only warns about missing weights (and initialises them randomly): refuse, like the local path.
    if info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"]:
        mismatched = [(k, k, tuple(a), tuple(b)) for k, a, b in info["mismatched_keys"]]
        raise WeightsMismatchError(
            f"Wan transformer weights in {path}", sorted(info["missing_keys"]), sorted(info["unexpected_keys"]), mismatched
        )
    with torch.no_grad():  # same memory as the local path (see _owned): one tensor copied at a time
        for param in model.parameters():
            if param.device.type == "cpu" and param.data_ptr() % 64:
                param.data = param.data.clone()
    return model


def _longvie_config(base: WanTransformer3DModel, control_layers: int) -> dict:
    """LongVieTransformer kwargs for ``base``: its own shape, branches at half the heads and half the FFN."""
    accepted = set(inspect.signature(LongVieTransformer.__init__).parameters) - {"self"}
    config = {k: v for k, v in base.config.items() if k in accepted}
    heads, ffn = base.config.num_attention_heads, base.config.ffn_dim
    if heads % 2 or ffn % 2:
        raise ValueError(f"the control branches are half the base: heads ({heads}) and ffn_dim ({ffn}) must be even")
    config.update(
        patch_size=tuple(base.config.patch_size),
        control_modalities=CONTROL_MODALITIES,
        control_layers=control_layers,
        control_num_attention_heads=heads // 2,
        control_ffn_dim=ffn // 2,
    )
    return config


def build_longvie_from_published(
    wan_transformer_dir: str | Path,
    control_path: str | Path,
    dit_path: str | Path | None,
    control_layers: int = 12,
    strict: bool = True,
    torch_dtype: torch.dtype | None = None,
    report: LoadReport | None = None,
) -> LongVieTransformer:
    """The published LongVie 2 model: Wan2.1-I2V base from ``wan_transformer_dir`` + ``control.safetensors``
    + ``dit.safetensors``.

    The control part is built on the meta device and its weights are assigned straight from the file, so no
    random 2.6B-parameter initialisation happens. With ``strict=False``, parameters the files did not provide
    are set to zero: every zero-filled piece is inert (zero fusion layers add nothing, zeroed blocks are the
    identity), so a partial file degrades to the base model instead of injecting noise. ``report``, if given, is
    filled with what the load did (:func:`load_longvie_weights`). The model is returned
    in eval mode, in ``torch_dtype`` (default float32) except the modules diffusers keeps in float32 for Wan
    (``scale_shift_table``, norms, rotary, time embedder), in the base and in the branches alike.
    """
    for path, what in ((control_path, "LongVie 2 control weights"), (dit_path, "LongVie 2 dit weights")):
        if path is not None:
            _require_file(path, what)  # fail before the (slow) base load
    config = WanTransformer3DModel.load_config(_transformer_dir(wan_transformer_dir))
    if config.get("in_channels") != 36 or config.get("image_dim") is None:
        raise ValueError(
            f"{wan_transformer_dir} holds a Wan transformer with in_channels={config.get('in_channels')}, "
            f"image_dim={config.get('image_dim')}; LongVie 2 needs the I2V one (in_channels=36, image cross-attention)"
        )
    base = load_wan_base(wan_transformer_dir, torch_dtype=torch_dtype)
    with torch.device("meta"):
        model = LongVieTransformer(**_longvie_config(base, control_layers))
    model.base = base
    # The branches are Wan blocks: they follow the base's dtype rule (modulation tables and norms kept in fp32).
    dtype = torch.float32 if torch_dtype is None else torch_dtype
    keep_fp32 = set(WanTransformer3DModel._keep_in_fp32_modules or ())
    for name, param in model.control.named_parameters():
        owner_name, _, leaf = name.rpartition(".")
        wanted = torch.float32 if keep_fp32.intersection(name.split(".")) else dtype
        model.control.get_submodule(owner_name)._parameters[leaf] = nn.Parameter(
            param.to(wanted), requires_grad=param.requires_grad
        )

    report = load_longvie_weights(model, control_path, dit_path, strict=strict, assign=True, report=report)
    for name in report.missing:
        owner_name, _, leaf = name.rpartition(".")
        owner = model.get_submodule(owner_name)
        param = owner._parameters[leaf]
        if param.is_meta:
            owner._parameters[leaf] = nn.Parameter(torch.zeros(param.shape, dtype=param.dtype), requires_grad=param.requires_grad)
    leftover = [n for n, p in model.named_parameters() if p.is_meta]
    if leftover:  # cannot happen unless LongVieTransformer grows parameters outside control/base
        raise RuntimeError(f"parameters left on the meta device after loading: {leftover[:10]}")
    return model.eval()

