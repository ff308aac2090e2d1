"""The ``lv2`` command line: the top room, the one part of lv2_env that may import ``agents``."""

from lv2_env.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
