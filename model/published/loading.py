"""Loading LongVie 2's ``control.safetensors`` and ``dit.safetensors`` into a :class:`LongVieTransformer`:
:func:`load_longvie_weights`.

Strict by default, it reports every missing and unexpected key (a silently half-loaded 14B model produces plausible
but wrong video), and checks every file before writing anything. Tensors are read one at a time from the
memory-mapped file and can be *assigned* into a model built on the ``meta`` device, so the peak memory of a load is
the model plus one tensor.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from model.published.names import CONTROL_PREFIXES, DIT_PREFIXES, rename_key, split_prefix
from model.published.report import LoadReport, WeightsMismatchError
from model.transformer import LongVieTransformer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Entry:
    file_key: str  # as written in the file
    name: str  # lv2 parameter name
    prefix: str  # the prefix stripped from file_key ("" for none)


def require_weights_file(path: str | Path, what: str) -> Path:
    """``path`` as a Path; FileNotFoundError naming it and ``what`` it should hold when it is no file."""
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
                name = rename_key(rest, forward=True)
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
    sources = [(require_weights_file(control_path, "LongVie 2 control weights"), CONTROL_PREFIXES, "control.")]
    if dit_path is not None:
        sources.append((require_weights_file(dit_path, "LongVie 2 dit weights"), DIT_PREFIXES, "base.blocks."))
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
