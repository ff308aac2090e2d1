"""Long generated rollouts against the exact render of the same camera path.

``lv2 eval --rollouts N --rollout-seconds S`` steps LV2/World-v0 (controls from the scene) along fixed camera
paths in ``N`` held-out scenes of a split (:func:`rollout_scenes`: ``"test"``, the frozen
:data:`~lv2_env.data.procedural.WORLD_TEST_SCENES` scenes no choice looked at, two of each style; or
``"validation"``, the scenes every choice about the model and the memory was made on, seeds spread over the
validation range with the styles cycling through :data:`STYLE_CYCLE`; neither ever seen in training) and scores every frame against the ground truth that the
env renders beside it, next to the baselines that need no model (:mod:`lv2_env.evaluation.baselines`: repeat the
episode's first frame; warp it with the known depth and path; remember it and render the memory along the path
with its holes inpainted, where OpenCV is installed). Each scene runs three paths:

* ``walk`` (``S`` seconds; mostly forward, with turns, strafes and a look up and down: :data:`WALK` cycled);
* ``loop`` (turning left at 30 deg/s: 12 one-second steps make 360 degrees, ending at the start pose);
* ``there_and_back`` (forward :data:`THERE_AND_BACK_SECONDS` seconds, then back as far: the start pose again).

Reported per scene and on average, for the walk:

* **PSNR / SSIM per frame**, and per minute of video, with the PSNR's linear trend, the **drift per minute**
  (dB/min; negative = the video drifts away from the truth as it goes).
* **Sharpness**: the frames' gradient energy over the truth's (1 = as sharp; blobs score near 0, where PSNR can
  still rise), on every 4th frame.
* **Objects** (:mod:`lv2_env.evaluation.objects`, with the renderer's object ids): each object's mean colour
  error, and the share of object-frames in which it is still visible, on every 4th frame.
* **Phantoms and the goal's colour** (:mod:`lv2_env.evaluation.phantoms`, on every 4th frame): the *phantom
  share*, of the open ground and sky the truth shows, the share where the frame has structure or a colour the truth
  has not there (debris, ghost objects), overall and per minute; and the *goal colour error*, the goal object's
  mean colour against the truth's on its true mask, over the frames that show it.
* **Depth following**: the depth network on generated frames against the control depth (the scene's, the
  signal the model was asked to follow), as the share of scene pixels (sky left out) within 1.25x of it after
  median scaling. The same network on the true frames gives the ceiling this can reach; on the repeat baseline,
  what ignoring the controls gets.
* **Clip boundaries**: the mean absolute change between the last frame of a clip and the first new frame of
  the next, against the mean change between consecutive frames within clips (ratio 1 = seamless).

And for the paths that come back: **loop closure** (after the 360-degree turn) and **revisit PSNR** (after there
and back): PSNR of the last frame against the first, which is the truth the episode started from. The repeat and
warp baselines never move, so they close any loop trivially, and so does memory+inpaint (frame 0, re-rendered
from its own pose); the truth's own last frame equals its first exactly. Each scene also gives a **picture strip**:
truth and model at 0, 1, 3 and 5 minutes (:func:`strip_frames`; at the same fractions of a shorter walk).

:func:`evaluate_world` hands each scene to a callback as it finishes, with the report of the scenes so far
(:func:`world_report`), so that ``lv2 eval`` writes them as they come and a killed evaluation keeps them.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from lv2_env.data.splits import SPLIT_SEEDS, WORLD_TEST_SCENES, split_scenes
from lv2_env.evaluation.baselines import inpainting_available, memory_inpaint
from lv2_env.evaluation.objects import object_scores, objects_drawn_first
from lv2_env.evaluation.phantoms import goal_colour_error, phantom_share
from lv2_env.envs.world import scene_atmosphere
from lv2_env.conditioning.warp import warp_first_frame
from model.metrics import PSNR_LOG_CEILING, depth_metrics, mean_finite, psnr, sharpness_ratio, ssim

VALIDATION_SCENE_SEED = SPLIT_SEEDS["validation"][0]  # held-out scenes, never seen in training
WALK = (1, 1, 1, 5, 1, 1, 4, 1, 1, 6, 6, 1, 1, 3, 1, 1, 7, 8, 1, 1)  # forward, turns, strafes, a look up and down
LOOP = (5,) * 12
THERE_AND_BACK_SECONDS = 10
STYLE_CYCLE = ("sunny", "night", "fog", "dusk", "snow", "desert")  # scene r has style r % 6
SKY_DEPTH, SKY_FRACTION = 150.0, 0.9  # the renderer's far plane; depth beyond 0.9 of it is sky
COLLAPSE_DB = 3.0  # a frame this far below repeating the first frame counts as collapsed (issue 27's aim)
DEPTH_EVERY = 4  # depth following, SSIM, sharpness and objects are measured on every 4th frame
STRIP_SECONDS = (0, 60, 180, 300)  # the picture strip's moments, for a 5-minute walk
METHODS = ("model", "repeat", "warp", "memory+inpaint")
EVAL_SPLITS = ("test", "validation")


def rollout_scenes(split: str, count: int) -> list[tuple[int, str]]:
    """The first ``count`` scenes of ``split`` as ``(scene_seed, style)``: ``"validation"``, seeds spread over the
    validation range (7919 apart) with the styles cycling through :data:`STYLE_CYCLE`; ``"test"``, the frozen test
    split's scenes in order (at most :data:`~lv2_env.data.procedural.WORLD_TEST_SCENES`)."""
    if split not in EVAL_SPLITS:
        raise ValueError(f"split must be one of {list(EVAL_SPLITS)}, got {split!r}")
    if split == "test":
        if count > WORLD_TEST_SCENES:
            raise ValueError(f"the test split holds {WORLD_TEST_SCENES} scenes, {count} were asked for: give at most "
                             f"{WORLD_TEST_SCENES}, or --split validation for more")
        return split_scenes("test", count)
    return [(VALIDATION_SCENE_SEED + 7919 * r, STYLE_CYCLE[r % len(STYLE_CYCLE)]) for r in range(count)]


