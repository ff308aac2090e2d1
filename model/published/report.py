"""What loading the published weights reports: :class:`LoadReport` (what a load did: the keys loaded, the prefixes
stripped, every renaming, the missing and unexpected keys) and :class:`WeightsMismatchError` (the files and the model
disagree; the complete lists on the exception, a message that groups them by key pattern so 1,000s stay readable).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from model.published.names import strip_prefix, to_published_name


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
