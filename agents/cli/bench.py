"""``lv2 bench agents``: pixel agents trained by DAgger in the truth and in the generated world, scored, and the
world as an evaluator (:class:`agents.benchmark.Bench`)."""

from __future__ import annotations

import argparse

from lv2_env.cli.options import writable_dir


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks of what lv2 is for (agents: learning in the generated world)")
    kinds = p.add_subparsers(dest="kind", required=True)
    a = kinds.add_parser(
        "agents", help="train pixel agents by DAgger in the truth and in the generated world, score them and the "
        "world as an evaluator (resumable)",
        description="Run DAgger on the privileged teacher with frames of LV2/GroundTruth-v0 and of LV2/World-v0 (the "
        "same rounds and env steps; each round's student is a pixel policy), score the teacher, noisy teachers, blind "
        "policies and every pixel policy on the frozen agent test split in the truth at each task level, and the "
        "pixel policies in the generated world from the same starts; writes agents.json, agents.md and agents.png. "
        "Run it again with the same options to resume.")
    a.add_argument("--out", default="bench/agents", help="output directory (default bench/agents); resumes there")
    a.add_argument("--quick", action="store_true",
                   help="tiny budgets on 2 scenes: checks the pipeline end to end in a few minutes, not the figures")
    a.add_argument("--evaluator-scenes", type=int, default=None,
                   help="test scenes every pixel policy also runs in the generated world (default 24)")
    a.add_argument("--world-rounds", type=int, default=None,
                   help="DAgger rounds run in the generated world (default: all; 0: none, the truth side only)")
    a.add_argument("--world-fast", action="store_true",
                   help="World-v0's fast options (distilled control encoder, fast decoder) for its runs")
    a.add_argument("--levels", default=None,
                   help="comma-separated task levels to score, the first the main one (default hard,medium,easy)")
    a.add_argument("--world-blind", action="store_true",
                   help="also generate the world runs of policies that never look at the frames (their paths are "
                   "the truth's by construction)")
    a.add_argument("--quiet", action="store_true", help="no progress bars")
    a.set_defaults(func=_bench_agents)


def _bench_agents(args: argparse.Namespace) -> int:
    import dataclasses

    from agents.benchmark import Bench, BenchConfig

    config = BenchConfig.quick_run() if args.quick else BenchConfig()
    if args.evaluator_scenes is not None:
        if not 1 <= args.evaluator_scenes <= config.test_scenes:
            raise ValueError(f"--evaluator-scenes must be in [1, {config.test_scenes}] (the test scenes), "
                             f"got {args.evaluator_scenes}")
        config = dataclasses.replace(config, evaluator_scenes=args.evaluator_scenes)
    if args.levels is not None:
        config = dataclasses.replace(config, levels=tuple(args.levels.split(",")))
    config = dataclasses.replace(config, world_blind=args.world_blind, world_fast=args.world_fast,
                                 world_rounds=args.world_rounds)
    writable_dir(args.out, "--out")
    report = Bench(args.out, config, progress=not args.quiet).run()
    world = _row(report, "world-trained")
    print(f"wrote {args.out}/agents.json, agents.md and agents.png (level {report['level']}): truth-trained "
          f"{_row(report, 'truth-trained')['success_truth']:.2f}"
          + ("" if world is None else f", world-trained {world['success_truth']:.2f}")
          + f" success in the truth (transfer ratio {report['transfer_ratio']:.2f}); evaluator over "
          f"{report['pixel_policies']} pixel policies: Spearman {report['spearman']:.2f}, gap {report['mean_abs_gap']:.3f}")
    return 0


def _row(report: dict, name: str) -> dict | None:
    return next((r for r in report["policies"] if r["name"] == name), None)