def there_and_back(steps_each_way: int) -> tuple[int, ...]:
    """Forward ``steps_each_way`` one-second steps, then back as many: the path ends at its start pose."""
    return (1,) * steps_each_way + (2,) * steps_each_way


def strip_frames(frames: int, fps: int) -> list[tuple[str, int]]:
    """The picture strip's (label, frame index) at 0, 1, 3 and 5 minutes of a walk of ``frames`` frames; a shorter
    walk is shown at the same fractions of its length."""
    seconds = (frames - 1) / fps
    scale = min(1.0, seconds / STRIP_SECONDS[-1])
    picks = [min(frames - 1, round(t * scale * fps)) for t in STRIP_SECONDS]
    return [(f"{i / fps / 60:.1f} min" if seconds >= 60 else f"{i / fps:.0f} s", i) for i in picks]


def _mean_abs_change(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.float32) - b.astype(np.float32))))


def run_path(env, actions: Sequence[int], steps: int, scene_seed: int, seed: int = 0,
             style: str | None = None) -> dict[str, np.ndarray]:
    """Step ``env`` (a LV2/World-v0 with a scene) ``steps`` times cycling ``actions`` in the scene of
    ``scene_seed`` (in ``style``, or the scene's own); the whole video, its truth, the true depth, poses, object
    ids and, with a world memory, ``known`` (bool ``[N, H, W]``: the pixels its render held, which the model did
    not draw when they are composited; frame 0 counts as known). With ``control_source="cache"`` also
    ``control_depth`` (the point cache's depth the model was steered by) and ``depth_holes`` (where it is filled
    in, not seen)."""
    options: dict[str, Any] = {"scene_seed": int(scene_seed)}
    if style is not None:
        options["style"] = style
    _, info = env.reset(seed=seed, options=options)
    keys = {"generated": "frames", "truth": "ground_truth_frames", "object_ids": "ground_truth_object_ids",
            "depth": "depth", "poses": "poses"}
    parts = {name: [info[key][-1:]] for name, key in keys.items()}
    known = [np.ones_like(info["depth"][-1:], dtype=bool)]  # frame 0: what the world starts from, not drawn
    cache = env.unwrapped.control_source == "cache"
    if cache:  # the controls' depth is the point cache's; the baselines and the diagnosis need the true depth
        parts["control_depth"], parts["depth"] = parts["depth"], [_true_depth(env, info["poses"][-1:])]
        parts["depth_holes"] = [np.zeros_like(known[0])]
    for k in range(steps):
        _, _, _, _, info = env.step(actions[k % len(actions)])
        for name, key in keys.items():
            parts["control_depth" if cache and name == "depth" else name].append(info[key][1:])
        if info.get("memory_known") is not None:
            known.append(info["memory_known"][1:])
        if cache:
            parts["depth"].append(_true_depth(env, info["poses"][1:]))
            parts["depth_holes"].append(info["depth_holes"][1:])
    memory = {"known": np.concatenate(known)} if len(known) == steps + 1 else {}
    return {**{name: np.concatenate(chunks) for name, chunks in parts.items()}, **memory, "intrinsics": info["intrinsics"],
            "clip_frames": env.unwrapped.clip.frames, "fps": env.unwrapped.clip.fps, "caption": info["caption"],
            "atmosphere": scene_atmosphere(env.unwrapped.scene), "goal_id": env.unwrapped.scene.landmark + 1}


