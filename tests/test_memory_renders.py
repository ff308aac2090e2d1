"""Training conditioning built as World-v0 builds it: the world memory of each sequence, replayed clip by clip."""

import json

import numpy as np
import pytest

from lv2_env.data.memory_renders import (
    build_memory_renders, clip_atmosphere, memory_of_first_frame, memory_render_loader, renders_directory,
)
from lv2_env.data.procedural import SequenceSpec, build_procedural
from lv2_env.worlds import STYLES
from model.clips import ClipDataset
from model.training.latents import LatentDataset, cache_latents

FIELDS = ("rgb", "depth", "poses", "intrinsics")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("memory_renders") / "train"
    build_procedural(root, "train", 1, SequenceSpec(height=32, width=32, frames=5, clips_per_sequence=3,
                                                     history_frames=4), progress=False)
    return root


def _renders(data):
    load = memory_render_loader(data)
    dataset = ClipDataset(data, FIELDS)
    return dataset, [load({"file": entry["file"]}) for entry in dataset.clips]


def test_each_clip_is_conditioned_on_the_memory_of_its_sequence(data, world_checkpoint):
    build_memory_renders(data, world_checkpoint, self_rollout=0.5, seed=0, progress=False)
    dataset, renders = _renders(data)
    index = json.loads((renders_directory(data) / "index.json").read_text())
    assert sum(index["written_this_run"].values()) == 3
    for i, rendered in enumerate(renders):
        clip = dataset[i]
        assert rendered.shape == (5, 32, 32, 3) and rendered.dtype == np.uint8
        assert np.array_equal(rendered[0], clip["rgb"][0])  # frame 0: the clip's own first frame
    # The first clip knows only the start frame; later ones remember what the world showed before them.
    assert np.array_equal(renders[0], memory_of_first_frame(dataset[0]))
    assert not np.array_equal(renders[2], memory_of_first_frame(dataset[2]))


def test_self_rollout_clips_come_from_the_model_and_a_rerun_keeps_the_renders(data, world_checkpoint, tmp_path):
    import shutil

    other = tmp_path / "train"
    shutil.copytree(data, other, ignore=shutil.ignore_patterns("memory_renders"))
    build_memory_renders(other, world_checkpoint, self_rollout=1.0, seed=0, progress=False)
    index = json.loads((renders_directory(other) / "index.json").read_text())
    assert index["written_this_run"] == {"self_rollout": 3, "degraded_truth": 0}
    degraded = tmp_path / "degraded"
    shutil.copytree(data, degraded, ignore=shutil.ignore_patterns("memory_renders"))
    build_memory_renders(degraded, world_checkpoint, self_rollout=0.0, seed=0, progress=False)
    assert not np.array_equal(_renders(other)[1][2], _renders(degraded)[1][2])
    build_memory_renders(other, world_checkpoint, self_rollout=1.0, seed=0, progress=False)  # all there: kept
    index = json.loads((renders_directory(other) / "index.json").read_text())
    assert index["written_this_run"] == {"self_rollout": 0, "degraded_truth": 0}


def test_a_clips_memory_is_rendered_with_its_scenes_fog(data, monkeypatch):
    # As World-v0 renders its memory: the start frame's surfaces with the fog of their distance now.
    import dataclasses

    from lv2_env.data import memory_renders

    clip = ClipDataset(data, FIELDS)[0]
    assert clip["style"] in STYLES
    assert clip_atmosphere(clip) == STYLES[clip["style"]].atmosphere and clip_atmosphere({"style": None}) is None
    # The clip's camera moves a few centimetres: fog thick enough to show it.
    thick = dataclasses.replace(STYLES["fog"], fog_density=5.0)
    monkeypatch.setattr(memory_renders, "get_style", lambda name: thick)
    foggy, clear = (memory_of_first_frame({**clip, "style": style}) for style in ("fog", None))
    assert np.array_equal(foggy[0], clear[0]) and not np.array_equal(foggy[1:], clear[1:])


def test_bad_input_is_refused(data, world_checkpoint, tmp_path):
    with pytest.raises(ValueError, match=r"self_rollout is a probability in \[0, 1\], got 1.5"):
        build_memory_renders(data, world_checkpoint, self_rollout=1.5, progress=False)
    with pytest.raises(ValueError, match="no memory render of clips/000000_00.npz .*lv2 data memory-renders"):
        memory_render_loader(tmp_path)({"file": "clips/000000_00.npz"})


def test_the_memory_cache_holds_the_renders_latents(data, world_checkpoint):
    build_memory_renders(data, world_checkpoint, self_rollout=0.5, seed=0, progress=False)
    vae = world_checkpoint / "vae"
    out = cache_latents(data, vae, progress=False, render=memory_render_loader(data), condition="memory")
    assert out.name.endswith("-memory")
    item = LatentDataset(data, vae, "memory")[1]
    assert item["condition"].shape == item["rgb"].shape
