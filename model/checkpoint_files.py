"""A component's files checked before anything is built from them: its JSON config and its safetensors weights.

A broken file should fail once, early, naming itself and what is wrong. Left alone, the loaders fail late and
vaguely: ``json.loads`` names no file; diffusers' ``from_pretrained`` reports a missing tensor as a "newly
initialized" notice and then dies inside torch with "Cannot copy out of meta tensor; no data!". So every loader of
an lv2 checkpoint's components (``transformer/``, ``vae/``, ``vae-fast/``, ``text_encoder/``, ``depth/``) reads
its config with :func:`read_json_object`, builds its module from it (:func:`build_from_config`; on the meta device
for the diffusers models, which costs nothing) and compares that module's state-dict names and shapes with the
safetensors headers (:func:`check_weights_file`). Any missing, extra or wrongly shaped tensor raises one
:class:`CheckpointWeightsError` naming the file and the keys; only then are the weights read.

Only torch and safetensors are imported here, so the torch-only loaders (the tiny text encoder, the depth network)
do not pull in diffusers for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

Shape = tuple[int, ...]
JsonType = type | tuple[type, ...]

DIFFUSERS_CONFIG_NAME = "config.json"
DIFFUSERS_WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"  # diffusers.utils.SAFETENSORS_WEIGHTS_NAME
INDEX_SUFFIX = ".index.json"  # a sharded ``name.safetensors`` is ``name.safetensors.index.json`` plus its shards
LISTED_KEYS = 20  # keys the message lists per kind of mismatch; the exception carries them all

_JSON_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list",
                    dict: "an object", type(None): "null"}


# ---------------------------------------------------------------------------------------------------- JSON


def read_json(path: str | Path, what: str) -> Any:
    """The parsed contents of the JSON file ``path`` (``what`` it should hold, for the message); a ValueError
    naming the file when it is absent or not valid JSON (truncated, not text)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"expected {what} at {path}, but there is no such file")
    try:
        return json.loads(path.read_bytes())
    except ValueError as error:  # json.JSONDecodeError and UnicodeDecodeError both are
        raise ValueError(f"{path} is not valid JSON: {error}") from error


def read_json_object(
    path: str | Path,
    what: str,
    required: Mapping[str, JsonType] | None = None,
    optional: Mapping[str, JsonType] | None = None,
) -> dict[str, Any]:
    """The JSON object in ``path``, its keys checked by :func:`check_json_keys`; a ValueError naming the file
    when it is not valid JSON, not an object, lacks a ``required`` key or has a key of the wrong type."""
    path = Path(path)
    contents = read_json(path, what)
    if not isinstance(contents, dict):
        raise ValueError(f"{path}: expected a JSON object ({what}), got {_json_type_name(contents)}")
    check_json_keys(contents, path, what, required, optional)
    return contents


def check_json_keys(
    contents: Mapping[str, Any],
    path: str | Path,
    what: str,
    required: Mapping[str, JsonType] | None = None,
    optional: Mapping[str, JsonType] | None = None,
) -> None:
    """Refuse (ValueError naming ``path``) ``contents`` lacking a key of ``required`` or holding a key of
    ``required`` or ``optional`` whose value is not of the given Python type(s) of JSON values (``float`` also
    takes integers; ``int`` does not take true/false). Other keys are let through: configs grow."""
    required, optional = dict(required or {}), dict(optional or {})
    absent = [key for key in required if key not in contents]
    if absent:
        raise ValueError(f"{path}: {what} needs the key(s) {', '.join(map(repr, absent))}, which it lacks "
                         f"(it has {', '.join(map(repr, contents)) or 'no keys'})")
    for key, types in {**optional, **required}.items():
        if key in contents and not _is_json_type(contents[key], types):
            wanted = " or ".join(_JSON_TYPE_NAMES.get(t, t.__name__) for t in _as_tuple(types))
            shown = repr(contents[key])
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            raise ValueError(f"{path}: {key!r} must be {wanted}, got {shown} ({_json_type_name(contents[key])})")