def _true_depth(env, poses: np.ndarray) -> np.ndarray:
    """The scene's exact depth ``[F, H, W]`` along ``poses`` (geometry only: no shading)."""
    return env.unwrapped.world.renderer.render(poses, shade=False).depth


def cache_diagnosis(video: dict[str, np.ndarray], per_step_psnr: dict[str, Sequence[float]],
                    per_frame_psnr: dict[str, Sequence[float]] | None = None) -> dict[str, Any]:
    """Where a world steered by its own point cache breaks, per one-second step: how much of the cache's depth is
    right (the share of the true non-sky pixels where it is within 1.25x of the true depth, unscaled: the cache
    is meant to be metric; bounded, where a mean AbsRel is ruled by a few sky-for-ground pixels), the share of the
    path's pixels with no cached depth, and the first step whose frames score below repeating the first frame
    (None if none does); with ``per_frame_psnr``, ``collapsed``: the share of frames more than
    :data:`COLLAPSE_DB` below repeat (a world that holds has none)."""
    step = video["clip_frames"] - 1
    truth, cached, holes = video["depth"], video["control_depth"], video["depth_holes"]
    error, empty = [], []
    for start in range(1, len(truth), step):
        t, c = truth[start : start + step], cached[start : start + step]
        scene = t < SKY_FRACTION * SKY_DEPTH
        ratio = np.maximum(c[scene] / t[scene], t[scene] / np.maximum(c[scene], 1e-6))
        error.append(float(np.mean(ratio < 1.25)) if scene.any() else float("nan"))
        empty.append(float(holes[start : start + step].mean()))
    model, repeat = per_step_psnr["model"], per_step_psnr["repeat"]
    below = next((k + 1 for k, (m, r) in enumerate(zip(model, repeat)) if m < r), None)
    out = {"depth_right": mean_finite(error), "holes": float(np.mean(empty)), "first_step_below_repeat": below,
           "depth_right_per_step": error, "holes_per_step": empty}
    if per_frame_psnr is not None:
        frames = np.asarray(per_frame_psnr["model"], float), np.asarray(per_frame_psnr["repeat"], float)
        out["collapsed"] = float(np.mean(frames[0] < frames[1] - COLLAPSE_DB))
    return out


def depth_following(estimate: np.ndarray, reference: np.ndarray, sky_depth: float = 150.0) -> float:
    """Share of scene pixels (the reference's sky left out) whose estimated depth ``[N, H, W]`` is within 1.25x of
    the reference, after per-image median scaling (``delta < 1.25``, as the depth stage scores itself). A bounded
    share, unlike AbsRel: a few pixels of a dark frame taken for sky (150 m against 1 m) made the mean AbsRel of
    the true night frames 120 while most of their pixels were right."""
    reference = np.where(np.asarray(reference) < 0.9 * sky_depth, reference, np.nan)
    if not np.isfinite(reference).any():
        return float("nan")
    return float(depth_metrics(np.asarray(estimate), reference)["delta1"])


def baseline_videos(video: dict[str, np.ndarray], inpaint: bool = True) -> dict[str, np.ndarray]:
    """The baselines' frames along the video's path: repeat, warp and (``inpaint`` and OpenCV) memory+inpaint."""
    truth = video["truth"]
    warped, _ = warp_first_frame(truth[0], video["depth"][0], video["poses"], video["intrinsics"])
    out = {"repeat": np.repeat(truth[:1], len(truth), axis=0), "warp": warped}
    if inpaint and inpainting_available():
        out["memory+inpaint"] = memory_inpaint(truth[0], video["depth"][0], video["poses"], video["intrinsics"],
                                               video["depth"], video.get("atmosphere"))
    return out


