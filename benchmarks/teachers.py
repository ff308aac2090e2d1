"""The privileged teacher's success on validation scenes, by search mode (the label sources of the pixel agents).

    python benchmarks/teachers.py --scenes 30 --searches left-keep,left,toward

Prints a markdown table: success within 30 steps in LV2/GroundTruth-v0 on the first ``--scenes`` ``agent_val``
scenes, mean steps and mean return. Never run on the test split.
"""

import argparse

import gymnasium as gym

import lv2_env  # noqa: F401
from lv2_env import UNLIMITED_EPISODE_STEPS
from agents.evaluation import score_policy
from agents.teacher import GoalTeacher
from lv2_env.data.splits import split_scenes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=30)
    parser.add_argument("--searches", default="left-keep,left,toward")
    args = parser.parse_args()
    env = gym.make("LV2/GroundTruth-v0", goal_observation=True, max_episode_steps=UNLIMITED_EPISODE_STEPS)
    print(f"| teacher ({args.scenes} agent_val scenes) | success | mean steps | mean return |")
    print("|---|---|---|---|")
    for search in args.searches.split(","):
        result = score_policy(env, GoalTeacher(env, search=search), split_scenes("agent_val", args.scenes),
                              progress=False)
        print(f"| `search={search!r}` | {result['success']:.3f} | {result['mean_steps']:.1f} | "
              f"{result['mean_return']:+.2f} |", flush=True)


if __name__ == "__main__":
    main()
