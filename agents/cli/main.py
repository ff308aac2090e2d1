"""The ``lv2`` command line: every verb, one module each.

    lv2 rollout --env world --policy orbit --seconds 10 --out out.mp4
    lv2 rollout --env world --policy random --minutes 5 --out run.mp4
    lv2 rollout --env groundtruth --policy agent --seconds 30 --out agent.mp4
    lv2 play
    lv2 data controls --out ctl --seconds 5
    lv2 generate --checkpoint model/shipped --first-frame ctl/first.png --depth ctl/dense.mp4 --tracks ctl/sparse.mp4 \
        --poses ctl/poses.npy --metric-depth ctl/depth.npy --prompts ctl/prompts.txt --out OUT.mp4
    lv2 train vae --data data/train --out runs/vae
    lv2 eval --checkpoint model/shipped --rollouts 4 --out eval
    lv2 bench agents --out bench/agents

The verbs that need only the world model and the environments live with them, in :mod:`lv2_env.cli`
(``generate``, ``data``, ``train``, ``eval``); the verbs that bring an agent to an environment live here, on the
agents' floor (``rollout``, ``play``, ``bench``), and so does ``main``, the one place that sees both: nothing in
``lv2_env`` imports ``agents``. Each verb module has ``add_parser(sub)`` and a ``run(args)`` it sets as the
parser's ``func``; a new verb is a module and one line in :data:`VERBS`.

Building the parser imports no torch, pygame or video library (``lv2 --help`` is quick): each verb imports what
it runs inside its function. Bad input is one line, ``lv2 VERB: error: ...``, and exit code 2, never a
traceback: every path flag is checked before the verb starts its work (:mod:`lv2_env.cli.options`'
``readable_file``, ``writable_output``, ...), and :func:`main` prints the ``ValueError`` that bad values raise.
"""

from __future__ import annotations

import argparse
import sys

from agents.cli import bench, play, rollout
from lv2_env.cli import data, generate, train
from lv2_env.cli import eval as evaluate

VERBS = (rollout, play, generate, data, train, evaluate, bench)  # in the order ``lv2 --help`` lists them


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lv2", description="lv2: an interactive world simulator on LongVie 2")
    sub = parser.add_subparsers(dest="command", required=True)
    for verb in VERBS:
        verb.add_parser(sub)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The parsed command line, with what depends on more than one flag filled in: ``lv2 train STAGE``'s
    steps, learning rate and batch size default to the stage's."""
    args = build_parser().parse_args(argv)
    if args.command == "train":
        train.fill_stage_defaults(args)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return args.func(args)
    except ValueError as err:  # bad input: say what was wrong, without a traceback
        verb = " ".join(part for part in (args.command, getattr(args, "kind", None)) if part)  # "data controls"
        print(f"lv2 {verb}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
