"""Flags made from dataclasses, and the generation options the ``lv2`` verbs share.

* :func:`add_dataclass_arguments` / :func:`dataclass_from_args`: one ``--flag-name`` per field of a settings
  dataclass (cleanrl's ``Args`` style: the field's type, default and ``metadata={"help": ...}`` make the flag),
  and the dataclass back from the parsed arguments. A new setting is one field; its flag follows.
* :func:`add_generation_options`: ``--precision``, the denoising steps and ``--decoder``, as ``lv2 rollout``,
  ``play``, ``generate`` and ``eval`` take them.
* :func:`readable_file`, :func:`readable_dir`, :func:`writable_output`, :func:`writable_dir`: a path flag checked
  before a verb starts its work, so a path that cannot be read or written is one line naming the flag, the
  path and the reason (a ``ValueError``, which ``lv2``'s ``main`` prints), not a traceback minutes later.
* :func:`whole_clips`: a duration flag as a whole number of clips, and the note to print when it was not one.
* :data:`ENVS` and :func:`world_env_kwargs`: ``--env``'s names, and World-v0's arguments from the flags
  ``lv2 rollout`` and ``lv2 play`` share.

Nothing here imports torch, av or gymnasium: the parsers are built, and ``--help`` printed, without them.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any, Iterable, Mapping, TypeVar

from lv2_env import UNLIMITED_EPISODE_STEPS
from model.precision import add_precision_argument
from model.presets import CONTROL_ENCODERS, DECODERS, RENDERED_CONDITIONINGS

T = TypeVar("T")

# The types a field may have to become a flag (besides bool, and Optional / Literal of these).
FLAG_TYPES = (int, float, str, Path)


def flag_name(name: str) -> str:
    """``--eval-data`` for the field ``eval_data``."""
    return "--" + name.replace("_", "-")


def _resolved_type(cls: type, f: dataclasses.Field) -> Any:
    """A field's annotation as a type. Under ``from __future__ import annotations`` it is a string, evaluated
    in the dataclass's module (as ``typing.get_type_hints`` does), field by field: a skipped field may be
    annotated with a type imported only for type checking."""
    if not isinstance(f.type, str):
        return f.type
    module = sys.modules.get(cls.__module__)
    try:
        return eval(f.type, dict(vars(module)) if module else {}, {})  # the class's own annotation, as typing does
    except NameError as err:
        raise TypeError(f"{cls.__name__}.{f.name}: its annotation {f.type!r} names a type not imported at run time "
                        f"({err}); skip the field or import the type") from err


def _flag_kind(cls: type, f: dataclasses.Field) -> tuple[type, tuple | None]:
    """``(base type, choices)`` of a field's flag: ``int | None`` gives ``(int, None)``, ``Literal["a", "b"]``
    gives ``(str, ("a", "b"))``."""
    annotation = _resolved_type(cls, f)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) != 1:
            raise TypeError(f"{cls.__name__}.{f.name}: a flag needs one type or Optional of one, got {annotation}")
        annotation, origin = members[0], typing.get_origin(members[0])
    if origin is typing.Literal:
        choices = typing.get_args(annotation)
        kinds = {type(c) for c in choices}
        if len(kinds) != 1 or not kinds <= set(FLAG_TYPES):
            raise TypeError(f"{cls.__name__}.{f.name}: Literal choices must share one of the types "
                            f"{[t.__name__ for t in FLAG_TYPES]}, got {choices}")
        return kinds.pop(), choices
    if annotation is bool or annotation in FLAG_TYPES:
        return annotation, None
    raise TypeError(f"{cls.__name__}.{f.name}: a flag is made for int, float, str, bool, Path, Literal or Optional "
                    f"of one, not {annotation}")


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def add_dataclass_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    skip: Iterable[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> list[str]:
    """Add one flag per init field of the dataclass ``cls`` (but ``skip``); returns the fields added.

    The flag is ``--field-name`` (or ``metadata["flag"]``: one option string or several, the first shown), its
    destination the field's name, its help ``metadata["help"]``, its choices ``metadata["choices"]`` or a
    ``Literal``'s. Types: ``int``, ``float``, ``str``, ``Path`` and ``Optional`` of one take a value; ``bool``
    is a switch (``--flag`` when the default is False, ``--flag`` / ``--no-flag`` when it is True). A field
    with no default is a required flag. ``defaults`` replaces a field's default on the command line only (the
    dataclass keeps its own), and makes a field without one optional."""
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    skip, defaults = set(skip), dict(defaults or {})
    unknown = (skip | set(defaults)) - set(names)
    if unknown:
        raise ValueError(f"{cls.__name__} has no fields {sorted(unknown)}; its fields are {names}")
    added = []
    for f in dataclasses.fields(cls):
        if not f.init or f.name in skip:
            continue
        kind, choices = _flag_kind(cls, f)
        default = defaults[f.name] if f.name in defaults else _field_default(f)
        flags = f.metadata.get("flag", flag_name(f.name))
        flags = (flags,) if isinstance(flags, str) else tuple(flags)
        # argparse %-formats help texts; metadata holds plain text.
        options: dict[str, Any] = {"dest": f.name, "help": f.metadata.get("help", "").replace("%", "%%") or None}
        if kind is bool:
            # --flag / --no-flag where the default is on or undecided (None: the code picks), --flag where it is off.
            options["action"] = argparse.BooleanOptionalAction if default is True or default is None else "store_true"
            options["default"] = False if default is dataclasses.MISSING else default
        else:
            options["type"] = kind
            if default is dataclasses.MISSING:
                options["required"] = True
            else:
                options["default"] = default
            choices = f.metadata.get("choices", choices)
            if choices is not None:
                options["choices"] = tuple(choices)
            if "metavar" in f.metadata:
                options["metavar"] = f.metadata["metavar"]
        parser.add_argument(*flags, **options)
        added.append(f.name)
    return added


def dataclass_from_args(cls: type[T], args: argparse.Namespace, **overrides: Any) -> T:
    """``cls`` from the parsed ``args``: every init field with a value in ``args`` (its flag's destination is
    the field's name), then ``overrides`` (fields that are not flags, or whose value the command computes)."""
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(f"{cls.__name__} has no fields {sorted(unknown)}; its fields are {sorted(fields)}")
    values = {name: getattr(args, name) for name in fields if hasattr(args, name)}
    return cls(**{**values, **overrides})


def add_generation_options(
    parser: argparse.ArgumentParser,
    *,
    steps_flags: tuple[str, ...] = ("--sampling-steps",),
    decoder: bool = False,
    world_only: bool = False,
    conditioning: bool = False,
) -> None:
    """``--precision``, the denoising steps per clip (destination ``sampling_steps``, default None: the
    model's), ``--control-encoder`` and, with ``decoder``, ``--decoder full|fast`` and ``--device``: the options
    of every verb that generates.

    ``steps_flags``: the steps option's spellings, the first shown. ``lv2 rollout`` and ``play`` spell it
    ``--sampling-steps`` (their length is counted in clips, which "steps" would suggest); ``generate`` and
    ``eval`` ``--steps``, and take ``--sampling-steps`` too. ``world_only``: the verb also runs the ground truth,
    which ignores these (said in the help)."""
    scope = "world: " if world_only else ""
    add_precision_argument(parser)
    parser.add_argument(*steps_flags, dest="sampling_steps", type=int, default=None, metavar="STEPS",
                        help=f"{scope}denoising steps per clip (default: the model's)")
    if conditioning:
        parser.add_argument("--conditioning", choices=RENDERED_CONDITIONINGS, default=None,
                            help=f"{scope}what the model is shown along the path: memory (default for the shipped model: "
                            "the world memory of every frame shown) or last_frame (the last frame alone, warped)")
        parser.add_argument("--composite", action=argparse.BooleanOptionalAction, default=None,
                            help=f"{scope}show the world memory's pixels over the generated ones where it holds a "
                            "surface (default: on with --conditioning memory)")
    parser.add_argument("--control-encoder", choices=CONTROL_ENCODERS, default="full",
                        help=f"{scope}what encodes the conditioning videos: full (default: the VAE encoder) or "
                        "distilled (the model's control-encoder/: faster, see docs/performance.md for its cost)")
    if decoder:
        parser.add_argument("--decoder", choices=DECODERS, default="full",
                            help=f"{scope}the VAE decoder: full (default) or fast (distilled: 2-3x faster, a "
                            "little blurrier)")
        parser.add_argument("--device", default="cpu",
                            help=f"{scope}cpu (default), cuda or cuda:N; precision auto picks bf16 on a GPU with it")


# ---------------------------------------------------------------------------------------------------- path flags


def _quoted(flag: str, path: Path) -> str:
    return f"{flag} {str(path)!r}"


def readable_file(path: str | os.PathLike[str] | None, flag: str) -> Path | None:
    """``path`` (given as ``flag``) as a :class:`Path` if it is a file this process can read; else a
    ``ValueError`` saying which and why (no such file, a directory, not a regular file, not readable). ``None``
    (an optional flag not given) stays ``None``."""
    if path is None:
        return None
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{_quoted(flag, path)}: no such file")
    if path.is_dir():
        raise ValueError(f"{_quoted(flag, path)} is a directory; expected a file")
    if not path.is_file():
        raise ValueError(f"{_quoted(flag, path)} is not a regular file")
    if not os.access(path, os.R_OK):
        raise ValueError(f"{_quoted(flag, path)} cannot be read (permission denied)")
    return path


def readable_dir(path: str | os.PathLike[str] | None, flag: str) -> Path | None:
    """``path`` (given as ``flag``) as a :class:`Path` if it is a directory this process can list; else a
    ``ValueError`` saying which and why. ``None`` stays ``None``."""
    if path is None:
        return None
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{_quoted(flag, path)}: no such directory")
    if not path.is_dir():
        raise ValueError(f"{_quoted(flag, path)} is a file; expected a directory")
    if not os.access(path, os.R_OK | os.X_OK):
        raise ValueError(f"{_quoted(flag, path)} cannot be read (permission denied)")
    return path


def _nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (the current directory for a relative path's root)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def writable_dir(path: str | os.PathLike[str] | None, flag: str, create: bool = True) -> Path | None:
    """``path`` (given as ``flag``) as a :class:`Path` to a directory this process can write into: created with
    its parents (``create``, for a verb that writes there now), or, with ``create=False`` (a verb that may write
    there later, as ``lv2 play``'s recordings), checked to be creatable. A ``ValueError`` says why not: a file
    in the way, an ``OSError`` of ``mkdir`` (read-only file system, no such parent, permission), or a directory
    without write permission. ``None`` stays ``None``."""
    if path is None:
        return None
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{_quoted(flag, path)} is a file; expected a directory")
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ValueError(f"{_quoted(flag, path)}: cannot create the directory ({err.strerror or err})") from None
        existing = path
    else:
        existing = _nearest_existing(path)
        if not existing.is_dir():
            raise ValueError(f"{_quoted(flag, path)}: cannot create the directory, {str(existing)!r} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{_quoted(flag, path)}: directory {str(existing)!r} is not writable (permission denied)")
    return path


def writable_output(path: str | os.PathLike[str] | None, flag: str) -> Path | None:
    """``path`` (given as ``flag``) as a :class:`Path` to an output file: not a directory, its parent directory
    created (see :func:`writable_dir`) and writable, the file itself writable if it exists. A ``ValueError``
    says why not. ``None`` stays ``None``."""
    if path is None:
        return None
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{_quoted(flag, path)} is a directory; expected a file path")
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise ValueError(f"{_quoted(flag, path)}: its directory {str(parent)!r} is a file")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"{_quoted(flag, path)}: cannot create its directory {str(parent)!r} "
                         f"({err.strerror or err})") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{_quoted(flag, path)}: directory {str(parent)!r} is not writable (permission denied)")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{_quoted(flag, path)} exists and cannot be overwritten (permission denied)")
    return path


