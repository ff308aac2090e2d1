"""Long generated rollouts against the exact render of the same camera path.

``lv2 eval --rollouts N --rollout-seconds S`` steps LV2/World-v0 (controls from the scene) along fixed camera
paths in held-out scenes (seeds from the eval range, never used in training) and scores every frame against
the ground truth that the env renders beside it, next to the two baselines of :mod:`lv2_env.evaluation.clips`
(repeat the episode's first frame; warp it with the known depth and path). Reported per rollout and on
average:

* **PSNR / SSIM per frame**, and PSNR per minute of video with its linear trend, the **drift per minute**
  (dB/min; negative = the video drifts away from the truth as it goes).
* **Sharpness**: the generated frames' gradient energy over the truth's (1 = as sharp; blobs score near 0,
  where PSNR can still rise), on every 4th frame.
* **Depth following**: the depth network on generated frames against the control depth (the scene's, the
  signal the model was asked to follow), as AbsRel on scene pixels (sky left out). The same network on the
  true frames gives the floor this can reach; on the repeat baseline, what ignoring the controls gets.
* **Clip boundaries**: the mean absolute change between the last frame of a clip and the first new frame of
  the next, against the mean change between consecutive frames within clips (ratio 1 = seamless).
* **Loop closure**: a path that turns a full circle in place and ends at its start pose: PSNR of the last
  generated frame against the first frame. (The baselines close any loop trivially, since they never move;
  the truth's own last frame equals its first exactly.)

Paths are discrete-action loops: ``walk`` (mostly forward, with turns and strafes; a fixed sequence) and
``loop`` (turning left at 30 deg/s: 12 one-second steps make 360 degrees).

:func:`evaluate_world` hands each rollout to a callback as it finishes, with the report of the rollouts so far
(:func:`world_report`), so that ``lv2 eval`` writes them as they come and a killed evaluation keeps them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from lv2_env.data.procedural import SPLIT_SEEDS
from lv2_env.evaluation.report import save_figure
from lv2_env.signals.warp import warp_first_frame
from model.metrics import PSNR_LOG_CEILING, mean_finite, psnr, sharpness_ratio, ssim

EVAL_SCENE_SEED = SPLIT_SEEDS["eval"][0]  # held-out scenes, never seen in training
WALK = (1, 1, 1, 5, 1, 1, 4, 1, 1, 6, 6, 1, 1, 3, 1, 1, 7, 8, 1, 1)  # forward, turns, strafes, a look up and down
LOOP = (5,) * 12
DEPTH_EVERY = 4  # depth following is measured on every 4th frame (the network is the cost)


def _mean_abs_change(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.float32) - b.astype(np.float32))))


def run_path(env, actions: Sequence[int], steps: int, scene_seed: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Step ``env`` (a LV2/World-v0, scene controls) ``steps`` times cycling ``actions``; the whole video."""
    _, info = env.reset(seed=seed, options={"scene_seed": int(scene_seed)})
    generated, truth = [info["frames"][-1:]], [info["ground_truth_frames"][-1:]]
    depth, poses = [info["depth"][-1:]], [info["poses"][-1:]]
    for k in range(steps):
        _, _, _, _, info = env.step(actions[k % len(actions)])
        generated.append(info["frames"][1:])
        truth.append(info["ground_truth_frames"][1:])
        depth.append(info["depth"][1:])
        poses.append(info["poses"][1:])
    return {"generated": np.concatenate(generated), "truth": np.concatenate(truth), "depth": np.concatenate(depth),
            "poses": np.concatenate(poses), "intrinsics": info["intrinsics"], "clip_frames": env.unwrapped.clip.frames,
            "fps": env.unwrapped.clip.fps, "caption": info["caption"]}


def depth_abs_rel(estimate: np.ndarray, reference: np.ndarray, sky_depth: float = 150.0) -> float:
    """Mean ``|est - ref| / ref`` over scene pixels (the reference's sky left out)."""
    keep = reference < 0.9 * sky_depth
    return float(np.mean(np.abs(estimate[keep] - reference[keep]) / reference[keep])) if keep.any() else float("nan")


