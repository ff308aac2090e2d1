"""``lv2 eval``: score a checkpoint on evaluation clips and/or long world rollouts (:mod:`lv2_env.evaluation`).

The flags are :class:`lv2_env.evaluation.settings.EvalSettings`' fields; building them imports nothing heavy
(the evaluation's own imports are inside :func:`run_clips` and :func:`run_world`). The paths are checked before
any work (:func:`check_paths`): one that cannot be read or written is a one-line error and exit code 2.

Long rollouts are written as each finishes, so a killed evaluation keeps every finished one: a line of
``world_rollouts.jsonl`` (that rollout's scores, as in the report's ``rollouts``), and ``world_report.json``,
``world_psnr.png`` and ``world_strip.png`` rewritten (atomically) over the rollouts finished so far; the report's
``settings.rollouts_finished`` says how many. ``--resume`` goes on from them: the settings are kept in
``world_run.json`` and each scene's strip frames in ``world_strip_frames/``, so a resumed run writes the same
report and strip as one that was never cut short.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Mapping

from lv2_env.cli.options import (
    add_dataclass_arguments,
    add_generation_options,
    dataclass_from_args,
    readable_dir,
    whole_clips,
    writable_dir,
)
from lv2_env.evaluation.settings import EvalSettings

EVAL_DESCRIPTION = (
    "Generate evaluation clips from their first frame and ground-truth controls, and score them against the "
    "truth beside the repeat-frame-0 and warp-frame-0 baselines."
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score a checkpoint against ground truth and the no-model baselines",
                       description=EVAL_DESCRIPTION)
    add_arguments(p)
    p.set_defaults(func=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``lv2 eval``: :class:`EvalSettings`' fields, with the shared generation options."""
    # These three fields take the flags every generating verb shares (below).
    add_dataclass_arguments(p, EvalSettings, skip=("sampling_steps", "precision", "control_encoder"))
    add_generation_options(p, steps_flags=("--steps", "--sampling-steps"))


def run(args: argparse.Namespace) -> int:
    """Score single clips (``--data``) and/or long rollouts (``--rollouts``) and write the reports."""
    settings = dataclass_from_args(EvalSettings, args)
    check_paths(settings)
    if settings.data:
        run_clips(settings)
    if settings.rollouts > 0:
        run_world(settings)
    return 0


def check_paths(settings: EvalSettings) -> None:
    """Refuse, before any work, a ``--checkpoint`` that is not a readable lv2 checkpoint, a ``--data`` that is
    not a readable directory, and an ``--out`` that cannot be made a writable directory (it is created here)."""
    from model.checkpoint import read_checkpoint_info

    readable_dir(settings.checkpoint, "--checkpoint")
    try:
        read_checkpoint_info(settings.checkpoint)
    except ValueError as err:
        raise ValueError(f"--checkpoint: {err}") from None
    readable_dir(settings.data, "--data")
    writable_dir(settings.out, "--out")


