"""Agents that walk to the goal: the goal observation, the agent splits, the privileged teacher, the pixel agent
(saving, loading, predict), imitation's labels, the evaluator's statistics, and `lv2 bench agents --quick`."""

import dataclasses
import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import lv2_env  # noqa: F401
from agents.evaluation import Episode, RandomPolicy, pearson, ranks, run_episode, spearman
from agents.dagger import Dagger, DaggerConfig
from agents.imitation import (CollectConfig, PerceptionConfig, TrainConfig, class_weights, collect, frame_metrics,
                              goal_targets, load_collection, train)
from agents.pixel import NOOP, AgentConfig, PixelAgent, PixelPolicyNet, load_agent
from agents.sb3 import PixelFeatures, sb3_model
from agents.teacher import ACTION, GoalTeacher
from lv2_env.data.splits import AGENT_TEST_SCENES, SPLIT_SEEDS, split_scenes
from lv2_env.envs.core import GOAL_COLOURS, GOAL_KINDS
from lv2_env.worlds.styles import STYLES


def _truth(**kwargs):
    return gym.make("LV2/GroundTruth-v0", goal_observation=True, **kwargs)


def _world(checkpoint, **kwargs):
    return gym.make("LV2/World-v0", checkpoint=str(checkpoint), preset="test", goal_observation=True, **kwargs)


# ---------------------------------------------------------------------------------------------- observation


def test_goal_observation_names_the_goal_and_passes_both_checkers():
    env = _truth(height=32, width=32)
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=False)
    obs, info = env.reset(seed=3)
    assert set(obs) == {"image", "goal"} and obs["image"].shape == (32, 32, 3)
    colour, kind = obs["goal"]
    assert f"{GOAL_COLOURS[colour]} {GOAL_KINDS[kind]}" == info["goal"]
    assert env.observation_space.contains(obs)
    obs, *_ = env.step(1)
    assert env.observation_space.contains(obs)
    # The default keeps the v0 observation: the frame alone.
    assert isinstance(gym.make("LV2/GroundTruth-v0", height=32, width=32).observation_space, gym.spaces.Box)


def test_sb3_multi_input_policy_takes_the_goal_observation():
    env = _truth(height=64, width=64, max_episode_steps=4)  # NatureCNN needs 36 pixels or more
    model = PPO("MultiInputPolicy", env, n_steps=4, batch_size=4, n_epochs=1, seed=0)
    model.learn(total_timesteps=4)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))


def test_goal_observation_in_the_generated_world_and_its_vector_env(world_checkpoint):
    env = _world(world_checkpoint)
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=5)
    assert f"{GOAL_COLOURS[obs['goal'][0]]} {GOAL_KINDS[obs['goal'][1]]}" == info["goal"]
    vec = gym.make_vec("LV2/World-v0", num_envs=2, checkpoint=str(world_checkpoint), preset="test",
                       goal_observation=True)
    obs, infos = vec.reset(seed=[5, 6])
    assert obs["image"].shape == (2, 32, 32, 3) and obs["goal"].shape == (2, 2)
    assert vec.observation_space.contains(obs)
    obs, *_ = vec.step(np.array([1, 5]))
    assert vec.observation_space.contains(obs)
    vec.close()


def test_a_goal_observation_of_a_world_from_a_picture_is_refused(world_checkpoint):
    env = _world(world_checkpoint, control_source="cache")
    with pytest.raises(ValueError, match="picture has no scene"):
        env.reset(options={"image": np.zeros((32, 32, 3), np.uint8)})
    with pytest.raises(ValueError, match="goal_observation must be True or False"):
        gym.make("LV2/GroundTruth-v0", goal_observation="yes")