def score_rollout(video: dict[str, np.ndarray], estimate_depth=None) -> dict[str, Any]:
    """Every number of one rollout (see the module docstring)."""
    generated, truth, fps = video["generated"], video["truth"], video["fps"]
    warped, _ = warp_first_frame(truth[0], video["depth"][0], video["poses"], video["intrinsics"])
    methods = {"model": generated, "repeat": np.repeat(truth[:1], len(truth), axis=0), "warp": warped}
    frames_per_minute = 60 * fps
    out: dict[str, Any] = {"frames": int(len(truth)), "caption": video["caption"]}
    for name, frames in methods.items():
        per_frame = [psnr(frames[i], truth[i]) for i in range(1, len(truth))]
        minutes = [float(np.mean(np.clip(per_frame[s : s + frames_per_minute], None, PSNR_LOG_CEILING)))
                   for s in range(0, len(per_frame), frames_per_minute)]
        drift = float(np.polyfit(np.arange(len(minutes)), minutes, 1)[0]) if len(minutes) > 1 else float("nan")
        out[name] = {
            "psnr": psnr(frames[1:], truth[1:]),
            "ssim": ssim(frames[1 :: DEPTH_EVERY], truth[1 :: DEPTH_EVERY]),
            # PSNR rewards blur; this does not (gradient energy over the truth's; 1 = as sharp as the truth).
            "sharpness": sharpness_ratio(frames[1 :: DEPTH_EVERY], truth[1 :: DEPTH_EVERY]),
            "psnr_per_frame": per_frame,
            "psnr_per_minute": minutes,
            "drift_db_per_minute": drift,
        }
    # Clip boundaries: frame 16k is the last frame of clip k, 16k + 1 the first new frame of clip k + 1.
    step = video["clip_frames"] - 1
    boundary = [k for k in range(step, len(generated) - 1, step)]
    within = [k for k in range(len(generated) - 1) if k % step != 0]
    for name, frames in (("model", generated), ("truth", truth)):
        jump = float(np.mean([_mean_abs_change(frames[k + 1], frames[k]) for k in boundary])) if boundary else float("nan")
        inside = float(np.mean([_mean_abs_change(frames[k + 1], frames[k]) for k in within]))
        out.setdefault("boundaries", {})[name] = {"jump": jump, "within": inside, "ratio": jump / max(inside, 1e-9)}
    if estimate_depth is not None:
        picks = np.arange(1, len(truth), DEPTH_EVERY)
        reference = video["depth"][picks]
        out["depth_abs_rel"] = {
            "model": depth_abs_rel(estimate_depth(generated[picks]), reference),
            "truth": depth_abs_rel(estimate_depth(truth[picks]), reference),
            "repeat": depth_abs_rel(estimate_depth(methods["repeat"][picks]), reference),
        }
    return out


def loop_closure(env, scene_seed: int, seed: int = 0) -> dict[str, Any]:
    """Turn a full circle in place: the last generated frame against the first (and against the truth's last)."""
    video = run_path(env, LOOP, len(LOOP), scene_seed, seed)
    return {"psnr_last_vs_first": psnr(video["generated"][-1], video["generated"][0]),
            "psnr_last_vs_truth": psnr(video["generated"][-1], video["truth"][-1]),
            "truth_last_vs_first": psnr(video["truth"][-1], video["truth"][0])}


RolloutCallback = Callable[[dict[str, Any], dict[str, np.ndarray]], None]


def evaluate_world(env, rollouts: int, steps: int, estimate_depth=None, seed: int = 0, progress: bool = True,
                   on_rollout: RolloutCallback | None = None) -> dict[str, Any]:
    """``rollouts`` walks of ``steps`` clips in held-out scenes plus one loop each; the report.

    After each rollout ``on_rollout(report, video)`` gets the report of the rollouts finished so far (the new
    one is ``report["rollouts"][-1]``) and that rollout's video (:func:`run_path`), so that a caller can write
    both as they come (``lv2 eval``: nothing finished is lost if it is killed); videos are not kept here.
    """
    from tqdm import tqdm

    per: list[dict[str, Any]] = []
    report: dict[str, Any] = {}
    for r in tqdm(range(rollouts), desc="world rollouts", unit="rollout", disable=not progress):
        scene = EVAL_SCENE_SEED + 7919 * r  # spread over the eval range
        video = run_path(env, WALK, steps, scene, seed)
        scores = score_rollout(video, estimate_depth)
        per.append({"scene_seed": scene, **scores, "loop": loop_closure(env, scene, seed)})
        seconds = steps * (video["clip_frames"] - 1) / video["fps"]
        report = world_report(per, {"rollouts": rollouts, "rollouts_finished": len(per), "steps": steps,
                                    "seconds_of_video": seconds, "walk": list(WALK), "loop": list(LOOP)})
        if on_rollout is not None:
            on_rollout(report, video)
    return report