def _per_minute(values: Sequence[float], frames_per_minute: int) -> list[float]:
    return [mean_finite(values[s : s + frames_per_minute]) for s in range(0, len(values), frames_per_minute)]


def score_rollout(video: dict[str, np.ndarray], estimate_depth=None, inpaint: bool = True) -> dict[str, Any]:
    """Every number of one walk (see the module docstring)."""
    generated, truth, fps = video["generated"], video["truth"], video["fps"]
    methods = {"model": generated, **baseline_videos(video, inpaint)}
    frames_per_minute = 60 * fps
    sampled = np.arange(1, len(truth), DEPTH_EVERY)
    out: dict[str, Any] = {"frames": int(len(truth)), "caption": video["caption"], "methods": list(methods)}
    revealed, drawn_first = None, set()
    if "known" in video:
        revealed = ~video["known"]
        drawn_first = objects_drawn_first(video["object_ids"], revealed)
        out["revealed_fraction"] = float(revealed[1:].mean())
        out["objects_drawn_first"] = len(drawn_first)
    for name, frames in methods.items():
        per_frame = [psnr(frames[i], truth[i]) for i in range(1, len(truth))]
        minutes = [float(np.mean(np.clip(per_frame[s : s + frames_per_minute], None, PSNR_LOG_CEILING)))
                   for s in range(0, len(per_frame), frames_per_minute)]
        drift = float(np.polyfit(np.arange(len(minutes)), minutes, 1)[0]) if len(minutes) > 1 else float("nan")
        ssims = [ssim(frames[i : i + 1], truth[i : i + 1]) for i in sampled]
        sharp = [sharpness_ratio(frames[i : i + 1], truth[i : i + 1]) for i in sampled]
        objects = [object_scores(frames[i : i + 1], truth[i : i + 1], video["object_ids"][i : i + 1]) for i in sampled]
        phantoms = [phantom_share(frames[i : i + 1], truth[i : i + 1], video["object_ids"][i : i + 1]) for i in sampled]
        per_sample_minute = frames_per_minute // DEPTH_EVERY
        revealed_scores = {}
        if revealed is not None:  # the pixels the memory held nothing for: the model's own drawing
            drawn = [object_scores(frames[i : i + 1], truth[i : i + 1], video["object_ids"][i : i + 1], drawn_first)
                     for i in sampled]
            revealed_scores = {
                "psnr_revealed": psnr(frames[1:], truth[1:], revealed[1:]),
                "ssim_revealed": ssim(frames[sampled], truth[sampled], revealed[sampled]),
                "sharpness_revealed": sharpness_ratio(frames[sampled], truth[sampled], revealed[sampled]),
                "colour_error_drawn_first": mean_finite([o["colour_error"] for o in drawn]),
            }
        out[name] = {
            "psnr": psnr(frames[1:], truth[1:]),
            "ssim": mean_finite(ssims),
            # PSNR rewards blur; this does not (gradient energy over the truth's; 1 = as sharp as the truth).
            "sharpness": sharpness_ratio(frames[sampled], truth[sampled]),
            "colour_error": mean_finite([o["colour_error"] for o in objects]),
            "visible": _share(objects),
            "psnr_per_frame": per_frame,
            "psnr_per_minute": minutes,
            "ssim_per_minute": _per_minute(ssims, per_sample_minute),
            "sharpness_per_minute": _per_minute(sharp, per_sample_minute),
            "colour_error_per_minute": _per_minute([o["colour_error"] for o in objects], per_sample_minute),
            "phantom_share": mean_finite(phantoms),
            "phantom_share_per_minute": _per_minute(phantoms, per_sample_minute),
            "goal_colour_error": goal_colour_error(frames[sampled], truth[sampled], video["object_ids"][sampled],
                                                   video["goal_id"]) if "goal_id" in video else float("nan"),
            "drift_db_per_minute": drift,
            **revealed_scores,
        }
    # Clip boundaries: frame 16k is the last frame of clip k, 16k + 1 the first new frame of clip k + 1.
    step = video["clip_frames"] - 1
    if "control_depth" in video:  # a world steered by its own point cache: where it breaks
        per_step = {m: [psnr(methods[m][s : s + step], truth[s : s + step]) for s in range(1, len(truth), step)]
                    for m in ("model", "repeat")}
        out["cache"] = cache_diagnosis(video, per_step, {m: out[m]["psnr_per_frame"] for m in ("model", "repeat")})
    boundary = [k for k in range(step, len(generated) - 1, step)]
    within = [k for k in range(len(generated) - 1) if k % step != 0]
    for name, frames in (("model", generated), ("truth", truth)):
        jump = float(np.mean([_mean_abs_change(frames[k + 1], frames[k]) for k in boundary])) if boundary else float("nan")
        inside = float(np.mean([_mean_abs_change(frames[k + 1], frames[k]) for k in within]))
        out.setdefault("boundaries", {})[name] = {"jump": jump, "within": inside, "ratio": jump / max(inside, 1e-9)}
    if estimate_depth is not None:  # the depth the model was asked to follow: its control depth
        reference = video.get("control_depth", video["depth"])[sampled]
        out["depth_following"] = {
            "model": depth_following(estimate_depth(generated[sampled]), reference),
            "truth": depth_following(estimate_depth(truth[sampled]), reference),
            "repeat": depth_following(estimate_depth(methods["repeat"][sampled]), reference),
        }
    return out