def _as_tuple(types: JsonType) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _is_json_type(value: Any, types: JsonType) -> bool:
    types = _as_tuple(types)
    if isinstance(value, bool):  # bool is an int to Python, not to JSON
        return bool in types
    if isinstance(value, int) and float in types:
        return True
    return isinstance(value, types)


def _json_type_name(value: Any) -> str:
    for kind in (bool, int, float, str, list, dict, type(None)):
        if isinstance(value, kind):
            return _JSON_TYPE_NAMES[kind]
    return type(value).__name__


# ---------------------------------------------------------------------------------------------------- building


def build_from_config(build: Callable[[], nn.Module], config_path: str | Path, what: str, on_meta: bool = False) -> nn.Module:
    """``build()``, a module made from the config in ``config_path``; a ValueError naming that file when its
    values cannot build ``what`` (wrong types or values the constructor refuses). ``on_meta``: build on the meta
    device (no memory, no initialisation), for the state-dict shapes only."""
    try:
        if on_meta:
            with torch.device("meta"):
                return build()
        return build()
    except Exception as error:  # any failure of a constructor given these values means the config is wrong
        raise ValueError(f"{config_path}: cannot build {what} from it: {type(error).__name__}: {error}") from error


def state_shapes(module: nn.Module) -> dict[str, Shape]:
    """Every state-dict entry of ``module`` (what ``save_pretrained`` writes) and its shape."""
    return {name: tuple(tensor.shape) for name, tensor in module.state_dict().items()}


def check_diffusers_model(directory: str | Path, model_class: type, what: str) -> Path:
    """Check a diffusers-layout directory (``config.json`` + ``diffusion_pytorch_model.safetensors`` or its
    shards) before ``model_class.from_pretrained`` reads it: the config must be a JSON object of this class that
    builds one, and the weights must be exactly that model's (:func:`check_weights_file`). Returns the directory."""
    directory = Path(directory)
    config_path = directory / DIFFUSERS_CONFIG_NAME
    model_name = f"{what} ({model_class.__name__})"
    config = read_json_object(config_path, f"the config of {model_name}", optional={"_class_name": str})
    recorded = config.get("_class_name", model_class.__name__)
    if recorded != model_class.__name__:
        raise ValueError(f"{config_path}: expected the config of {model_name}, got the config of a {recorded}")
    model = build_from_config(lambda: model_class.from_config(config), config_path, model_name, on_meta=True)
    check_weights_file(directory, DIFFUSERS_WEIGHTS_NAME, state_shapes(model), f"{model_name} that {config_path} builds")
    return directory


# ---------------------------------------------------------------------------------------------------- weights


class CheckpointWeightsError(ValueError):
    """A component's weight files and the module its config builds disagree.

    The sibling of :class:`model.published.WeightsMismatchError` (which reads LongVie 2's published files through the
    rename map) for files in lv2's own naming, with the same attributes: the complete ``missing`` (model keys no
    file holds), ``unexpected`` (file keys the model lacks) and ``mismatched`` lists, plus the ``files`` read.
    The message names the files and lists the first :data:`LISTED_KEYS` keys of each kind.
    """

    def __init__(
        self,
        what: str,
        files: Sequence[Path],
        missing: list[str],
        unexpected: list[str],
        mismatched: list[tuple[str, str, Shape, Shape]],
        file_of: Mapping[str, Path] | None = None,
    ) -> None:
        self.files = list(files)
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        #: (file key, model key, shape in the file, shape in the model); lv2 writes its own names, so the keys agree
        self.mismatched = list(mismatched)
        super().__init__(self._message(what, dict(file_of or {})))

    def _message(self, what: str, file_of: dict[str, Path]) -> str:
        sharded = len(self.files) > 1
        where = (lambda key: f"  (in {file_of[key].name})") if sharded else (lambda key: "")
        counts = f"{len(self.missing)} missing, {len(self.unexpected)} unexpected, {len(self.mismatched)} of the wrong shape"
        files = f"{self.files[0].parent} (shards {', '.join(f.name for f in self.files)})" if sharded else str(self.files[0])
        lines = [(f"{files} does not hold the weights of {what} ({counts}); the full lists are on this exception's "
                  "`missing`, `unexpected` and `mismatched` attributes.")]
        if self.missing:
            lines.append("missing (the model has them, the file does not):")
            lines += _listed([f"  {key}" for key in self.missing])
        if self.unexpected:
            lines.append("unexpected (in the file, not in the model):")
            lines += _listed([f"  {key}{where(key)}" for key in self.unexpected])
        if self.mismatched:
            lines.append("wrong shape:")
            lines += _listed([f"  {key}: the file has {list(stored)}, the model expects {list(wanted)}{where(key)}"
                              for key, _, stored, wanted in self.mismatched])
        return "\n".join(lines)