def run_world(settings: EvalSettings) -> None:
    """Long rollouts of LV2/World-v0 against the render of the same path (see :mod:`lv2_env.evaluation.rollouts`),
    each written as it finishes (see the module docstring)."""
    import json
    import sys

    import numpy as np

    from lv2_env.envs.world import WorldEnv
    from lv2_env.evaluation.report import append_json_line, write_report
    from lv2_env.evaluation.baselines import inpainting_available
    from lv2_env.evaluation.rollout_tables import plot_world, scene_table, world_table
    from lv2_env.evaluation.rollouts import evaluate_world, strip_frames

    env = WorldEnv(checkpoint=settings.checkpoint, preset=None, goal_radius=None, control_source=settings.control_source,
                   sampling_steps=settings.sampling_steps, precision=settings.precision,
                   control_encoder=settings.control_encoder, conditioning=settings.conditioning,
                   composite=settings.composite)
    steps, note = whole_clips(settings.rollout_seconds, "--rollout-seconds", env.clip.duration)
    if note:
        print(f"lv2 eval: note: {note}", file=sys.stderr)
    if not inpainting_available():
        print("lv2 eval: note: OpenCV is not installed, so the memory+inpaint baseline is left out "
              "(pip install opencv-python-headless)", file=sys.stderr)
    depth = None
    if (settings.checkpoint / "depth").is_dir():
        from model.depth import TinyDepthEstimator

        depth = TinyDepthEstimator.from_pretrained(settings.checkpoint / "depth")
    out = settings.out
    journal, strips = out / "world_rollouts.jsonl", out / "world_strip_frames"
    outputs = {"report": out / "world_report.json", "plot": out / "world_psnr.png", "strip": out / "world_strip.png"}
    back = whole_clips(settings.there_and_back_seconds, "--there-and-back-seconds", env.clip.duration)[0] \
        if settings.there_and_back_seconds else 0
    run = {"split": settings.split, "control_source": settings.control_source, "checkpoint": str(settings.checkpoint.resolve()), "steps": steps, "there_and_back_seconds": settings.there_and_back_seconds,
           "seed": settings.seed, "sampling_steps": settings.sampling_steps, "precision": env.precision,
           "conditioning": env.conditioning, "composite": env.composite,
           "control_encoder": env.model.control_encoder_name,
           "history_latent_frames": env.generator.history_latent_frames}
    done, strip_rows = resumed_rollouts(out, run, settings.rollouts) if settings.resume else ([], [])
    if not settings.resume:  # this evaluation's rollouts only
        journal.unlink(missing_ok=True)
        for old in strips.glob("scene_*.npz"):
            old.unlink()
    strips.mkdir(exist_ok=True)
    (out / "world_run.json").write_text(json.dumps(run, indent=1) + "\n")

    def write_rollout(report: dict[str, Any], video: dict[str, np.ndarray]) -> None:
        """One scene finished: append it, rewrite the report, the plot and the picture strip."""
        r = len(report["rollouts"]) - 1
        append_json_line(report["rollouts"][-1], journal)
        write_report(report, outputs["report"])
        plot_world(report, outputs["plot"])
        picks = [i for _, i in strip_frames(len(video["truth"]), video["fps"])]
        name = f"{report['rollouts'][-1]['style']} {report['rollouts'][-1]['scene_seed']}"
        np.savez_compressed(strips / f"scene_{r:03d}.npz", name=name, truth=video["truth"][picks],
                            generated=video["generated"][picks])
        strip_rows.extend([(f"{name}\ntruth", video["truth"][picks]), (f"{name}\nmodel", video["generated"][picks])])
        draw_strip(strip_rows, report["rollouts"][-1]["strip"], outputs["strip"], settings.split)
        print(f"  scene {r + 1}/{settings.rollouts}: model {report['rollouts'][-1]['model']['psnr']:.2f} dB; "
              f"wrote {journal}, {outputs['report']}", flush=True)

    print(f"{settings.rollouts} held-out scenes of the {settings.split} split, each a walk of {steps} clips, a 360-degree turn and a there-and-back "
          f"path, with {settings.checkpoint} (controls from the {settings.control_source}, conditioning {env.conditioning}{', composite' if env.composite else ''}, "
          f"history {env.generator.history_latent_frames or 'off'})"
          + (f"; {len(done)} already done in {journal}" if done else ""))
    report = evaluate_world(env, settings.rollouts, steps, estimate_depth=depth, seed=settings.seed,
                            on_rollout=write_rollout, there_and_back_seconds=back, done=done, split=settings.split)
    if len(done) == settings.rollouts:  # nothing was left to run: write what the finished scenes give
        write_report(report, outputs["report"])
        plot_world(report, outputs["plot"])
        draw_strip(strip_rows, report["rollouts"][-1]["strip"], outputs["strip"], settings.split)
    print(world_table(report))
    print()
    print(scene_table(report))
    print("wrote " + ", ".join(str(p) for p in (journal, *outputs.values())))


def resumed_rollouts(out: Path, run: Mapping[str, Any], rollouts: int) -> tuple[list[dict[str, Any]], list]:
    """``--resume``: the scenes a run of the same settings finished in ``out`` and their strip rows; a run of
    other settings, or one that left no strip frames, raises ``ValueError`` saying what differs."""
    import json

    import numpy as np

    from lv2_env.evaluation.report import read_json_lines

    journal, stamp = out / "world_rollouts.jsonl", out / "world_run.json"
    if not journal.exists():
        return [], []
    if not stamp.exists():
        raise ValueError(f"--resume: {journal} has no {stamp.name} beside it (an older lv2 eval wrote it), so its "
                         "settings are unknown: run without --resume")
    before = json.loads(stamp.read_text())
    differ = {k: (before.get(k), v) for k, v in run.items() if before.get(k) != v}
    if differ:
        said = ", ".join(f"{k} was {a!r}, now {b!r}" for k, (a, b) in differ.items())
        raise ValueError(f"--resume: the scenes in {out} were run with other settings ({said}): run without "
                         f"--resume, or with the same settings")
    done = read_json_lines(journal)
    if len(done) > rollouts:
        raise ValueError(f"--resume: {out} already holds {len(done)} scenes, more than --rollouts {rollouts}")
    rows = []
    for r in range(len(done)):
        path = out / "world_strip_frames" / f"scene_{r:03d}.npz"
        if not path.exists():
            raise ValueError(f"--resume: {path} is missing (scene {r + 1}'s strip frames): run without --resume")
        with np.load(path) as saved:
            name = str(saved["name"])
            rows += [(f"{name}\ntruth", saved["truth"]), (f"{name}\nmodel", saved["generated"])]
    return done, rows


def draw_strip(rows: list, labels: list[str], path: Path, split: str) -> None:
    from lv2_env.evaluation.report import picture_grid

    picture_grid(rows, range(len(labels)), path=path, title=f"{split} walks: truth above generated",
                 column_titles=labels)


