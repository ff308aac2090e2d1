import json

import numpy as np
import pytest

from lv2_env.signals.control import DepthRange
from lv2_env.data.procedural import SequenceSpec, build_procedural
from lv2_env.data.splits import SPLIT_SEEDS, scene_seed
from model.clips import ClipDataset, read_index

SPEC = SequenceSpec(height=32, width=32, frames=5, clips_per_sequence=3, history_frames=4)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    build_procedural(root / "train", "train", 2, SPEC, progress=False)
    build_procedural(root / "eval", "validation", 1, SPEC, progress=False)
    return root


def test_index_and_clip_files(data):
    index = read_index(data / "train", expect={"height": 32, "frames": 5})
    assert len(index["clips"]) == 6 and index["history_frames"] == 4
    dataset = ClipDataset(data / "train", ("rgb", "history", "depth", "dense", "sparse", "poses", "intrinsics", "depth_range"))
    clip = dataset[0]
    assert clip["rgb"].shape == (5, 32, 32, 3) and clip["rgb"].dtype == np.uint8
    assert clip["history"].shape == (4, 32, 32, 3) and clip["dense"].shape == (5, 32, 32)
    assert clip["sparse"].shape == (5, 32, 32, 3) and clip["poses"].shape == (5, 4, 4)
    assert isinstance(clip["caption"], str) and clip["caption"] == index["clips"][0]["caption"]


def test_splits_use_disjoint_scene_seeds(data):
    train = {c["scene_seed"] for c in read_index(data / "train")["clips"]}
    evaluation = {c["scene_seed"] for c in read_index(data / "eval")["clips"]}
    assert not train & evaluation
    assert all(SPLIT_SEEDS["train"][0] <= s < SPLIT_SEEDS["train"][1] for s in train)
    assert all(SPLIT_SEEDS["validation"][0] <= s < SPLIT_SEEDS["validation"][1] for s in evaluation)
    with pytest.raises(ValueError, match="unknown split"):
        scene_seed("holdout", 0)
    test = {scene_seed("test", i) for i in range(12)}
    assert not test & (train | evaluation) and min(test) >= SPLIT_SEEDS["validation"][1]
    with pytest.raises(ValueError, match=r"sequence index must be in \[0, 12\)"):
        scene_seed("test", 12)  # the test split is frozen at 12 scenes


def test_sequence_is_continuous_with_one_global_depth_range(data):
    dataset = ClipDataset(data / "train", ("rgb", "history", "depth", "dense", "depth_range"))
    clips = [dataset[i] for i in range(3)]  # the first sequence
    ranges = {tuple(c["depth_range"]) for c in clips}
    assert len(ranges) == 1  # global for the sequence, never per clip
    depth_range = DepthRange(*map(float, ranges.pop()))
    for a, b in zip(clips, clips[1:]):
        assert np.array_equal(a["rgb"][-1], b["rgb"][0])  # consecutive clips share one frame
        assert np.array_equal(b["history"][-1], a["rgb"][-2])  # history = the frames before the clip
    for c in clips:
        expected = np.round(depth_range.normalise(c["depth"].astype(np.float32)) * 255)
        assert np.abs(c["dense"].astype(int) - expected).max() <= 1


def test_rebuilding_keeps_clips_and_refuses_other_shapes(data):
    before = (data / "train" / "clips" / "000000_00.npz").stat().st_mtime_ns
    build_procedural(data / "train", "train", 2, SPEC, progress=False)
    assert (data / "train" / "clips" / "000000_00.npz").stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="another kind"):
        build_procedural(data / "train", "train", 2, SequenceSpec(height=64, width=64, frames=5), progress=False)


def test_reading_errors(data, tmp_path):
    with pytest.raises(ValueError, match="expected index.json"):
        read_index(tmp_path)
    (tmp_path / "index.json").write_text(json.dumps({"format": "something-else", "version": 1}))
    with pytest.raises(ValueError, match="expected format 'lv2-clips' version 1"):
        read_index(tmp_path)
    with pytest.raises(ValueError, match="height expected 128, got 32"):
        read_index(data / "train", expect={"height": 128})