def _listed(lines: list[str]) -> list[str]:
    if len(lines) <= LISTED_KEYS:
        return lines
    return lines[:LISTED_KEYS] + [f"  ... and {len(lines) - LISTED_KEYS} more"]


def weight_files(directory: str | Path, file_name: str) -> list[Path]:
    """The safetensors files of a component: the shards ``file_name.index.json`` names when it exists (as
    diffusers and transformers read them), else ``file_name`` itself; a ValueError naming what is absent."""
    directory = Path(directory)
    index_path = directory / (file_name + INDEX_SUFFIX)
    if index_path.is_file():
        index = read_json_object(index_path, f"the index of the shards of {file_name}",
                                 required={"metadata": dict, "weight_map": dict})
        names = index["weight_map"].values()
        if not all(isinstance(name, str) for name in names):
            raise ValueError(f"{index_path}: 'weight_map' must map every tensor name to a shard's file name")
        shards = [directory / name for name in sorted(set(names))]
        absent = [shard.name for shard in shards if not shard.is_file()]
        if absent:
            raise ValueError(f"{index_path} names shards that are not in {directory}: {absent}")
        return shards
    single = directory / file_name
    if not single.is_file():
        found = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else "no such directory"
        raise ValueError(f"expected {file_name} (or {index_path.name} and its shards) in {directory}, found {found}")
    return [single]


def stored_shapes(files: Sequence[Path]) -> tuple[dict[str, Shape], dict[str, Path]]:
    """The tensor names and shapes the safetensors ``files`` hold, read from their headers (no tensor data), and
    the file each is in; a ValueError naming a file that is not safetensors (truncated, say)."""
    shapes: dict[str, Shape] = {}
    file_of: dict[str, Path] = {}
    for path in files:
        try:
            with safe_open(str(path), framework="pt") as handle:
                for key in handle.keys():
                    shapes[key] = tuple(handle.get_slice(key).get_shape())
                    file_of[key] = path
        except SafetensorError as error:
            raise ValueError(f"{path} is not a readable safetensors file: {error}") from error
    return shapes, file_of


def check_weights_file(directory: str | Path, file_name: str, expected: Mapping[str, Shape], what: str) -> list[Path]:
    """Compare the safetensors weights ``file_name`` (or its shards) in ``directory`` with the state-dict names
    and shapes ``expected`` of ``what`` (e.g. "the VAE that vae/config.json builds"), reading headers only.

    Returns the files (to load from) when they hold exactly the expected tensors; raises
    :class:`CheckpointWeightsError` naming the files and every missing, unexpected or wrongly shaped key otherwise.
    """
    files = weight_files(directory, file_name)
    stored, file_of = stored_shapes(files)
    missing = [key for key in expected if key not in stored]
    unexpected = [key for key in stored if key not in expected]
    mismatched = [(key, key, shape, tuple(expected[key])) for key, shape in stored.items()
                  if key in expected and shape != tuple(expected[key])]
    if missing or unexpected or mismatched:
        raise CheckpointWeightsError(what, files, missing, unexpected, mismatched, file_of)
    return files