def run_clips(settings: EvalSettings) -> None:
    """Run a checkpoint on evaluation clips (history off: each clip is independent) and write the report."""
    import numpy as np

    from lv2_env.evaluation.clips import (
        CLIP_FIELDS, evaluate_clips, markdown_table, plot_per_frame_psnr, spread_indices,
    )
    from lv2_env.evaluation.report import picture_grid, write_report
    from lv2_env.data.memory_renders import clip_conditioner
    from lv2_env.conditioning.clip_conditioner import ClipConditioning
    from lv2_env.conditioning.warp import warp_first_frame
    from lv2_env.conditioning.clip_conditioner import memory_options
    from model.checkpoint import load_checkpoint
    from model.clips import ClipDataset, control_videos
    from model.world_model import load_control_encoder
    from model.pipeline import SamplingOptions
    from model.precision import precision_name, resolve_precision

    checkpoint = load_checkpoint(settings.checkpoint)
    checkpoint.control_encoder = load_control_encoder(settings.checkpoint, settings.control_encoder)
    preset = checkpoint.preset
    dataset = ClipDataset(
        settings.data, fields=CLIP_FIELDS,
        expect={"height": preset.height, "width": preset.width, "frames": preset.frames},
    )
    split = data_split(dataset, settings.split)
    indices = spread_indices(len(dataset), settings.clips)
    options = SamplingOptions.from_preset(preset.sampling, steps=settings.sampling_steps)
    autocast = resolve_precision(settings.precision)
    generator = checkpoint.generator(options=options, seed=settings.seed, autocast=autocast, history_latent_frames=0)
    clips = [dataset[i] for i in indices]
    names = [Path(dataset.clips[i]["file"]).stem for i in indices]
    generated: list[np.ndarray] = []

    # As World-v0 conditions a clip: a rendered-conditioning model sees the world memory (here, of frame 0) by
    # default, and shows it over what it generates where it holds a surface (composite).
    rendered_model = generator.condition == "rendered"
    conditioning, composite = memory_options(generator.condition, settings.conditioning, settings.composite,
                                             preset.trained_conditioning)

    def generate(clip: Mapping[str, Any]) -> np.ndarray:
        generator.reset(clip["rgb"][0])
        conditioned = ClipConditioning()
        if rendered_model:
            conditioner = clip_conditioner(clip, conditioning, composite, preset.trained_conditioning)
            conditioned = conditioner.condition(clip["poses"], clip["depth"])
        frames = generator.generate_clip(control_videos(clip), str(clip["caption"]), rendered=conditioned.rendered,
                                         known=conditioned.known)
        generated.append(frames)
        print(f"  {names[len(generated) - 1]}: generated in {sum(generator.last_timings.values()):.1f} s", flush=True)
        return frames

    precision = precision_name(autocast)
    print(f"evaluating {len(clips)} clips of {settings.data} ({split}) with {settings.checkpoint} "
          f"({options.steps} steps, {precision}" + (f", conditioning {conditioning}{', composite' if composite else ''}"
                                                      if rendered_model else "") + ")")
    report = evaluate_clips(generate, clips, names=names)
    report["settings"] = {"split": split, "checkpoint": str(settings.checkpoint), "data": str(settings.data),
                          "clip_indices": indices,
                          "steps": options.steps, "precision": precision, "seed": settings.seed,
                          "control_encoder": checkpoint.control_encoder_name,
                          "history_latent_frames": 0, "conditioning": conditioning if rendered_model else None,
                          "composite": composite}

    out = settings.out
    out.mkdir(parents=True, exist_ok=True)
    written = [write_report(report, out / "report.json")]
    rows: list[tuple[str, np.ndarray]] = []
    for clip, name, frames in list(zip(clips, names, generated))[: max(0, settings.grid_clips)]:
        warped, _ = warp_first_frame(clip["rgb"][0], clip["depth"][0], clip["poses"], clip["intrinsics"])
        rows += [(f"{name}\ntruth", clip["rgb"]), (f"{name}\nmodel", frames), (f"{name}\nwarp", warped)]
    if rows:
        title = f"{settings.checkpoint.name}: truth / model / warp baseline"
        written.append(picture_grid(rows, path=out / "grid.png", title=title))
    written.append(plot_per_frame_psnr(report, out / "psnr_per_frame.png"))
    print(markdown_table(report))
    print("wrote " + ", ".join(str(p) for p in written))


def data_split(dataset, asked: str) -> str:
    """Which split the clips of ``dataset`` (a ``model.clips.ClipDataset``) come from: ``"test"``,
    ``"validation"`` (its seed range), or ``"your own clips"`` when they carry no procedural scene seed.
    Procedural clips of another split than ``asked`` (or of the training split) raise ``ValueError`` saying how to
    make the right ones."""
    from lv2_env.data.splits import split_of

    seeds = {c.get("scene_seed") for c in dataset.clips}
    if None in seeds:
        return "your own clips"
    names = sorted({str(split_of(int(s))) for s in seeds})
    if names == [asked]:
        return asked
    other = "validation" if asked == "test" else "test"
    fix = f"make {asked} clips with `lv2 data procedural --split {asked} --out DIR`"
    if names == [other]:
        fix += f", or give --split {other}"
    raise ValueError(f"--data holds clips of the {' and '.join(names)} split (scene seeds {min(seeds)}-{max(seeds)}) "
                     f"but --split is {asked}: {fix}")
