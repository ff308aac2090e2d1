"""The ``lv2`` command line: the top room, the one part of lv2_env that may import ``agents``.

``lv2_env.cli.main`` is the function here (the ``lv2`` console script's entry point); the module of that name
is reached with ``from lv2_env.cli.main import build_parser, parse_args``.
"""

from lv2_env.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
