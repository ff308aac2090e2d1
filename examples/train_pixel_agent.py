"""Train a pixel agent to walk to the goal, by imitating the privileged teacher, then test it in the exact world.

    python examples/train_pixel_agent.py                          # learn from LV2/GroundTruth-v0 (~10 min, 2 cores)
    python examples/train_pixel_agent.py --env-id LV2/World-v0    # learn from generated frames (~30 min at 1200 steps)

The recipe (the one `lv2 bench agents` runs for the shipped agents): a teacher that knows the scene drives with
30% of its actions replaced by random moves, and every frame of every clip (16 per env step) is labelled with
the teacher's action at that frame's exact camera pose; a small CNN sees only the frame, the goal's colour and
kind (``goal_observation=True``) and its previous action, and fits the labels. It is then scored in
LV2/GroundTruth-v0 on validation scenes, beside the teacher and a random policy.
"""

import argparse
from dataclasses import dataclass, fields

import gymnasium as gym

import lv2_env  # noqa: F401  (registers the environments)
from lv2_env import UNLIMITED_EPISODE_STEPS
from agents.evaluation import RandomPolicy, score_policy
from agents.imitation import CollectConfig, TrainConfig, collect, load_collection, train
from agents.pixel import AgentConfig
from agents.teacher import GoalTeacher
from lv2_env.data.splits import split_scenes


@dataclass
class Args:
    env_id: str = "LV2/GroundTruth-v0"  # where the frames it learns from come from
    env_steps: int = 1200  # env steps of the noisy teacher; each gives 16 labelled frames
    epochs: int = 12
    eval_scenes: int = 18  # validation scenes (agent_val) it is scored on, in the truth
    out: str = "runs/pixel_agent"


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in fields(Args):
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default)
    return Args(**vars(parser.parse_args()))


args = parse_args()

# 1. Collect: the noisy teacher drives, every frame is labelled with the teacher's action at its pose.
learn_env = gym.make(args.env_id, goal_observation=True, max_episode_steps=UNLIMITED_EPISODE_STEPS)
summary = collect(learn_env, CollectConfig(env_steps=args.env_steps), f"{args.out}/data")
print(f"collected {summary['frames']} labelled frames in {summary['episodes']} scenes")

# 2. Train the CNN on frames, goal and previous action.
data = load_collection(f"{args.out}/data")
agent, history = train(data, TrainConfig(epochs=args.epochs), AgentConfig(trained_in=args.env_id))
agent.save(f"{args.out}/agent")
print(f"trained: {history[-1]}; saved to {args.out}/agent (load with agents.pixel.load_agent)")

# 3. Test in the exact world, on scenes it never saw, beside the teacher and a random policy.
truth = gym.make("LV2/GroundTruth-v0", goal_observation=True, max_episode_steps=UNLIMITED_EPISODE_STEPS)
scenes = split_scenes("agent_val", args.eval_scenes)
for name, policy in (("pixel agent", agent.policy_for(truth)), ("teacher", GoalTeacher(truth)),
                     ("random", RandomPolicy(truth.action_space.n))):
    result = score_policy(truth, policy, scenes, desc=name)
    print(f"{name:12s} success {result['success']:.2f}  mean return {result['mean_return']:+.2f}  "
          f"mean steps {result['mean_steps']:.1f}")
