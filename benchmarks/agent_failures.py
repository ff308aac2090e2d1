"""Why a pixel agent fails in the generated world where it fails: the same agent from the same start in
LV2/GroundTruth-v0 and in LV2/World-v0, step by step.

    python benchmarks/agent_failures.py --agent world-trained --scenes 6 --world-fast --out bench/agent-failures

Per scene and step: the action in each world and the first step where they differ (where the paths part), the
goal's pixels in the truth's frame and the mean RGB distance between the generated frame's colour there and the
truth's (the goal colour error, when at least 20 goal pixels show), and the share of the truth's open ground and
sky (no object) where the generated frame is far from the truth (mean RGB distance over 60: phantom structure).
Writes ``failures.json`` and ``strip.png`` (for the first scene: the truth's frames above the world's, with the
step's actions). Scenes are the test split's first (``agent_test``): a diagnosis, never a choice.
"""

import argparse
import json
from pathlib import Path

import gymnasium as gym
import imageio.v3 as iio
import numpy as np

import lv2_env  # noqa: F401
from lv2_env import UNLIMITED_EPISODE_STEPS
from agents.pixel import load_agent
from lv2_env.data.splits import split_scenes

LETTERS = "0FBLRlrudUD"
PHANTOM_RGB = 60.0
MIN_GOAL_PIXELS = 20


def walk(env, agent, seed: int, style: str, steps: int):
    """Frames, object ids (truth only), actions and whether the goal was reached, in ``env``."""
    policy = agent.policy_for(env)
    observation, info = env.reset(seed=seed, options={"scene_seed": seed, "style": style})
    policy.reset(info)
    frames, truths, ids, actions, reached = [observation["image"]], [], [], [], False
    for _ in range(steps):
        action = policy(observation, info)
        observation, _, terminated, _, info = env.step(action)
        actions.append(int(action))
        frames.append(observation["image"])
        if info.get("ground_truth_object_ids") is not None:  # World-v0: the truth of the same camera path
            truths.append(info["ground_truth_frames"][-1])
            ids.append(info["ground_truth_object_ids"][-1])
        if terminated:
            reached = True
            break
    return frames, truths, ids, actions, reached, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agent", default="world-trained")
    parser.add_argument("--scenes", type=int, default=6)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--world-fast", action="store_true")
    parser.add_argument("--out", default="bench/agent-failures")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    options = {"control_encoder": "distilled", "decoder": "fast"} if args.world_fast else {}
    truth = gym.make("LV2/GroundTruth-v0", goal_observation=True, max_episode_steps=UNLIMITED_EPISODE_STEPS)
    world = gym.make("LV2/World-v0", goal_observation=True, max_episode_steps=UNLIMITED_EPISODE_STEPS, **options)
    agent = load_agent(args.agent, env=truth)
    records = []
    for index, (seed, style) in enumerate(split_scenes("agent_test", args.scenes)):
        _, _, _, t_actions, t_reached, _ = walk(truth, agent, seed, style, args.steps)
        w_frames, w_truths, w_ids, w_actions, w_reached, info = walk(world, agent, seed, style, args.steps)
        parted = next((i for i, (a, b) in enumerate(zip(t_actions, w_actions)) if a != b), None)
        goal_id = world.unwrapped.scene.landmark + 1
        colour_errors, phantom = [], []
        for generated, real, ids in zip(w_frames[1:], w_truths, w_ids):
            generated, real = generated.astype(np.float32), real.astype(np.float32)
            goal = ids == goal_id
            if goal.sum() >= MIN_GOAL_PIXELS:
                colour_errors.append(float(np.linalg.norm(generated[goal].mean(0) - real[goal].mean(0))))
            open_ground = ids <= 0  # sky (-1) and ground (0): no object in the truth
            distance = np.linalg.norm(generated - real, axis=-1)
            phantom.append(float((distance[open_ground] > PHANTOM_RGB).mean()) if open_ground.any() else 0.0)
        record = {"scene_seed": seed, "style": style, "goal": info["goal"],
                  "truth_actions": "".join(LETTERS[a] for a in t_actions), "world_actions": "".join(LETTERS[a] for a in w_actions), "reached_truth": t_reached,
                  "reached_world": w_reached, "paths_part_at_step": parted,
                  "goal_colour_error": round(float(np.mean(colour_errors)), 1) if colour_errors else None,
                  "phantom_share": round(float(np.mean(phantom)), 3) if phantom else None}
        records.append(record)
        print(json.dumps(record), flush=True)
        if index == 0:
            shown = min(len(w_frames), 8)
            top = np.concatenate([w_frames[0], *w_truths[:shown - 1]], axis=1)
            bottom = np.concatenate(w_frames[:shown], axis=1)
            iio.imwrite(out / "strip.png", np.concatenate([top, bottom], axis=0))
    (out / "failures.json").write_text(json.dumps(records, indent=2) + "\n")


if __name__ == "__main__":
    main()
