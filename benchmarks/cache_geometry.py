"""Which point-cache geometry keeps a world steered by its own frames (a world from a picture) a world?

    python benchmarks/cache_geometry.py --rollouts 3 --seconds 20 --out bench/cache-geometry

Runs ``lv2 eval``'s rollouts (a walk, a 360-degree turn, a there-and-back path) on the VALIDATION scenes with
``control_source="cache"`` under each geometry, and with scene control for reference, and prints one table:
the walk's PSNR beside repeating the first frame, the revealed pixels, how much of the cache's depth is within 1.25x of the true
depth, its holes, the first step below repeat, the share of frames more than 3 dB below repeat (collapsed), and loop
closure composited and with compositing off. Choices
are made here; the test split reports them (``lv2 eval --control-source cache``).

Geometries (:class:`lv2_env.conditioning.point_cache.PointCache`):
* ``as-seen``: every key frame's estimated depth taken as it comes, the last 4 kept, unseen regions at the far
  plane (lv2 before issue 27);
* ``ground``: as-seen, with the ground plane's depth where nothing has been seen below the horizon;
* ``anchored``: the start frame kept for good, a new estimate taken only where the cache holds nothing and
  scaled to what it holds, and the ground prior;
* ``anchored+scaled``: anchored, with the start frame's estimated depth scaled so its lowest rows lie on the
  ground plane at the camera's known height (the metric scale a depth network only guesses);
* ``start+ground`` (lv2's default): no key frame enters the cache: the start frame's points and the ground prior
  are the world's geometry for good, and the memory takes the cache's depth; the depth network runs on the start
  frame only (``PointCache(key_frames=False)``);
* ``start+ground+scaled``: start+ground, with the start frame's depth scaled to the ground plane (as
  anchored+scaled), so that the start frame's points and the ground prior agree.

Diagnoses (not options of lv2: they read the scene's exact depth, which a world from a picture does not have):
* ``oracle-start``: anchored, with the start frame's exact depth in place of the depth network's estimate;
* ``oracle-all``: anchored, with the exact depth of every key frame's pose as its "estimate" too: what the cache
  world would score with a perfect depth network on the model's frames;
* ``start+ground, start memory``: start+ground, and the world memory keeps the start frame alone (the model's
  frames are not remembered: nothing it drew is lifted onto the ground plane and shown again);
* ``oracle-start+ground``: start+ground with the start frame's exact depth (what a perfect depth network on
  the start picture would give);
* ``start-only``: start+ground, but the memory takes the depth network's estimate on the model's frame where
  the cache holds nothing (what those estimates do to the memory alone).
"""

import argparse
import json
import time
from pathlib import Path

from lv2_env.envs.world import WorldEnv
from lv2_env.evaluation.rollouts import evaluate_world

KEY_FRAMES = {"key_frames": True, "anchored": True, "ground_z": 0.0, "scale": False}  # anchored
GEOMETRIES = {"as-seen": {**KEY_FRAMES, "anchored": False, "ground_z": None},
              "ground": {**KEY_FRAMES, "anchored": False},
              "anchored": KEY_FRAMES,
              "anchored+scaled": {**KEY_FRAMES, "scale": True},
              "start+ground": {**KEY_FRAMES, "key_frames": False},
              "start+ground+scaled": {**KEY_FRAMES, "key_frames": False, "scale": True},
              "oracle-start+ground": {**KEY_FRAMES, "key_frames": False, "oracle": "start"},
              "start+ground, start memory": {**KEY_FRAMES, "key_frames": False, "start_memory": True},
              "oracle-start": {**KEY_FRAMES, "oracle": "start"},
              "oracle-all": {**KEY_FRAMES, "oracle": "all"},
              "start-only": {**KEY_FRAMES, "start_only": True}}