def test_a_policy_blind_to_the_frames_moves_in_the_world_exactly_as_in_the_truth(world_checkpoint):
    """Why the benchmark need not generate the world runs of blind policies: same path, reward and end."""
    truth, world = _truth(height=32, width=32, clip_frames=5), _world(world_checkpoint)
    runs = []
    for env in (truth, world):
        teacher = GoalTeacher(env, noise=0.3)
        episode = run_episode(env, teacher, scene_seed=SPLIT_SEEDS["agent_val"][0], style="sunny", max_steps=4)
        runs.append((episode, env.unwrapped.world.state.copy()))
    (a, state_a), (b, state_b) = runs
    assert a == dataclasses.replace(b, phantom_share=None, goal_colour_error=None)
    np.testing.assert_array_equal(state_a, state_b)
    # What the world showed it, against the truth of the same path (the truth's own episode has nothing to say).
    assert a.phantom_share is None and 0.0 <= b.phantom_share <= 1.0
    assert {"phantom_share", "goal_colour_error"} <= set(b.as_dict()) and "phantom_share" not in a.as_dict()
    assert Episode.from_dict(b.as_dict()) == b


# ---------------------------------------------------------------------------------------------- splits


def test_agent_splits_are_disjoint_from_every_other_split_and_the_test_split_is_frozen():
    ranges = sorted(SPLIT_SEEDS.values())
    assert all(a[1] <= b[0] for a, b in zip(ranges, ranges[1:]))
    test = split_scenes("agent_test", AGENT_TEST_SCENES)
    assert len(test) == AGENT_TEST_SCENES >= 60
    assert test[0] == (2_200_000, "sunny")  # frozen: changing the split changes every reported figure
    assert {style for _, style in test} == set(STYLES)
    assert [s for s, _ in test[:6]] == [2_200_000 + i for i in range(6)]
    with pytest.raises(ValueError, match="sequence index"):
        split_scenes("agent_test", AGENT_TEST_SCENES + 1)


# ---------------------------------------------------------------------------------------------- teacher


def test_the_teacher_reaches_the_goal_of_validation_scenes():
    env = _truth(height=32, width=32)
    reached = [run_episode(env, GoalTeacher(env), seed, style).success for seed, style in split_scenes("agent_val", 3)]
    assert sum(reached) >= 2, reached


def test_the_teacher_turns_toward_a_goal_behind_it_and_walks_at_one_ahead():
    env = _truth(height=32, width=32)
    env.reset(seed=0, options={"scene_seed": SPLIT_SEEDS["agent_val"][0] + 1})
    teacher = GoalTeacher(env)
    teacher.reset()
    goal = env.unwrapped.goal.center
    facing = float(np.arctan2(-goal[0], goal[1]))  # yaw that looks at the goal from the origin
    assert teacher.act(np.array([0, 0, 1.6, facing + np.pi / 2, 0, 0])) == ACTION["turn_right"]
    assert teacher.act(np.array([0, 0, 1.6, facing - np.pi / 2, 0, 0])) == ACTION["turn_left"]
    assert teacher.act(np.array([0, 0, 1.6, facing, 0.5, 0])) == ACTION["look_down"]
    with pytest.raises(ValueError, match="noise"):
        GoalTeacher(env, noise=1.5)
    with pytest.raises(ValueError, match="discrete"):
        GoalTeacher(_truth(height=32, width=32, action_mode="continuous"))


# ---------------------------------------------------------------------------------------------- pixel agent


def _agent(image_shape=(32, 32, 3)) -> PixelAgent:
    torch.manual_seed(0)
    return PixelAgent(PixelPolicyNet(AgentConfig(input_size=32, image_shape=image_shape)), name="test")


def test_predict_single_and_batched_with_sb3_state(tmp_path):
    agent = _agent()
    env = _truth(height=32, width=32)
    obs, _ = env.reset(seed=0)
    action, state = agent.predict(obs, deterministic=True)
    assert int(action) == int(agent.logits(obs, np.array([NOOP])).argmax()) and np.array_equal(state, [action])
    batch = {"image": np.stack([obs["image"]] * 3), "goal": np.stack([obs["goal"]] * 3)}
    actions, states = agent.predict(batch, state=np.array([1, 5, 6]), episode_start=np.array([True, False, False]))
    assert actions.shape == (3,) and np.array_equal(actions, states)
    # The previous action is an input: a no-op at an episode's start and a given no-op are the same.
    first, _ = agent.predict(batch, state=np.array([0, 0, 0]))
    assert first[0] == actions[0]


