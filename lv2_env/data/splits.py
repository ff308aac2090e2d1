"""The scene seeds of every split, in one place (torch-free: the command line reads them for ``--help``).

A procedural scene is its seed (:func:`lv2_env.worlds.generate_scene`), so a split is a range of seeds; the
ranges are disjoint, so no scene of an evaluation split was ever seen in training.
"""

from __future__ import annotations

# Scene seeds of each split, [low, high): disjoint, so evaluation scenes are never seen in training. The world
# model trains on "train"; "validation" holds training's held-out clips, and every choice about the model and the
# world memory was made on it (`lv2 eval --split validation` draws from it); "test", frozen
# (WORLD_TEST_SCENES scenes, two of each style), is what `lv2 eval` reports by default and no choice looks at.
# Agents (`lv2 bench agents`) have their own three, none of which the world model or `lv2 eval` ever used:
# "agent_train" to learn in, "agent_val" for every choice made about agents, and "agent_test", frozen
# (AGENT_TEST_SCENES scenes), for the final tables only.
WORLD_TEST_SCENES = 12
AGENT_TEST_SCENES = 60
SPLIT_SEEDS = {
    "train": (0, 1_000_000),
    "validation": (1_000_000, 1_100_000),
    "test": (1_100_000, 1_100_000 + WORLD_TEST_SCENES),
    "agent_train": (2_000_000, 2_100_000),
    "agent_val": (2_100_000, 2_200_000),
    "agent_test": (2_200_000, 2_200_000 + AGENT_TEST_SCENES),
}


def scene_seed(split: str, sequence: int) -> int:
    if split not in SPLIT_SEEDS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLIT_SEEDS)}")
    low, high = SPLIT_SEEDS[split]
    if not 0 <= sequence < high - low:
        raise ValueError(f"sequence index must be in [0, {high - low}), got {sequence}")
    return low + sequence


def split_of(seed: int) -> str | None:
    """The split whose seed range holds ``seed`` (None if none does)."""
    return next((name for name, (low, high) in SPLIT_SEEDS.items() if low <= seed < high), None)


def split_scenes(split: str, count: int, start: int = 0) -> list[tuple[int, str]]:
    """``count`` scenes of ``split`` from its ``start``-th on, as ``(scene_seed, style)``: scene ``i`` has seed
    ``low + i`` and the ``i % 6``-th style, so any six consecutive scenes cover every style once."""
    from lv2_env.worlds.styles import STYLES

    names = list(STYLES)
    return [(scene_seed(split, i), names[i % len(names)]) for i in range(start, start + count)]