class OracleDepthEnv(WorldEnv):
    """A cache world whose depth network is replaced by the scene's exact depth: at the start frame
    (``oracle="start"``) or at the start and every key frame (``"all"``). A diagnosis only."""

    def __init__(self, oracle: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.oracle = oracle
        self._exact = None  # the exact depth the next call of the depth network returns instead

    def _estimate_depth(self, frames):
        exact, self._exact = self._exact, None
        return self._network(frames) if exact is None else exact[None]

    def _with_oracle(self, call, *args, **kwargs):
        self._network = self.model.estimate_depth
        self.model.estimate_depth = self._estimate_depth  # the shared model's, for this call only
        try:
            return call(*args, **kwargs)
        finally:
            self.model.estimate_depth = self._network

    def reset(self, *, seed=None, options=None):
        world_start = self.world.start

        def start(*a, **k):  # the start frame's exact depth is the episode's first "estimate"
            out = world_start(*a, **k)
            self._exact = out.depth[0]
            return out
        self.world.start = start
        try:
            return self._with_oracle(super().reset, seed=seed, options=options)
        finally:
            self.world.start = world_start

    def finish_step(self, plan, frames, generation_timings):
        self._exact = plan.next_depth if self.oracle == "all" else None
        return self._with_oracle(super().finish_step, plan, frames, generation_timings)


def run(control_source: str, geometry: dict | None, args) -> dict:
    oracle = (geometry or {}).get("oracle")
    kwargs = {"checkpoint": args.checkpoint, "preset": None, "goal_radius": None, "control_source": control_source}
    env = OracleDepthEnv(oracle, **kwargs) if oracle else WorldEnv(**kwargs)
    if geometry is not None:
        env.scale_start_depth = geometry["scale"]
        for name in ("key_frames", "anchored", "ground_z"):
            setattr(env.point_cache, name, geometry[name])
        if geometry.get("start_memory"):  # only the start frame's add (protected) reaches the memory
            memory, remember = env.memory, env.memory.add
            memory.add = lambda *a, protected=False, **k: remember(*a, protected=True, **k) if protected else 0
        if geometry.get("start_only"):  # key frames estimated and fused, but none enters the cache
            cache, add = env.point_cache, env.point_cache.add
            cache.add = lambda *a, **k: add(*a, **k) if len(cache) == 0 else None
    return evaluate_world(env, args.rollouts, args.seconds, seed=args.seed, split="validation",
                          there_and_back_seconds=args.back_seconds, progress=False)


def row(name: str, report: dict, seconds: float) -> str:
    mean = report["mean"]
    cache = mean.get("cache", {})
    cell = lambda v, d=2: "-" if v is None or v != v else f"{v:.{d}f}"  # noqa: E731
    return (f"| {name} | {cell(mean['model']['psnr'])} | {cell(mean['repeat']['psnr'])} | "
            f"{cell(mean['model'].get('psnr_revealed'))} | {cell(100 * cache['depth_right'], 0) if cache else '-'} | "
            f"{cell(100 * cache['holes'], 0) if cache else '-'} | "
            f"{cell(cache.get('first_step_below_repeat'), 1)} ({cache.get('never_below_repeat', '-')} never) | "
            f"{cell(100 * cache['collapsed'], 0) if cache else '-'} | "
            f"{cell(mean['loop']['psnr_last_vs_first'])} / {cell(mean['loop'].get('model_only_last_vs_first'))} | "
            f"{seconds:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rollouts", type=int, default=3, help="validation scenes (default 3)")
    parser.add_argument("--seconds", type=int, default=20, help="seconds of each walk (default 20)")
    parser.add_argument("--back-seconds", type=int, default=5, help="each way of the there-and-back path")
    parser.add_argument("--geometries", nargs="*", default=["scene", "anchored", "start+ground"],
                        choices=["scene", *GEOMETRIES])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default="model/shipped",
                        help="the model (a copy with another depth/ compares depth networks)")
    parser.add_argument("--out", default=None, help="a directory for each run's report (JSON)")
    args = parser.parse_args()

    print(f"# {time.strftime('%Y-%m-%d')}: {args.rollouts} validation scenes, {args.seconds}-second walks")
    print("| controls | walk PSNR | repeat PSNR | revealed PSNR | cache depth within 1.25x (%) | holes (%) | "
          "first step below repeat | frames > 3 dB below repeat (%) | loop closure: composited / model only | "
          "seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.geometries:
        tick = time.perf_counter()
        report = run("scene", None, args) if name == "scene" else run("cache", GEOMETRIES[name], args)
        print(row("scene (exact)" if name == "scene" else f"cache: {name}", report, time.perf_counter() - tick),
              flush=True)
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            (Path(args.out) / f"{name}.json").write_text(json.dumps(report, default=float))


if __name__ == "__main__":
    main()
