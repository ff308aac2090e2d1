"""The ``lv2`` command line: parsers built without the heavy libraries, ``lv2 train`` from the stage registry,
flags from dataclasses, and the shared sampling options."""

import argparse
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from agents.cli import build_parser, parse_args
from lv2_env.cli.options import add_dataclass_arguments, dataclass_from_args
from lv2_env.evaluation.settings import EvalSettings
from model.training.config import STAGES, LoopConfig, StageArgs, stage_spec, stages_of_kind

HEAVY = ("torch", "av", "pygame")

# argv: the top-level modules to look for (comma-separated), then the command line to parse.
_LOADED_BY_PARSER = """
import contextlib, io, sys
from agents.cli import build_parser
with contextlib.redirect_stdout(io.StringIO()):
    try:
        build_parser().parse_args(sys.argv[2:])
    except SystemExit as stop:
        assert stop.code == 0, f"parsing {sys.argv[2:]} failed"
print(sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1].split(","))))
"""


def _subparser(name: str) -> argparse.ArgumentParser:
    (verbs,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return verbs.choices[name]


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings} - {"-h", "--help"}


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["eval", "--help"], ["play", "--help"]])
def test_help_loads_no_heavy_library(argv):
    """The parsers (and every verb's --help) are built without torch, PyAV or pygame: each verb imports what it
    runs inside its function."""
    done = subprocess.run([sys.executable, "-c", _LOADED_BY_PARSER, ",".join(HEAVY), *argv], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"lv2 {' '.join(argv)} loaded {done.stdout.strip()}"


def test_train_stages_are_the_registry():
    (stage,) = [a for a in _subparser("train")._actions if a.dest == "stage"]
    assert list(stage.choices) == [*STAGES, "all", "cache-latents"]
    assert stages_of_kind("dit") == ("base", "control", "degradation", "history")
    with pytest.raises(ValueError, match="unknown stage 'nope'; expected one of"):
        stage_spec("nope")


def test_stage_views_and_dit_recipes_follow_the_registry():
    from model.training.dit_stage import RECIPES
    from model.training.stages import DEFAULT_BATCH, DEFAULT_LR, DEFAULT_STEPS, DIT_STAGES, STAGE_ORDER

    assert STAGE_ORDER == tuple(STAGES) and DIT_STAGES == stages_of_kind("dit") == tuple(RECIPES)
    assert DEFAULT_STEPS == {name: spec.steps for name, spec in STAGES.items()}
    assert DEFAULT_LR["control"] == STAGES["control"].lr and DEFAULT_BATCH["depth"] == STAGES["depth"].batch_size


def test_train_without_steps_takes_the_stage_defaults():
    args = parse_args(["train", "vae", "--data", "data/train", "--out", "runs/vae"])
    vae = STAGES["vae"]
    assert (args.steps, args.lr, args.batch_size) == (vae.steps, vae.lr, vae.batch_size)
    config = dataclass_from_args(LoopConfig, args, progress=False)
    assert config.steps == vae.steps and config.out == Path("runs/vae") and config.warmup_steps == 200
    stage_args = dataclass_from_args(StageArgs, args, preset=None)
    assert stage_args.data == Path("data/train") and stage_args.steps == vae.steps and stage_args.crop == 64

    given = parse_args(["train", "control", "--data", "d", "--steps", "7", "--lr", "0.5"])
    assert (given.steps, given.lr, given.batch_size) == (7, 0.5, STAGES["control"].batch_size)
    everything = parse_args(["train", "all", "--data", "d", "--out", "runs"])
    assert everything.steps is None  # `all` gives every stage its own


def test_train_and_eval_keep_their_flags():
    train = _subparser("train")
    assert {"--data", "--eval-data", "--out", "--vae", "--init", "--steps", "--batch-size", "--lr", "--warmup-steps",
            "--crop", "--frames", "--freeze-encoder", "--checkpoint-every", "--eval-every", "--seed", "--precision",
            "--resume", "--export-latest", "--quiet", "--preset", "--generated-data",
            "--generated-eval-data"} <= _option_strings(train)
    evaluate = _subparser("eval")
    assert _option_strings(evaluate) == {"--checkpoint", "--data", "--clips", "--out", "--steps", "--sampling-steps",
                                         "--precision", "--seed", "--grid-clips", "--rollouts", "--rollout-seconds",
                                         "--conditioning", "--composite", "--no-composite",  # the world memory
                                         "--there-and-back-seconds", "--resume",
                                         "--control-encoder",  # what encodes the conditioning videos
                                         "--split",  # test (default) or validation
                                         "--control-source"}  # scene (default) or cache
    args = parse_args(["eval", "--checkpoint", "ckpt", "--data", "eval", "--out", "o", "--steps", "3"])
    settings = dataclass_from_args(EvalSettings, args)
    assert settings == EvalSettings(checkpoint=Path("ckpt"), data=Path("eval"), out=Path("o"), sampling_steps=3)
    assert settings.clips == 8 and settings.rollout_seconds == 60 and settings.precision == "auto"
    assert settings.split == "test"
    with pytest.raises(ValueError, match="the test split holds 12 scenes"):
        dataclass_from_args(EvalSettings, parse_args(["eval", "--checkpoint", "c", "--out", "o", "--rollouts", "13"]))
    assert dataclass_from_args(EvalSettings, parse_args(["eval", "--checkpoint", "c", "--out", "o", "--rollouts", "13",
                                                         "--split", "validation"])).rollouts == 13
    assert parse_args(["rollout", "--sampling-steps", "2"]).sampling_steps == 2
    with pytest.raises(ValueError, match="nothing to evaluate"):
        dataclass_from_args(EvalSettings, parse_args(["eval", "--checkpoint", "c", "--out", "o"]))


@dataclass
class _Settings:
    name: str = field(metadata={"help": "what it is called"})
    count: int = field(default=3, metadata={"help": "how many (100% of them)"})
    ratio: float | None = None
    where: Path = field(default=Path("here"), metadata={"flag": ("--where", "-w")})
    verbose: bool = False
    colour: Literal["red", "blue"] = "red"


@dataclass
class _MoreSettings(_Settings):
    retries: int = field(default=2, metadata={"help": "tries after the first"})


def test_a_new_field_is_a_new_flag():
    parser = argparse.ArgumentParser()
    assert add_dataclass_arguments(parser, _Settings) == ["name", "count", "ratio", "where", "verbose", "colour"]
    more = argparse.ArgumentParser()
    add_dataclass_arguments(more, _MoreSettings)
    assert _option_strings(more) - _option_strings(parser) == {"--retries"}
    assert "tries after the first" in more.format_help() and "100% of them" in more.format_help()

    settings = dataclass_from_args(_MoreSettings, more.parse_args(["--name", "a", "--ratio", "0.5", "-w", "there",
                                                                   "--verbose", "--colour", "blue", "--retries", "4"]))
    assert settings == _MoreSettings("a", 3, 0.5, Path("there"), True, "blue", 4)
    with pytest.raises(SystemExit):  # --name has no default: required
        more.parse_args([])
    with pytest.raises(SystemExit):  # a Literal's choices
        more.parse_args(["--name", "a", "--colour", "green"])
    assert dataclass_from_args(_Settings, parser.parse_args(["--name", "b"]), count=9).count == 9


def test_flag_defaults_skips_and_refusals():
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, _Settings, skip=("colour",), defaults={"name": "x", "count": 5})
    args = parser.parse_args([])
    assert (args.name, args.count) == ("x", 5) and not hasattr(args, "colour")
    with pytest.raises(ValueError, match=r"_Settings has no fields \['nam'\]"):
        add_dataclass_arguments(argparse.ArgumentParser(), _Settings, skip=("nam",))
    with pytest.raises(ValueError, match=r"has no fields \['extra'\]"):
        dataclass_from_args(_Settings, args, extra=1)

    @dataclass
    class Unflaggable:
        pairs: dict = field(default_factory=dict)

    with pytest.raises(TypeError, match="Unflaggable.pairs: a flag is made for int, float, str, bool, Path"):
        add_dataclass_arguments(argparse.ArgumentParser(), Unflaggable)


def test_sampling_options_from_a_preset():
    from model.pipeline import SamplingOptions

    preset = {"steps": 10, "shift": 3.0, "guidance_scale": 1.0}
    assert SamplingOptions.from_preset(preset) == SamplingOptions(10, 3.0, 1.0)
    options = SamplingOptions.from_preset(preset, steps=2, guidance_scale=4.0, control_scales={"dense": 0.5})
    assert options == SamplingOptions(2, 3.0, 4.0, {"dense": 0.5})
    assert preset["steps"] == 10  # the preset's own mapping is left alone
    with pytest.raises(ValueError, match=r"sampling steps must be an integer >= 1 .* got 0"):
        SamplingOptions.from_preset(preset, steps=0)
    with pytest.raises(ValueError, match=r"unknown sampling options \['sigma'\]"):
        SamplingOptions.from_preset({**preset, "sigma": 1.0})