def _share(objects: Sequence[dict[str, Any]]) -> float:
    """The share of judged object-frames that are visible, over several :func:`object_scores` results."""
    judged = sum(o["judged"] for o in objects)
    return float(sum(o["visible"] * o["judged"] for o in objects if o["judged"]) / judged) if judged else float("nan")


def comes_back(env, actions: Sequence[int], scene_seed: int, seed: int = 0, style: str | None = None,
               inpaint: bool = True) -> dict[str, Any]:
    """A path that ends at its start pose: its last frame against the first, for the model and memory+inpaint.

    With ``composite`` on, the last frame shows the memory's pixels (the start frame's surfaces, kept as first
    seen), so the path runs a second time with it off: ``model_only_*``, the model's own drawing."""
    video = run_path(env, actions, len(actions), scene_seed, seed, style)
    out = {"psnr_last_vs_first": psnr(video["generated"][-1], video["truth"][0]),
           "psnr_last_vs_truth": psnr(video["generated"][-1], video["truth"][-1]),
           "truth_last_vs_first": psnr(video["truth"][-1], video["truth"][0])}
    world = env.unwrapped
    if getattr(world, "composite", False):
        world.composite = False
        try:
            own = run_path(env, actions, len(actions), scene_seed, seed, style)
        finally:
            world.composite = True
        out["model_only_last_vs_first"] = psnr(own["generated"][-1], own["truth"][0])
        out["model_only_last_vs_truth"] = psnr(own["generated"][-1], own["truth"][-1])
    if inpaint and inpainting_available():  # the baseline alone: repeat and warp close any loop trivially
        baseline = memory_inpaint(video["truth"][0], video["depth"][0], video["poses"], video["intrinsics"],
                                  video["depth"], video.get("atmosphere"))
        out["memory+inpaint_last_vs_first"] = psnr(baseline[-1], video["truth"][0])
    return out


def loop_closure(env, scene_seed: int, seed: int = 0, style: str | None = None, inpaint: bool = True) -> dict[str, Any]:
    """Turn a full circle in place (:data:`LOOP`): the last frame against the first (and against the truth's last)."""
    return comes_back(env, LOOP, scene_seed, seed, style, inpaint)


RolloutCallback = Callable[[dict[str, Any], dict[str, np.ndarray]], None]


