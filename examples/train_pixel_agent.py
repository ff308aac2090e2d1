"""Train a pixel agent to walk to the goal by DAgger on the privileged teacher, then test it in the exact world.

    python examples/train_pixel_agent.py                                   # frames of LV2/GroundTruth-v0
    python examples/train_pixel_agent.py --env-id LV2/World-v0 --out runs/world_agent   # generated frames

Round 0: a teacher that knows the scene drives (30% of its actions random), and every frame of every clip
(16 per env step) is labelled from its exact camera state: the teacher's action there, the goal's pixels, whether
the goal is in view, its bearing and distance. Later rounds: the last round's student drives (with the teacher
on a ``beta`` share of the steps), the teacher labels what it sees, and the student trains again on every round's
frames. After each round the student is scored closed-loop on validation scenes (``agent_val``) in
LV2/GroundTruth-v0; ``OUT/dagger.jsonl`` has the curve. A stopped run resumes where it stopped.
"""

import argparse
from dataclasses import dataclass, fields

from agents.dagger import Dagger, DaggerConfig


@dataclass
class Args:
    env_id: str = "LV2/GroundTruth-v0"  # where the frames it learns from come from
    steps: str = "1500,1500,1500"  # env steps of each DAgger round
    betas: str = "1.0,0.5,0.0"  # share of each round's steps the teacher drives (the first: all)
    first_epochs: int = 8
    later_epochs: int = 3
    val_scenes: int = 30  # validation scenes (agent_val) each round's student is scored on, in the truth
    fast: bool = False  # World-v0's fast options (distilled control encoder, fast decoder): see docs/performance.md
    out: str = "runs/pixel_agent"


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in fields(Args):
        if f.type == "bool" or isinstance(f.default, bool):
            parser.add_argument(f"--{f.name.replace('_', '-')}", action="store_true")
        else:
            parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default)
    return Args(**vars(parser.parse_args()))


args = parse_args()
rounds = tuple(zip((int(s) for s in args.steps.split(",")), (float(b) for b in args.betas.split(","))))
config = DaggerConfig(env_id=args.env_id, rounds=rounds, first_epochs=args.first_epochs,
                      later_epochs=args.later_epochs, val_scenes=args.val_scenes)
env_kwargs = {"ground_truth_frames": False} if args.env_id == "LV2/World-v0" else {}
if args.fast:
    env_kwargs.update(control_encoder="distilled", decoder="fast")
for record in Dagger(args.out, config, env_kwargs=env_kwargs).run():
    print(f"round {record['round']}: {record['total_env_steps']} env steps, {record['total_scenes']} scenes, "
          f"val success {record['success_val']:.2f}, val frame accuracy {record['frames_val']['accuracy']:.3f}, "
          f"mask IoU {record['frames_val']['mask_iou']:.3f}")