def test_save_and_load_round_trip_and_bad_files_are_named(tmp_path):
    agent = _agent()
    agent.save(tmp_path / "a")
    loaded = load_agent(tmp_path / "a")
    obs = {"image": np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8),
           "goal": np.array([[0, 1], [3, 2]])}
    torch.testing.assert_close(loaded.logits(obs, np.zeros(2)), agent.logits(obs, np.zeros(2)))
    with pytest.raises(ValueError, match="does not exist"):
        load_agent(tmp_path / "missing")
    weights = tmp_path / "a" / "agent.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ValueError, match="agent.safetensors.*cannot be read"):
        load_agent(tmp_path / "a")


def test_an_env_with_another_observation_space_is_refused_naming_both():
    agent = _agent()
    with pytest.raises(ValueError, match=r"takes observations Dict.*env gives Box"):
        agent.policy_for(gym.make("LV2/GroundTruth-v0", height=32, width=32))
    with pytest.raises(ValueError, match="128, 128, 3"):
        agent.policy_for(_truth())


def test_predict_refuses_bad_observations_naming_the_expected_space():
    agent = _agent()
    obs, _ = _truth(height=32, width=32).reset(seed=0)
    with pytest.raises(ValueError, match=r"expected observations of Dict.*goal.*got ndarray of shape \(32, 32, 3\)"):
        agent.predict(obs["image"])
    with pytest.raises(ValueError, match=r"expected observations of Dict.*outside MultiDiscrete\(\[12, 4\]\)"):
        agent.predict({"image": obs["image"], "goal": np.array([12, 0])})
    with pytest.raises(ValueError, match="outside MultiDiscrete"):
        agent.predict({"image": obs["image"], "goal": np.array([0, -1])})
    with pytest.raises(ValueError, match=r"got image \(1, 64, 64, 3\)"):
        agent.predict({"image": np.zeros((64, 64, 3), np.uint8), "goal": obs["goal"]})
    with pytest.raises(ValueError, match=r"a dict with keys \['image'\]"):
        agent.predict({"image": obs["image"]})