def world_report(per: Sequence[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
    """The report of rollouts scored by :func:`score_rollout` (plus ``scene_seed`` and ``loop``): each of them,
    their means, and ``settings``."""
    if not per:
        raise ValueError("world_report needs at least one scored rollout, got none")
    mean: dict[str, Any] = {}
    for m in ("model", "repeat", "warp"):
        mean[m] = {k: mean_finite([p[m][k] for p in per if k in p[m]])
                   for k in ("psnr", "ssim", "sharpness", "drift_db_per_minute")}
        longest = max(len(p[m]["psnr_per_minute"]) for p in per)
        mean[m]["psnr_per_minute"] = [mean_finite([p[m]["psnr_per_minute"][i] for p in per if i < len(p[m]["psnr_per_minute"])])
                                      for i in range(longest)]
    mean["boundaries"] = {w: {k: mean_finite([p["boundaries"][w][k] for p in per]) for k in ("jump", "within", "ratio")}
                          for w in ("model", "truth")}
    if all("depth_abs_rel" in p for p in per):
        mean["depth_abs_rel"] = {w: mean_finite([p["depth_abs_rel"][w] for p in per]) for w in ("model", "truth", "repeat")}
    mean["loop"] = {k: mean_finite([p["loop"][k] for p in per]) for k in per[0]["loop"]}
    return {"rollouts": list(per), "mean": mean, "settings": dict(settings)}


def world_table(report: dict[str, Any]) -> str:
    """The rollout means as a Markdown table."""
    mean = report["mean"]
    lines = ["| method | PSNR (dB) | SSIM | sharpness | drift (dB/min) |", "|---|---|---|---|---|"]
    for m in ("model", "repeat", "warp"):
        s = mean[m]
        lines.append(f"| {m} | {s['psnr']:.2f} | {s['ssim']:.4f} | {s.get('sharpness', float('nan')):.2f} | "
                     f"{s['drift_db_per_minute']:+.2f} |")
    b = mean["boundaries"]
    lines += ["", f"clip boundaries: model jump {b['model']['jump']:.2f} vs within-clip change {b['model']['within']:.2f} "
                  f"(ratio {b['model']['ratio']:.2f}; truth {b['truth']['ratio']:.2f})"]
    if "depth_abs_rel" in mean:
        d = mean["depth_abs_rel"]
        lines.append(f"depth following (AbsRel of the depth network vs control depth): model {d['model']:.3f}, "
                     f"truth frames {d['truth']:.3f}, repeat {d['repeat']:.3f}")
    loop = mean["loop"]
    lines.append(f"loop closure (360 deg turn): last vs first frame {loop['psnr_last_vs_first']:.2f} dB "
                 f"(last vs truth {loop['psnr_last_vs_truth']:.2f} dB)")
    return "\n".join(lines)


def plot_world(report: dict[str, Any], path: str | Path) -> Path:
    """PSNR per frame (mean over rollouts, smoothed over a second) and per minute, model beside baselines."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 3.2), dpi=110)
    left, right = fig.subplots(1, 2)
    for m, colour in (("model", "C0"), ("repeat", "C1"), ("warp", "C2")):
        curves = [np.clip(np.array(p[m]["psnr_per_frame"], dtype=float), None, 60.0) for p in report["rollouts"]]
        n = min(len(c) for c in curves)
        curve = np.mean([c[:n] for c in curves], axis=0)
        kernel = np.ones(16) / 16
        smooth = np.convolve(curve, kernel, mode="valid") if n >= 16 else curve
        left.plot(np.arange(len(smooth)) / 16.0, smooth, color=colour, label=m, linewidth=1.2)
        minutes = report["mean"][m]["psnr_per_minute"]
        right.plot(np.arange(1, len(minutes) + 1), minutes, color=colour, marker="o", label=m)
    left.set_xlabel("seconds of video")
    left.set_ylabel("PSNR (dB), 1 s moving mean")
    right.set_xlabel("minute")
    right.set_ylabel("mean PSNR (dB)")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"generated vs ground truth over {len(report['rollouts'])} held-out rollouts", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
