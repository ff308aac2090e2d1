"""The world model's own frames beside the scene's exact depth (`lv2 data generated-frames`), and the depth
stage that mixes them into its batches."""

import json

import numpy as np
import pytest

from lv2_env.data.generated_frames import build_generated_frames, generated_clips
from lv2_env.data.procedural import SequenceSpec, build_procedural
from lv2_env.envs.world import WorldEnv
from lv2_env.evaluation.rollouts import run_path
from model.clips import ClipDataset
from model.training.depth_stage import DepthStage, DepthStageConfig


@pytest.fixture(scope="module")
def generated(world_checkpoint, tmp_path_factory):
    env = WorldEnv(checkpoint=world_checkpoint, preset="test", goal_radius=None, control_source="cache")
    out = tmp_path_factory.mktemp("generated") / "frames"
    build_generated_frames(out, env, "train", sequences=2, steps=2, seed=0, progress=False)
    return out, env


def test_each_clip_is_what_the_world_generated_with_the_true_depth(generated):
    out, env = generated
    dataset = ClipDataset(out, ("rgb", "depth"))
    index = json.loads((out / "index.json").read_text())
    assert len(dataset) == 4 and index["source"] == "generated" and index["control_source"] == "cache"
    first, second = dataset[0], dataset[1]
    frames = env.unwrapped.clip.frames
    assert first["rgb"].shape == (frames, 32, 32, 3) and first["depth"].shape == (frames, 32, 32)
    np.testing.assert_array_equal(first["rgb"][-1], second["rgb"][0])  # clips share one frame, as the env's
    # The same walk again (its actions are the sequence's): the frames are the model's, the depth the scene's.
    rng = np.random.default_rng([0, 0])
    from lv2_env.evaluation.rollouts import WALK

    actions = [int(a) for a in rng.choice(WALK, size=2)]
    scene = dataset.clips[0]["scene_seed"]
    video = run_path(env, actions, 2, scene, seed=0, style=dataset.clips[0]["style"])
    np.testing.assert_array_equal(np.concatenate([first["rgb"], second["rgb"][1:]]), video["generated"])
    assert not np.array_equal(video["generated"], video["truth"])  # a random model draws no truth
    true_depth = env.unwrapped.world.renderer.render(video["poses"], shade=False).depth
    np.testing.assert_allclose(first["depth"].astype(np.float32), true_depth[:frames], rtol=1e-3)


def test_a_rerun_keeps_what_is_written_and_another_kind_is_refused(generated, world_checkpoint):
    out, env = generated
    before = {p.name: p.stat().st_mtime_ns for p in (out / "clips").glob("*.npz")}
    build_generated_frames(out, env, "train", sequences=2, steps=2, seed=0, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "clips").glob("*.npz")} == before
    with pytest.raises(ValueError, match="another kind"):
        build_generated_frames(out, env, "train", sequences=2, steps=3, seed=0, progress=False)
    with pytest.raises(ValueError, match="whole clips"):
        generated_clips({"generated": np.zeros((6, 2, 2, 3)), "depth": np.ones((6, 2, 2))}, frames=5)


def test_the_depth_stage_mixes_generated_frames_into_its_batches(generated, tmp_path):
    out, _ = generated
    rendered = tmp_path / "train"
    build_procedural(rendered, "train", 1, SequenceSpec(height=32, width=32, frames=5, clips_per_sequence=1,
                                                        history_frames=4), progress=False)
    frames = {f.tobytes() for clip in ClipDataset(out, ("rgb",)) for f in clip["rgb"]}

    def generated_share(share):
        stage = DepthStage(rendered, None, DepthStageConfig(batch_size=32, crop=0, flip=False, generated_share=share),
                           generated_data=out, generated_eval_data=out)
        images = stage.batch(np.random.default_rng(0), 0)["images"]
        rgb = ((images.permute(0, 2, 3, 1) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
        return np.mean([f.tobytes() in frames for f in rgb]), stage

    assert generated_share(0.0)[0] == 0.0 and generated_share(1.0)[0] == 1.0
    half, stage = generated_share(0.5)
    assert 0.2 < half < 0.8
    metrics = stage.evaluate(0)
    assert set(metrics) == {"generated_abs_rel", "generated_abs_rel_unscaled", "generated_delta1",
                            "generated_delta1_unscaled"}
    with pytest.raises(ValueError, match="generated_share"):
        DepthStageConfig(generated_share=1.5)
