"""Choose the pixel agent's recipe on validation scenes: train one variant on a stored DAgger run's frames and
score it.

    python examples/train_pixel_agent.py --out runs/truth-dagger          # makes runs/truth-dagger/round_K
    python benchmarks/agent_recipe.py --data runs/truth-dagger --rounds 1                  # the recipe as it is
    python benchmarks/agent_recipe.py --data runs/truth-dagger --rounds 1 --mask-weight 0 --aux-weight 0
    python benchmarks/agent_recipe.py --data runs/truth-dagger --rounds 1 --previous-action
    python benchmarks/agent_recipe.py --data runs/truth-dagger --rounds 1 --class-balance 0
    python benchmarks/agent_recipe.py --data runs/truth-dagger --rounds 3 --labels left-keep   # relabelled

Prints one JSON line: the last epoch's training figures, how the agent reads the frames of the run's fixed
validation collection (``val-frames/``: action accuracy, balanced accuracy, goal mask IoU, goal-in-view
precision and recall, bearing error), and the closed-loop success within 30 steps on the first ``--val-scenes``
``agent_val`` scenes in LV2/GroundTruth-v0, with the actions of the first few episodes (F forward, l/r turn
left/right) to show how it fails. Never run on the test split.
"""

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import lv2_env  # noqa: F401
from lv2_env import UNLIMITED_EPISODE_STEPS
from agents.dagger import subsample
from agents.evaluation import run_episode
from agents.imitation import TrainConfig, frame_metrics, load_collection, train
from agents.pixel import AgentConfig
from agents.teacher import SEARCH_MODES, GoalTeacher
from lv2_env.data.splits import split_scenes

LETTERS = "0FBLRlrudUD"  # one per discrete action


def relabel(directories: list[Path], search: str) -> np.ndarray:
    """The action labels of every stored frame (in :func:`load_collection`'s order), recomputed from its camera
    state with the teacher's ``search`` (its stored goal-in-view decides the search; no frame is rendered again
    except to check a turn's view under ``left-keep``)."""
    env = gym.make("LV2/GroundTruth-v0", goal_observation=True, height=32, width=32)
    teacher = GoalTeacher(env, search=search)
    labels = []
    for directory in directories:
        for file in sorted(directory.glob("episode_*.npz")):
            with np.load(file) as stored:
                seed, style, states = int(stored["scene_seed"]), str(stored["style"]), stored["states"]
                in_view, old = stored["in_view"], stored["labels"]
            if (old < 0).all():  # perception frames: no action labels
                labels.append(old)
                continue
            env.reset(seed=seed, options={"scene_seed": seed, "style": style})
            teacher.reset()
            labels.append(np.array(teacher.labels(states, in_sight=in_view), dtype=np.int64))
    return np.concatenate(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a DAgger run's directory (round_K/ and val-frames/ in it)")
    parser.add_argument("--rounds", type=int, default=1, help="train on the frames of its first N rounds")
    parser.add_argument("--frame-stride", type=int, default=2)
    parser.add_argument("--labels", choices=["stored", *SEARCH_MODES], default="stored",
                        help="relabel the rounds' frames with this teacher search (the validation frames too)")
    parser.add_argument("--val-scenes", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--mask-weight", type=float, default=TrainConfig.mask_weight)
    parser.add_argument("--aux-weight", type=float, default=TrainConfig.aux_weight)
    parser.add_argument("--class-balance", type=float, default=TrainConfig.class_balance)
    parser.add_argument("--previous-action", action="store_true")
    parser.add_argument("--input-size", type=int, default=AgentConfig.input_size)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (1 beside another job)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    run = Path(args.data)
    rounds = [run / f"round_{k}" for k in range(args.rounds)]
    data, val = load_collection(*rounds), load_collection(run / "val-frames")
    if args.labels != "stored":
        data["labels"], val["labels"] = relabel(rounds, args.labels), relabel([run / "val-frames"], args.labels)
    data = subsample(data, args.frame_stride)
    if (run / "perception").is_dir():  # the run's perception frames, as DAgger trains on them
        perception = load_collection(run / "perception")
        data = {key: np.concatenate([data[key], perception[key]]) for key in data}
    config = replace(TrainConfig(), epochs=args.epochs, mask_weight=args.mask_weight, aux_weight=args.aux_weight,
                     class_balance=args.class_balance)
    started = time.perf_counter()
    agent, history = train(data, config, AgentConfig(input_size=args.input_size, previous_action=args.previous_action),
                           progress=False)
    seconds = time.perf_counter() - started

    truth = gym.make("LV2/GroundTruth-v0", goal_observation=True, max_episode_steps=UNLIMITED_EPISODE_STEPS,
                     torch_threads=args.threads)
    policy, successes, shown = agent.policy_for(truth), [], []
    for seed, style in split_scenes("agent_val", args.val_scenes):
        actions = []

        def act(observation, info, actions=actions):
            actions.append(policy(observation, info))
            return actions[-1]

        act.reset = policy.reset
        episode = run_episode(truth, act, seed, style)
        successes.append(episode.success)
        if len(shown) < 6:
            shown.append("".join(LETTERS[a] for a in actions))
    print(json.dumps({"rounds": args.rounds, "labels": args.labels, "frames": int(len(data["labels"])), "mask_weight": args.mask_weight,
                      "aux_weight": args.aux_weight, "class_balance": args.class_balance,
                      "previous_action": args.previous_action, "input_size": args.input_size, "epochs": args.epochs,
                      "train_seconds": round(seconds), "train": history[-1],
                      "val_frames": {k: round(v, 3) for k, v in frame_metrics(agent, val).items()},
                      "val_success": round(float(np.mean(successes)), 3), "val_scenes": args.val_scenes,
                      "first_episodes": shown}))


if __name__ == "__main__":
    main()
