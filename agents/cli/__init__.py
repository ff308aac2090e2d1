"""The ``lv2`` command (:mod:`agents.cli.main`): ``main`` is the console script's entry point, and
``python -m agents.cli`` runs it as well."""

from agents.cli.main import build_parser, main, parse_args

__all__ = ["build_parser", "main", "parse_args"]