def evaluate_world(env, rollouts: int, steps: int, estimate_depth=None, seed: int = 0, progress: bool = True,
                   on_rollout: RolloutCallback | None = None, inpaint: bool = True,
                   there_and_back_seconds: int = THERE_AND_BACK_SECONDS,
                   done: Sequence[dict[str, Any]] = (), split: str = "test") -> dict[str, Any]:
    """``rollouts`` held-out scenes of ``split`` (:func:`rollout_scenes`), each a walk of ``steps`` clips, a loop
    and a there-and-back path; the report.

    After each scene ``on_rollout(report, video)`` gets the report of the scenes finished so far (the new one is
    ``report["rollouts"][-1]``) and that scene's walk (:func:`run_path`), so that a caller can write both as they
    come (``lv2 eval``: nothing finished is lost if it is killed); videos are not kept here. ``inpaint``: score
    the memory+inpaint baseline (where OpenCV is installed). ``there_and_back_seconds``: one-second steps each way
    (whole clips; 0 leaves the path out). ``done``: the first scenes' scores from an earlier run of the same
    settings (``lv2 eval --resume``), kept as they are; the scenes after them are run.
    """
    from tqdm import tqdm

    if len(done) > rollouts:
        raise ValueError(f"{len(done)} scenes are already done, more than the {rollouts} asked for")
    per: list[dict[str, Any]] = list(done)
    back = there_and_back(there_and_back_seconds)
    scenes = rollout_scenes(split, rollouts)

    def report_of(seconds: float) -> dict[str, Any]:
        return world_report(per, {"split": split, "rollouts": rollouts, "rollouts_finished": len(per), "steps": steps,
                                  "seconds_of_video": seconds, "walk": list(WALK), "loop": list(LOOP),
                                  "there_and_back": list(back), "inpainting": inpaint and inpainting_available(),
                                  "control_source": env.unwrapped.control_source,
                                  "conditioning": getattr(env.unwrapped, "conditioning", None),
                                  "composite": getattr(env.unwrapped, "composite", None),
                                  "history_latent_frames": getattr(getattr(env.unwrapped, "generator", None),
                                                                   "history_latent_frames", None)})

    report = report_of(steps * env.unwrapped.clip.duration) if per else {}
    for r in tqdm(range(len(per), rollouts), desc="world rollouts", unit="scene", disable=not progress,
                  initial=len(per), total=rollouts):
        scene, style = scenes[r]
        video = run_path(env, WALK, steps, scene, seed, style)
        scores = score_rollout(video, estimate_depth, inpaint)
        per.append({"scene_seed": scene, "style": style, **scores,
                    "strip": [label for label, _ in strip_frames(len(video["truth"]), video["fps"])],
                    "loop": loop_closure(env, scene, seed, style, inpaint)})
        if back:
            per[-1]["there_and_back"] = comes_back(env, back, scene, seed, style, inpaint)
        report = report_of(steps * (video["clip_frames"] - 1) / video["fps"])
        if on_rollout is not None:
            on_rollout(report, video)
    return report


SCALARS = ("psnr", "ssim", "sharpness", "colour_error", "visible", "drift_db_per_minute",
           "psnr_revealed", "ssim_revealed", "sharpness_revealed", "colour_error_drawn_first", "phantom_share",
           "goal_colour_error")
PER_MINUTE = ("psnr_per_minute", "ssim_per_minute", "sharpness_per_minute", "colour_error_per_minute",
              "phantom_share_per_minute")


def world_report(per: Sequence[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
    """The report of scenes scored by :func:`score_rollout` (plus ``scene_seed``, ``style``, ``loop`` and
    ``there_and_back``): each of them, their means, and ``settings``."""
    if not per:
        raise ValueError("world_report needs at least one scored rollout, got none")
    mean: dict[str, Any] = {}
    for m in METHODS:
        scored = [p[m] for p in per if m in p]
        if not scored:
            continue
        mean[m] = {k: mean_finite([s[k] for s in scored if k in s]) for k in SCALARS}
        for key in PER_MINUTE:
            longest = max(len(s.get(key, ())) for s in scored)
            mean[m][key] = [mean_finite([s[key][i] for s in scored if i < len(s.get(key, ()))]) for i in range(longest)]
    for key in ("revealed_fraction", "objects_drawn_first"):
        if all(key in p for p in per):
            mean[key] = mean_finite([p[key] for p in per])
    if all("cache" in p for p in per):
        below = [p["cache"]["first_step_below_repeat"] for p in per]
        mean["cache"] = {"depth_right": mean_finite([p["cache"]["depth_right"] for p in per]),
                         "holes": mean_finite([p["cache"]["holes"] for p in per]),
                         "first_step_below_repeat": mean_finite([b for b in below if b is not None]),
                         "never_below_repeat": sum(b is None for b in below),
                         "collapsed": mean_finite([p["cache"].get("collapsed", float("nan")) for p in per])}
    mean["boundaries"] = {w: {k: mean_finite([p["boundaries"][w][k] for p in per]) for k in ("jump", "within", "ratio")}
                          for w in ("model", "truth")}
    if all("depth_following" in p for p in per):
        mean["depth_following"] = {w: mean_finite([p["depth_following"][w] for p in per])
                                   for w in ("model", "truth", "repeat")}
    for path in ("loop", "there_and_back"):
        if all(path in p for p in per):
            mean[path] = {k: mean_finite([p[path].get(k, float("nan")) for p in per]) for k in per[0][path]}
    return {"rollouts": list(per), "mean": mean, "settings": dict(settings)}
