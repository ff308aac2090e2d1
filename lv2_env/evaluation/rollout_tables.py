"""What ``lv2 eval --rollouts`` prints and plots from a report of :mod:`lv2_env.evaluation.rollouts`: the means
as Markdown tables (:func:`world_table`), the walk per scene (:func:`scene_table`), PSNR over time
(:func:`plot_world`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lv2_env.evaluation.report import save_figure
from lv2_env.evaluation.rollouts import COLLAPSE_DB, METHODS


def _cell(value: float, digits: int = 2, sign: bool = False) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _percent(value: float) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{100 * value:.1f}%"


def world_table(report: dict[str, Any]) -> str:
    """The means over scenes as Markdown: a table of the walk per method, then the paths that come back."""
    mean = report["mean"]
    lines = ["| method | PSNR (dB) | PSNR per minute (dB) | drift (dB/min) | SSIM | sharpness | object colour error | "
             "objects visible |", "|---|---|---|---|---|---|---|---|"]
    for m in METHODS:
        if m not in mean:
            continue
        s = mean[m]
        minutes = ", ".join(_cell(v) for v in s["psnr_per_minute"])
        lines.append(f"| {m} | {_cell(s['psnr'])} | {minutes} | {_cell(s['drift_db_per_minute'], sign=True)} | "
                     f"{_cell(s['ssim'], 3)} | {_cell(s['sharpness'])} | {_cell(s['colour_error'], 1)} | "
                     f"{_cell(100 * s['visible'], 0)}% |")
    if "memory+inpaint" not in mean:
        lines += ["", "memory+inpaint: not scored (OpenCV is not installed: pip install opencv-python-headless)"]
    if "revealed_fraction" in mean:
        lines += ["", f"The model's own drawing: the {100 * mean['revealed_fraction']:.0f}% of pixels the world memory "
                      "held nothing for (composited elsewhere), and the objects the model drew first "
                      f"({mean['objects_drawn_first']:.1f} per scene):", "",
                  "| method | PSNR revealed (dB) | SSIM revealed | sharpness revealed | colour error, objects drawn first |",
                  "|---|---|---|---|---|"]
        for m in METHODS:
            if m in mean:
                s = mean[m]
                lines.append(f"| {m} | {_cell(s['psnr_revealed'])} | {_cell(s['ssim_revealed'], 3)} | "
                             f"{_cell(s['sharpness_revealed'])} | {_cell(s['colour_error_drawn_first'], 1)} |")
    if any("phantom_share" in mean[m] for m in METHODS if m in mean):
        lines += ["", "What the truth has not: the phantom share (of the open ground and sky the truth shows, the share "
                      "where the frame has structure or a colour the truth has not there), overall and per minute, and "
                      "the goal's colour error (its mean colour against the truth's, where it is in view):", "",
                  "| method | phantom share | phantom share per minute | goal colour error |", "|---|---|---|---|"]
        for m in METHODS:
            if m in mean:
                s = mean[m]
                minutes = ", ".join(_percent(v) for v in s.get("phantom_share_per_minute", ()))
                lines.append(f"| {m} | {_percent(s['phantom_share'])} | {minutes} | {_cell(s['goal_colour_error'], 1)} |")
    if "cache" in mean:
        c = mean["cache"]
        lines += ["", f"cache control: the point cache's depth is within 1.25x of the true depth on "
                      f"{_cell(100 * c['depth_right'], 0)}% of the scene's pixels; {_cell(100 * c['holes'], 0)}% of the "
                      f"path's pixels had no cached depth; the model's "
                      f"frames first fell below repeat at step {_cell(c['first_step_below_repeat'], 1)} (mean over the "
                      f"scenes where they did; never in {c['never_below_repeat']} of {len(report['rollouts'])}); "
                      f"{_cell(100 * c.get('collapsed', float('nan')), 0)}% of its frames were more than "
                      f"{COLLAPSE_DB:g} dB below repeat"]
    b = mean["boundaries"]
    lines += ["", f"clip boundaries: model jump {b['model']['jump']:.2f} vs within-clip change {b['model']['within']:.2f} "
                  f"(ratio {b['model']['ratio']:.2f}; truth {b['truth']['ratio']:.2f})"]
    if "depth_following" in mean:
        d = mean["depth_following"]
        lines.append(f"depth following (share of pixels whose depth-network depth is within 1.25x of the control "
                     f"depth): model {100 * d['model']:.0f}%, truth frames {100 * d['truth']:.0f}%, repeat "
                     f"{100 * d['repeat']:.0f}%")
    for path, what in (("loop", "loop closure (360 deg turn)"), ("there_and_back", "revisit (there and back)")):
        if path in mean:
            c = mean[path]
            baseline = c.get("memory+inpaint_last_vs_first")
            own = c.get("model_only_last_vs_first")
            lines.append(f"{what}: model's last frame vs the first {_cell(c['psnr_last_vs_first'])} dB (vs the truth's "
                         f"last {_cell(c['psnr_last_vs_truth'])} dB)"
                         + ("" if own is None else f"; compositing off (the model's own drawing) {_cell(own)} dB")
                         + ("" if baseline is None else f"; memory+inpaint {_cell(baseline)} dB"))
    return "\n".join(lines)


def scene_table(report: dict[str, Any]) -> str:
    """PSNR, sharpness, object colour error, phantom share and goal colour error of the walk per scene and method,
    as Markdown."""
    methods = [m for m in METHODS if m in report["mean"]]
    lines = ["| scene | style | " + " | ".join(f"{m} PSNR / sharpness / colour error / phantom share / goal colour "
                                              "error" for m in methods) + " |",
             "|---|---|" + "---|" * len(methods)]
    for p in report["rollouts"]:
        cells = [f"{_cell(p[m]['psnr'])} / {_cell(p[m]['sharpness'])} / {_cell(p[m]['colour_error'], 1)} / "
                 f"{_percent(p[m].get('phantom_share'))} / {_cell(p[m].get('goal_colour_error'), 1)}" for m in methods]
        lines.append(f"| {p['scene_seed']} | {p['style']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_world(report: dict[str, Any], path: str | Path) -> Path:
    """PSNR per frame (mean over rollouts, smoothed over a second) and per minute, model beside baselines."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 3.2), dpi=110)
    left, right = fig.subplots(1, 2)
    for m, colour in (("model", "C0"), ("repeat", "C1"), ("warp", "C2"), ("memory+inpaint", "C3")):
        if m not in report["mean"]:
            continue
        curves = [np.clip(np.array(p[m]["psnr_per_frame"], dtype=float), None, 60.0) for p in report["rollouts"] if m in p]
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
