"""Choose the pixel agent's recipe on validation scenes: train one variant on a stored collection and score it.

    lv2 bench agents --out bench/agents                    # (or its first stage) makes bench/agents/collect-truth
    python benchmarks/agent_recipe.py --data bench/agents/collect-truth --labels toward --previous-action
    python benchmarks/agent_recipe.py --data bench/agents/collect-truth --labels left --no-augment

Prints one JSON line: the last epoch's training accuracy, the accuracy on the frames of a validation collection
(``--val-steps`` env steps of the same noisy teacher on ``agent_val`` scenes, made once in ``--val-data``), and the
closed-loop success within 30 steps on the first ``--val-scenes`` validation scenes in LV2/GroundTruth-v0, with
the actions of the first few episodes (F forward, l/r turn left/right) to show how it fails. ``--labels``
relabels the collection from its stored camera states with the teacher's other search (``toward``: turn the
shorter way to a goal out of sight; ``left``: turn left until it is in sight). Never run on the test split.
"""

import argparse
import json
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import lv2_env  # noqa: F401
from lv2_env import UNLIMITED_EPISODE_STEPS
from agents.evaluation import run_episode
from agents.imitation import CollectConfig, TrainConfig, collect, load_collection, train
from agents.pixel import AgentConfig
from agents.teacher import GoalTeacher
from lv2_env.data.splits import split_scenes

LETTERS = "0FBLRlrudUD"  # one per discrete action


def relabel(directory: Path, search: str) -> np.ndarray:
    """The labels of every stored frame, recomputed from its camera state with the teacher's ``search``."""
    env = gym.make("LV2/GroundTruth-v0", goal_observation=True, height=32, width=32)
    teacher = GoalTeacher(env, search=search)
    labels = []
    for file in sorted(directory.glob("episode_*.npz")):
        with np.load(file) as stored:
            if "states" not in stored:
                raise ValueError(f"{file} holds no camera states: collect it again to relabel it")
            seed, style, states = int(stored["scene_seed"]), str(stored["style"]), stored["states"]
        env.reset(seed=seed, options={"scene_seed": seed, "style": style})
        teacher.reset()
        labels.extend(teacher.labels(states))
    return np.array(labels, dtype=np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a collection (lv2 bench agents' collect-truth or collect-world)")
    parser.add_argument("--val-data", default="bench/agent-val-collection")
    parser.add_argument("--val-steps", type=int, default=200)
    parser.add_argument("--val-scenes", type=int, default=30)
    parser.add_argument("--labels", choices=["stored", "toward", "left"], default="stored")
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--previous-action", action="store_true")
    parser.add_argument("--mirror", action="store_true")
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (1 beside another job)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    data = load_collection(args.data)
    truth = gym.make("LV2/GroundTruth-v0", goal_observation=True, max_episode_steps=UNLIMITED_EPISODE_STEPS,
                     torch_threads=args.threads)
    val_dir = Path(args.val_data)
    collect(truth, CollectConfig(env_steps=args.val_steps, split="agent_val"), val_dir, progress=False)
    val = load_collection(val_dir)
    if args.labels != "stored":
        data["labels"], val["labels"] = relabel(Path(args.data), args.labels), relabel(val_dir, args.labels)

    config = TrainConfig(epochs=args.epochs, mirror=args.mirror, **({"shift": 0, "brightness": 0.0}
                                                                   if args.no_augment else {}))
    started = time.perf_counter()
    agent, history = train(data, config, AgentConfig(previous_action=args.previous_action), progress=False)
    seconds = time.perf_counter() - started
    with torch.no_grad():
        images = torch.as_tensor(val["images"]).permute(0, 3, 1, 2).float() / 255.0
        predicted = agent.net(images, torch.as_tensor(val["goals"]), torch.as_tensor(val["previous"])).argmax(1)
    frame_accuracy = float((predicted.numpy() == val["labels"]).mean())

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
    print(json.dumps({"labels": args.labels, "previous_action": args.previous_action, "mirror": args.mirror,
                      "augment": not args.no_augment, "epochs": args.epochs, "train_seconds": round(seconds),
                      "train_accuracy": history[-1]["accuracy"], "val_frame_accuracy": round(frame_accuracy, 3),
                      "val_success": round(float(np.mean(successes)), 3), "val_scenes": args.val_scenes,
                      "first_episodes": shown}))


if __name__ == "__main__":
    main()