def test_weights_of_another_config_are_refused_naming_both_shapes(tmp_path):
    _agent().save(tmp_path / "a")
    config = json.loads((tmp_path / "a" / "agent.json").read_text())
    config["channels"] = [8, 16, 32, 32]
    (tmp_path / "a" / "agent.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"another network.*agent.json gives \(32,.*the weights hold \(64,"):
        load_agent(tmp_path / "a")


def test_the_network_segments_the_goal_and_reads_the_mask():
    """Every output has its documented shape, and the actions depend on where the mask says the goal is."""
    net = PixelPolicyNet(AgentConfig(input_size=32)).eval()
    images, goals = torch.rand(3, 3, 32, 32), torch.tensor([[0, 1], [4, 2], [11, 3]])
    out = net(images, goals, torch.zeros(3, dtype=torch.long))
    assert out.actions.shape == (3, 11) and out.mask.shape == (3, 16, 16) and out.features.shape == (3, 128)
    assert out.in_view.shape == out.bearing.shape == out.distance.shape == (3,)
    # The goal conditions every encoder stage: another goal, other features at each one.
    other = net(images, torch.tensor([[1, 1], [4, 3], [10, 3]]), torch.zeros(3, dtype=torch.long))
    assert not torch.allclose(out.mask, other.mask)
    with pytest.raises(ValueError, match="multiple of 8"):
        AgentConfig(input_size=36)


def test_sb3_builds_the_network_and_loads_a_trained_agent(tmp_path):
    env = _truth(max_episode_steps=4)
    model = PPO("MultiInputPolicy", env, policy_kwargs=PixelFeatures.policy_kwargs(AgentConfig()), n_steps=4,
                batch_size=4, n_epochs=1, seed=0)
    model.learn(total_timesteps=4)
    assert isinstance(model.policy.features_extractor, PixelFeatures)
    torch.manual_seed(1)
    agent = PixelAgent(PixelPolicyNet(AgentConfig()))
    agent.save(tmp_path / "a")
    sb3 = sb3_model(tmp_path / "a", env, n_steps=4, batch_size=4, seed=0)
    sb3.policy.set_training_mode(False)  # what predict() does: no dropout
    rng = np.random.default_rng(0)
    for _ in range(4):
        obs = {"image": rng.integers(0, 255, (128, 128, 3), dtype=np.uint8),
               "goal": np.array([rng.integers(12), rng.integers(4)])}
        tensor, _ = sb3.policy.obs_to_tensor(obs)
        logits = sb3.policy.get_distribution(tensor).distribution.logits
        torch.testing.assert_close(torch.log_softmax(logits, 1), torch.log_softmax(agent.logits(obs, np.zeros(1)), 1),
                                   atol=1e-5, rtol=1e-4)
        assert int(sb3.predict(obs, deterministic=True)[0]) == int(agent.predict(obs)[0])
    sb3.save(tmp_path / "ppo.zip")
    assert int(PPO.load(tmp_path / "ppo.zip").predict(obs, deterministic=True)[0]) == int(agent.predict(obs)[0])


def test_the_shipped_agents_load_and_act():
    env = _truth()
    for name in ("world-trained", "truth-trained"):
        agent = load_agent(name, env=env)
        policy = agent.policy_for(env)
        obs, info = env.reset(seed=1)
        policy.reset(info)
        expected = int(agent.logits(obs, np.array([NOOP])).argmax())  # the network's choice, no previous action
        assert policy(obs, info) == expected


def test_the_shipped_truth_trained_agent_segments_the_goal_it_is_told_to_find():
    """On easy starts (the goal in view), its predicted mask covers the goal's true pixels (mean IoU 0.54 on these 8
    scenes, 2026-12-07), and asking for another colour drops most of them: the weights do the task, not noise."""
    env = _truth()
    agent = load_agent("truth-trained", env=env)
    ious, other_recall = [], []
    for seed in range(8):
        obs, info = env.reset(seed=seed, options={"level": "easy"})
        truth = goal_targets(env, info["camera_state"][None], agent.config.mask_size)["masks"][0] > 0
        other_goal = obs["goal"].copy()
        other_goal[0] = (other_goal[0] + 1) % len(GOAL_COLOURS)
        with torch.no_grad():
            mask = agent.outputs(obs, np.array([NOOP])).mask[0].numpy() > 0
            other = agent.outputs({"image": obs["image"], "goal": other_goal}, np.array([NOOP])).mask[0].numpy() > 0
        ious.append((mask & truth).sum() / max((mask | truth).sum(), 1))
        other_recall.append((other & truth).sum() / max(truth.sum(), 1))
    assert np.mean(ious) > 0.35, np.round(ious, 2)
    assert np.mean(other_recall) < 0.5 * np.mean(ious), (np.round(ious, 2), np.round(other_recall, 2))


# ---------------------------------------------------------------------------------------------- imitation


def test_collection_labels_every_frame_and_resumes(tmp_path):
    env = _truth(height=32, width=32)
    config = CollectConfig(env_steps=3, episode_steps=2, input_size=16)
    summary = collect(env, config, tmp_path / "c", progress=False)
    assert summary["env_steps"] == 3
    data = load_collection(tmp_path / "c")
    # Each step adds 16 labelled frames; each episode starts with its reset frame.
    assert len(data["labels"]) == 16 * 3 + summary["episodes"]
    assert data["images"].shape[1:] == (16, 16, 3) and data["masks"].shape[1:] == (8, 8)
    # The goal's pixels are the targets: a frame with the goal in view has some in its mask.
    assert data["masks"][data["in_view"] == 1].reshape(-1, 64).any(1).all()
    assert np.all(data["distance"] >= 0.0)
    again = collect(env, config, tmp_path / "c", progress=False)
    assert again["episodes"] == summary["episodes"] and again["seconds_this_run"] < summary["seconds_this_run"]


def test_class_weights_make_rare_actions_count_as_much_as_common_ones():
    labels = np.array([5] * 90 + [1] * 10)
    weights = class_weights(labels, power=1.0)
    assert weights[5] * 90 == pytest.approx(weights[1] * 10) and weights[0] == 0.0
    assert float((weights[labels]).mean()) == pytest.approx(1.0)
    assert torch.allclose(class_weights(labels, power=0.0)[[1, 5]], torch.ones(2))


def test_a_student_drives_the_later_dagger_rounds_and_a_run_resumes(tmp_path):
    config = DaggerConfig(rounds=((4, 1.0), (4, 0.0)), perception=PerceptionConfig(scenes=3, input_size=16),
                          episode_steps=2, val_scenes=1, val_frame_steps=2,
                          first_epochs=1, later_epochs=1, agent=AgentConfig(input_size=16),
                          train=TrainConfig(batch_size=32))
    records = Dagger(tmp_path / "d", config, env_kwargs={"height": 32, "width": 32}, progress=False,
                     log=lambda _: None).run()
    assert [r["student_steps"] for r in records] == [0, 4]  # beta 0: the student chose every step of round 1
    assert "frames_next" in records[1] and 0.0 <= records[1]["frames_next"]["accuracy"] <= 1.0
    assert records[1]["total_env_steps"] == 3 + 8
    assert records[1]["total_scenes"] == 3 + records[0]["episodes"] + records[1]["episodes"]
    perception = load_collection(tmp_path / "d" / "perception")  # 3 scenes, every 4th of 17 frames, no actions
    assert len(perception["labels"]) == 3 * 5 and (perception["labels"] == -1).all()
    first = np.load(sorted((tmp_path / "d" / "round_0").glob("episode_*.npz"))[0])["scene_seed"]
    later = np.load(sorted((tmp_path / "d" / "round_1").glob("episode_*.npz"))[0])["scene_seed"]
    assert first != later  # each round plays new scenes
    assert load_agent(tmp_path / "d" / "round_1" / "agent").config.recipe["rounds"] == 2
    again = Dagger(tmp_path / "d", config, env_kwargs={"height": 32, "width": 32}, progress=False,
                   log=lambda _: None).run()
    assert json.dumps(again) == json.dumps(records)  # read back, not run again (NaN-safe comparison)
    with pytest.raises(ValueError, match="other settings"):
        Dagger(tmp_path / "d", DaggerConfig(rounds=config.rounds, episode_steps=3), progress=False)


def test_training_learns_to_see_the_goal_and_act_on_it():
    """A square of the goal's colour at a random place: the mask learns where it is, the action which side."""
    rng = np.random.default_rng(0)
    n, size = 384, 16
    images = rng.integers(60, 120, (n, size, size, 3)).astype(np.uint8)
    masks = np.zeros((n, size // 2, size // 2), np.uint8)
    column = rng.integers(0, size // 2 - 1, n)
    for i, c in enumerate(column):
        images[i, 6:10, 2 * c:2 * c + 4] = (250, 30, 30)
        masks[i, 3:5, c:c + 2] = 1
    left = column < size // 4
    data = {"images": images, "goals": np.tile([0, 0], (n, 1)), "previous": np.zeros(n, dtype=np.int64),
            "labels": np.where(left, ACTION["turn_left"], ACTION["turn_right"]), "masks": masks,
            "in_view": np.ones(n, np.uint8), "bearing": np.where(left, 0.5, -0.5).astype(np.float32),
            "distance": np.full(n, 1.0, np.float32)}
    agent, history = train(data, TrainConfig(epochs=10, batch_size=32, learning_rate=5e-3, shift=0, brightness=0),
                           AgentConfig(input_size=size), progress=False)
    assert history[-1]["loss_mask"] < history[0]["loss_mask"]
    scores = frame_metrics(agent, data)
    assert scores["accuracy"] > 0.9 and scores["mask_iou"] > 0.5, scores


# ---------------------------------------------------------------------------------------------- statistics


def test_rank_correlations():
    assert ranks([3, 1, 2, 2]).tolist() == [4.0, 1.0, 2.5, 2.5]
    assert spearman([1, 2, 3], [10, 20, 1000]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [10, 20, 1000]) < 1.0
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(spearman([1, 1], [1, 2]))


def test_random_policy_restarts_from_the_scene_seed():
    policy = RandomPolicy(11)
    policy.reset(seed=4)
    a = [policy(None, None) for _ in range(5)]
    policy.reset(seed=4)
    assert [policy(None, None) for _ in range(5)] == a


# ---------------------------------------------------------------------------------------------- the benchmark


def test_bench_agents_quick_runs_every_stage_and_resumes(tmp_path):
    from agents.cli import main

    out = tmp_path / "bench"
    assert main(["bench", "agents", "--quick", "--quiet", "--out", str(out)]) == 0
    report = json.loads((out / "agents.json").read_text())
    for key in ("split", "scenes", "transfer_ratio", "spearman", "pearson", "mean_abs_gap", "levels", "dagger"):
        assert key in report
    assert report["split"] == "agent_test" and len(report["scenes"]) == 2 and report["level"] == "hard"
    names = [p["name"] for p in report["policies"]]
    assert names == ["teacher", "teacher-noise-0.25", "teacher-noise-0.5", "random", "scripted-dolly",
                     "truth-trained-round0", "truth-trained", "world-trained-round0", "world-trained"]
    assert report["pixel_policies"] == 4 and report["transfer_peer"] == "truth-trained"
    for p in report["policies"]:
        assert {"name", "trained_in", "env_steps", "success_truth", "success_world"} <= set(p)
        assert 0.0 <= p["success_truth"] <= 1.0 and 0.0 <= p["success_world"] <= 1.0
        assert p["world_run"] == (p["kind"] == "pixel")
    assert [p["env_steps"] for p in report["policies"] if p["kind"] == "pixel"] == [5, 8, 5, 8]  # 2 perception
    assert set(report["levels"]) == {"hard", "easy"} and len(report["dagger"]["world"]) == 2
    assert (out / "agents.png").stat().st_size > 1000 and "| teacher |" in (out / "agents.md").read_text()
    assert (out / "world-dagger" / "round_1" / "agent" / "agent.safetensors").exists()
    # Resumed: every stage is found done, the same report comes back.
    assert main(["bench", "agents", "--quick", "--quiet", "--out", str(out)]) == 0
    again = json.loads((out / "agents.json").read_text())
    assert again["policies"] == report["policies"]
    # Another setting in the same directory is refused.
    assert main(["bench", "agents", "--quick", "--quiet", "--levels", "easy", "--out", str(out)]) == 2


def test_rollout_shows_the_shipped_agent_walking_to_the_goal(tmp_path, capsys):
    import imageio.v3 as iio

    from agents.cli import main

    out = tmp_path / "agent.mp4"
    assert main(["rollout", "--env", "groundtruth", "--policy", "agent", "--seconds", "3", "--quiet",
                 "--out", str(out)]) == 0
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["policy"] == "agent" and side["goal"] and 1 <= len(side["steps"]) <= 3
    assert all(0 <= s["action"] < 11 for s in side["steps"])
    picture = tmp_path / "picture.png"
    iio.imwrite(picture, np.zeros((128, 128, 3), np.uint8))
    assert main(["rollout", "--policy", "agent", "--image", str(picture), "--out", str(tmp_path / "c.mp4")]) == 2
    assert "has no scene" in capsys.readouterr().err
    assert main(["rollout", "--env", "groundtruth", "--policy", "agent", "--agent", str(tmp_path / "none"),
                 "--seconds", "1", "--quiet", "--out", str(tmp_path / "b.mp4")]) == 2


def test_the_observable_teacher_searches_left_until_the_goal_is_in_sight():
    env = _truth(height=32, width=32)
    env.reset(seed=0, options={"scene_seed": SPLIT_SEEDS["agent_val"][0] + 1})
    teacher = GoalTeacher(env, search="left")
    teacher.reset()
    goal = env.unwrapped.goal.center
    facing = float(np.arctan2(-goal[0], goal[1]))
    behind = np.array([0, 0, 1.6, facing + np.pi, 0, 0])
    ahead = np.array([0, 0, 1.6, facing, 0, 0])
    seen = teacher.goal_in_sight(np.stack([behind, ahead]))
    assert seen.tolist() == [False, True]
    # Out of sight it turns left even where the shorter way is right; in sight it follows its plan.
    assert teacher.act(np.array([0, 0, 1.6, facing - np.pi / 2, 0, 0])) == ACTION["turn_left"]
    toward = GoalTeacher(env)
    toward.reset()
    assert teacher.labels(np.stack([behind, ahead])) == [ACTION["turn_left"], toward.act(ahead)]
    with pytest.raises(ValueError, match="search"):
        GoalTeacher(env, search="right")