# ---------------------------------------------------------------------------------------------------- durations


def _seconds_text(seconds: float) -> str:
    """``1.0``, ``2.5``; ``0.25`` keeps its second decimal."""
    return f"{seconds:.1f}" if math.isclose(seconds, round(seconds, 1)) else f"{seconds:g}"


def positive_duration(value: float, flag: str) -> float:
    """``value`` of a duration flag if it is a positive finite number; else a ``ValueError`` naming the flag."""
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{flag} {value:g}: expected a positive, finite duration")
    return value


def whole_clips(value: float, flag: str, clip_seconds: float, unit_seconds: float = 1.0,
                doing: str = "rolling out") -> tuple[int, str | None]:
    """A duration flag (``value`` in units of ``unit_seconds``: 1 for ``--seconds``, 60 for ``--minutes``) as a
    whole number of clips of ``clip_seconds`` of new video each: ``(clips, note)``.

    A verb makes whole clips only (a step is one clip), so a duration between two is rounded to the nearer
    (halves up, at least 1 clip) and ``note`` says so in one line, e.g. ``"--seconds 0.3 is 0.3 clips; rolling
    out 1 clip = 1.0 s"``, for the verb to print; a whole number of clips gives ``note=None``. A duration that
    is not a positive finite number raises ``ValueError`` naming the flag (:func:`positive_duration`).
    """
    exact = positive_duration(value, flag) * unit_seconds / clip_seconds
    clips = max(1, math.floor(exact + 0.5))
    if math.isclose(exact, clips, rel_tol=1e-9, abs_tol=1e-9):
        return clips, None
    return clips, (f"{flag} {value:g} is {round(exact, 3):g} clips; {doing} {clips} clip{'s' if clips > 1 else ''} "
                   f"= {_seconds_text(clips * clip_seconds)} s")


ENVS = {"world": "LV2/World-v0", "groundtruth": "LV2/GroundTruth-v0"}  # --env's names


def world_env_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``gym.make("LV2/World-v0", ...)``'s arguments from the flags ``lv2 rollout`` and ``lv2 play`` share: the
    model (``--checkpoint``, default the shipped one), where the controls come from (a picture, ``--image``, means
    the point cache), the generation options (:func:`add_generation_options` with ``world_only=True,
    conditioning=True``), and episodes as long as the command runs."""
    return dict(checkpoint=args.checkpoint, preset=None if args.checkpoint else "tiny",
                control_source="cache" if args.image else args.control_source,
                sampling_steps=args.sampling_steps, precision=args.precision, decoder=args.decoder,
                control_encoder=args.control_encoder, device=args.device, conditioning=args.conditioning,
                composite=args.composite, max_episode_steps=UNLIMITED_EPISODE_STEPS)
