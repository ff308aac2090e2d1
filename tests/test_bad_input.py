"""Every bad input gives one clear error, naming the offending value or file, and never a traceback from deep
inside a library.

* **Checkpoints**: each test copies the shipped model and breaks one file of it: a weights file with a tensor
  removed, added or of the wrong shape (in every component: transformer, vae, vae-fast, control-encoder,
  text_encoder, depth), a truncated or incomplete ``lv2.json``, a truncated ``config.json``, a config of the wrong
  types. The error must come from the component's own loader and, unchanged, from ``WorldModel.load`` (what the
  environments call), before diffusers builds anything. (Before: a missing tensor made diffusers print a "newly initialized" notice
  and then fail inside torch with "Cannot copy out of meta tensor", and a truncated lv2.json gave a
  JSONDecodeError naming no file.)
* **Inputs and the command line**: start images that cannot be read, World-v0 asked for another size than its
  model's, ``lv2`` path flags that cannot be read or written (one line, exit code 2, no traceback), durations that
  are not whole clips; and ``lv2 generate`` on the shipped (rendered-conditioning) model from ``lv2 data controls``.
* **The environments' own checks**: actions, reset options and constructor arguments out of their spaces.

What a kill must not lose (side files, recordings, eval rollouts, training) is tests/test_kill_safety.py.
"""

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import lv2_env  # noqa: F401  (registers LV2/)
from agents.cli import main
from lv2_env.cli.options import (
    readable_dir,
    readable_file,
    whole_clips,
    writable_dir,
    writable_output,
)
from lv2_env.envs.world import load_start_image
from lv2_env.media.image import load_image
from lv2_env.media.video import Mp4Writer, probe_video, read_video
from model.checkpoint import load_checkpoint
from model.checkpoint_files import CheckpointWeightsError
from model.depth import TinyDepthEstimator
from model.text import load_text_encoder
from model.vae import VideoVAE
from model.world_model import SHIPPED_DIR, WorldModel, load_control_encoder

# ------------------------------------------------------------------------------------------------ checkpoints

# Per component: its weights file in the checkpoint, a tensor of it to break, and its own loader.
WEIGHTS: dict[str, tuple[str, str]] = {
    "transformer": ("transformer/diffusion_pytorch_model.safetensors", "control.branches.dense.0.attn1.norm_k.weight"),
    "vae": ("vae/diffusion_pytorch_model.safetensors", "encoder.conv_in.weight"),
    "vae-fast": ("vae-fast/diffusion_pytorch_model.safetensors", "decoder.conv_in.weight"),
    "control-encoder": ("control-encoder/diffusion_pytorch_model.safetensors", "out.weight"),
    "text_encoder": ("text_encoder/model.safetensors", "layers.0.self_attn.in_proj_weight"),
    "depth": ("depth/model.safetensors", "head.weight"),
}
LOADERS: dict[str, Callable[[Path], object]] = {
    "transformer": load_checkpoint,
    "vae": lambda directory: VideoVAE.from_pretrained(directory / "vae"),
    "vae-fast": lambda directory: VideoVAE.from_pretrained(directory / "vae-fast"),
    "control-encoder": lambda directory: load_control_encoder(directory, "distilled"),
    "text_encoder": lambda directory: load_text_encoder(directory / "text_encoder"),
    "depth": lambda directory: TinyDepthEstimator.from_pretrained(directory / "depth"),
}
EXTRA_KEY = "not_a_parameter.weight"


def _load_world(directory: Path) -> WorldModel:
    """The environments' load: every component, the distilled decoder, the control encoder and the depth network
    included."""
    return WorldModel.load(directory, need_depth=True, decoder="fast", control_encoder="distilled", precision="fp32")


@pytest.fixture
def model_copy(tmp_path) -> Path:
    directory = tmp_path / "model"
    shutil.copytree(SHIPPED_DIR, directory)
    return directory


def _edit_weights(path: Path, edit: Callable[[dict[str, torch.Tensor]], None]) -> None:
    state = load_file(str(path))
    edit(state)
    save_file(state, str(path))


def _damage(path: Path, key: str, damage: str) -> str:
    """Break the weights file ``path`` at ``key`` in the way ``damage`` says; returns the key the error must name."""
    if damage == "missing":
        _edit_weights(path, lambda state: state.pop(key))
        return key
    if damage == "unexpected":
        _edit_weights(path, lambda state: state.update({EXTRA_KEY: torch.zeros(3)}))
        return EXTRA_KEY
    assert damage == "mismatched"
    _edit_weights(path, lambda state: state.update({key: torch.zeros(state[key].shape[0] + 1, *state[key].shape[1:])}))
    return key


def test_the_intact_copy_loads(model_copy):
    world = _load_world(model_copy)
    assert world.depth_estimator is not None and world.preset.name == "tiny"


@pytest.mark.parametrize("damage", ["missing", "unexpected", "mismatched"])
@pytest.mark.parametrize("component", list(WEIGHTS))
def test_a_weights_file_with_a_missing_extra_or_misshapen_tensor_is_named_with_the_key(model_copy, capfd, component,
                                                                                          damage):
    relative, key = WEIGHTS[component]
    path = model_copy / relative
    offending = _damage(path, key, damage)

    with pytest.raises(CheckpointWeightsError) as from_component:
        LOADERS[component](model_copy)
    error = from_component.value
    message = str(error)
    assert isinstance(error, ValueError)
    assert str(path) in message and offending in message
    assert (error.missing, error.unexpected, [m[0] for m in error.mismatched]) == {
        "missing": ([key], [], []), "unexpected": ([], [EXTRA_KEY], []), "mismatched": ([], [], [key])}[damage]
    assert error.files == [path]
    if damage == "mismatched":
        expected = list(load_file(str(SHIPPED_DIR / relative))[key].shape)
        assert f"the model expects {expected}" in message

    with pytest.raises(CheckpointWeightsError) as from_world:
        _load_world(model_copy)
    assert str(from_world.value) == message
    assert "newly initialized" not in capfd.readouterr().err  # refused before diffusers built anything


def test_the_environment_gives_the_same_error(model_copy):
    relative, key = WEIGHTS["depth"]
    _damage(model_copy / relative, key, "missing")
    with pytest.raises(CheckpointWeightsError, match=r"depth/model\.safetensors does not hold .*\n.*\n  head\.weight"):
        gym.make("LV2/World-v0", checkpoint=str(model_copy), preset="tiny", control_source="cache", precision="fp32")


@pytest.mark.parametrize("config", ["lv2.json", "transformer/config.json", "vae/config.json", "vae-fast/config.json",
                                    "control-encoder/config.json", "text_encoder/config.json", "depth/config.json"])
def test_a_truncated_json_file_is_named(model_copy, config):
    path = model_copy / config
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(ValueError) as error:
        _load_world(model_copy)
    assert type(error.value) is ValueError
    assert str(error.value).startswith(f"{path} is not valid JSON: ")
    assert "line" in str(error.value) and "column" in str(error.value)  # where json stopped


def test_an_lv2_json_without_its_preset_says_so(model_copy):
    path = model_copy / "lv2.json"
    meta = json.loads(path.read_text())
    del meta["preset"]
    path.write_text(json.dumps(meta))
    for load in (load_checkpoint, _load_world):
        with pytest.raises(ValueError, match=r"lv2\.json: an lv2 checkpoint's description needs the key\(s\) 'preset', "
                                             r"which it lacks \(it has 'format', 'version', 'height'"):
            load(model_copy)


@pytest.mark.parametrize(("relative", "key", "value", "expected"), [
    ("lv2.json", "height", "128", "lv2.json: 'height' must be an integer, got '128' (a string)"),
    ("lv2.json", "history_frames", True, "lv2.json: 'history_frames' must be an integer or null, got True"),
    ("lv2.json", "preset_config", {"name": "tiny"}, "lv2.json: does not describe a preset: "),
    ("transformer/config.json", "num_layers", "eight",
     "transformer/config.json: cannot build the transformer (LongVieTransformer) from it: TypeError"),
    ("vae/config.json", "_class_name", "LongVieTransformer",
     "vae/config.json: expected the config of the VAE (AutoencoderKLWan), got the config of a LongVieTransformer"),
    ("text_encoder/config.json", "dim", 64.0, "text_encoder/config.json: 'dim' must be an integer, got 64.0 (a number)"),
    ("depth/config.json", "channels", [16, 30], ("depth/config.json: cannot build a TinyDepthNet from it: ValueError: "
                                                 "every channel width must be a positive multiple of groups=8")),
])
def test_a_config_of_the_wrong_types_is_named_with_the_key(model_copy, relative, key, value, expected):
    path = model_copy / relative
    config = json.loads(path.read_text())
    config[key] = value
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError) as error:
        _load_world(model_copy)
    assert type(error.value) is ValueError
    assert str(error.value).startswith(str(model_copy / expected.split(":")[0]))
    assert expected in str(error.value)


def test_a_config_that_is_no_object_and_a_weights_file_that_is_no_safetensors(model_copy):
    (model_copy / "depth" / "config.json").write_text("[16, 32]")
    with pytest.raises(ValueError, match=r"depth/config\.json: expected a JSON object \(a TinyDepthNet's config\), "
                                         r"got a list"):
        TinyDepthEstimator.from_pretrained(model_copy / "depth")
    weights = model_copy / WEIGHTS["transformer"][0]
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"diffusion_pytorch_model\.safetensors is not a readable safetensors file"):
        load_checkpoint(model_copy)


def _shard(directory: Path) -> tuple[Path, Path]:
    """Split ``directory``'s diffusers weights into two shards with their index, as diffusers writes large models."""
    single = directory / "diffusion_pytorch_model.safetensors"
    state = load_file(str(single))
    keys = sorted(state)
    names = ["diffusion_pytorch_model-00001-of-00002.safetensors", "diffusion_pytorch_model-00002-of-00002.safetensors"]
    halves = [keys[: len(keys) // 2], keys[len(keys) // 2:]]
    for name, half in zip(names, halves):
        save_file({k: state[k] for k in half}, str(directory / name))
    weight_map = {k: name for name, half in zip(names, halves) for k in half}
    metadata = {"total_size": sum(t.numel() * t.element_size() for t in state.values())}
    index = {"metadata": metadata, "weight_map": weight_map}
    (directory / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))
    single.unlink()
    return directory / names[0], directory / names[1]


def test_sharded_weights_are_checked_shard_by_shard(model_copy):
    first, second = _shard(model_copy / "transformer")
    reference = load_checkpoint(SHIPPED_DIR).transformer.state_dict()
    loaded = load_checkpoint(model_copy).transformer.state_dict()
    assert all(torch.equal(reference[k], loaded[k]) for k in reference)

    _edit_weights(second, lambda state: state.update({EXTRA_KEY: torch.zeros(3)}))
    _edit_weights(first, lambda state: state.pop(min(state)))
    with pytest.raises(CheckpointWeightsError) as error:
        _load_world(model_copy)
    assert error.value.files == [first, second] and len(error.value.missing) == 1
    assert f"{EXTRA_KEY}  (in {second.name})" in str(error.value)
    assert f"{model_copy / 'transformer'} (shards {first.name}, {second.name})" in str(error.value)

    second.unlink()
    with pytest.raises(ValueError, match=rf"index\.json names shards that are not in .*: \['{second.name}'\]"):
        _load_world(model_copy)


# ------------------------------------------------------------------------------------------------ inputs and the CLI

SHIPPED = Path(__file__).resolve().parents[1] / "model" / "shipped"


def _lv2(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agents.cli", *map(str, argv)], capture_output=True, text=True,
                          timeout=600)


def _fails_cleanly(capsys, argv: list, *names: str) -> str:
    """``lv2 ARGV`` in this process: exit code 2 and one ``lv2 VERB: error:`` line naming every one of ``names``."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(lines) == 1 and lines[0].startswith(f"lv2 {argv[0]}") and "Traceback" not in err, err
    for name in names:
        assert str(name) in lines[0], (name, lines[0])
    return lines[0]


@pytest.fixture
def files(tmp_path):
    """Unreadable start images of every kind, a plain file to put paths under, and a picture that reads."""
    Image.fromarray(np.full((40, 48, 3), 90, np.uint8)).save(tmp_path / "good.png")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "full.png")
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "full.jpg", quality=95)
    (tmp_path / "truncated.png").write_bytes((tmp_path / "full.png").read_bytes()[:2000])
    (tmp_path / "truncated.jpg").write_bytes((tmp_path / "full.jpg").read_bytes()[:1500])
    (tmp_path / "notes.txt").write_text("not an image\n")
    (tmp_path / "folder").mkdir()
    return tmp_path


# ---------------------------------------------------------------------------------------------------- start images

UNREADABLE = [("missing.png", "no such file"), ("notes.txt", "is not an image"), ("folder", "is a directory"),
              ("truncated.png", "truncated or corrupt"), ("truncated.jpg", "truncated or corrupt")]


@pytest.mark.parametrize("name, reason", UNREADABLE)
def test_an_unreadable_start_image_is_a_value_error_naming_it(files, name, reason):
    path = str(files / name)
    for load in (lambda: load_start_image(path, 32, 32), lambda: load_image(path, 32, 32, name="--first-frame")):
        with pytest.raises(ValueError, match=reason) as raised:
            load()
        assert path in str(raised.value)


def test_a_readable_start_image_is_resized_with_a_warning(files):
    with pytest.warns(UserWarning, match=r"good.png' is 48x40; resized to the model's 32x32"):
        image = load_start_image(str(files / "good.png"), 32, 32)
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    with pytest.raises(ValueError, match=r"a path or a uint8 \[H, W, 3\] array, got float64"):
        load_start_image(np.zeros((32, 32, 3)), 32, 32)


def test_world_reset_with_an_unreadable_image_raises_value_error(world_checkpoint, files):
    env = gym.make("LV2/World-v0", checkpoint=str(world_checkpoint), preset="test", control_source="cache")
    with pytest.raises(ValueError, match=r"options\['image'\] '.*notes.txt' is not an image"):
        env.reset(options={"image": str(files / "notes.txt")})


def test_cli_first_frame_that_is_not_an_image(world_checkpoint, files, capsys):
    np.save(files / "poses.npy", np.repeat(np.eye(4)[None], 5, axis=0))
    np.save(files / "depth.npy", np.full((5, 32, 32), 5.0, np.float32))
    _fails_cleanly(capsys, ["generate", "--checkpoint", world_checkpoint, "--first-frame", files / "truncated.png",
                            "--depth", files / "good.png", "--tracks", files / "good.png", "--prompt", "a field",
                            "--poses", files / "poses.npy", "--metric-depth", files / "depth.npy",
                            "--out", files / "out.mp4"],
                   "--first-frame", files / "truncated.png", "truncated or corrupt")


# ---------------------------------------------------------------------------------------------------- World-v0 size


def _world(checkpoint, **kwargs):
    return gym.make("LV2/World-v0", checkpoint=str(checkpoint), preset="test", **kwargs)


def test_world_refuses_another_size_than_its_model_and_names_the_model_size(world_checkpoint):
    with pytest.raises(ValueError, match=r"^height=64, width=64: this model generates 32x32 frames, 5 per clip, at 16 "
                                         r"fps; leave them out or pass the model's size \(height=32, width=32"):
        _world(world_checkpoint, height=64, width=64)
    with pytest.raises(ValueError, match=r"^clip_frames=17: this model generates 32x32 frames, 5 per clip"):
        _world(world_checkpoint, clip_frames=17)
    with pytest.raises(ValueError, match=r"^fps=30: .* at 16 fps"):
        _world(world_checkpoint, fps=30)


def test_world_accepts_its_model_size(world_checkpoint):
    env = _world(world_checkpoint, height=32, width=32, clip_frames=5, fps=16)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (32, 32, 3) and env.unwrapped.clip.frames == 5


def test_vector_world_passes_the_size_arguments_through(world_checkpoint):
    vec = gym.make_vec("LV2/World-v0", num_envs=2, checkpoint=str(world_checkpoint), preset="test", height=32, width=32)
    assert vec.reset(seed=0)[0].shape == (2, 32, 32, 3)
    with pytest.raises(ValueError, match="width=48: this model generates 32x32 frames"):
        gym.make_vec("LV2/World-v0", num_envs=2, checkpoint=str(world_checkpoint), preset="test", width=48)


def test_sb3_make_vec_env_with_groundtruth_size_arguments_on_the_shipped_model():
    from stable_baselines3.common.env_util import make_vec_env

    vec = make_vec_env("LV2/World-v0", n_envs=1, env_kwargs={"height": 128, "width": 128})
    try:
        assert vec.reset().shape == (1, 128, 128, 3)
    finally:
        vec.close()
    with pytest.raises(ValueError, match="height=64, width=64: this model generates 128x128 frames"):
        make_vec_env("LV2/World-v0", n_envs=1, env_kwargs={"height": 64, "width": 64})


# ---------------------------------------------------------------------------------------------------- path helpers


def test_path_helpers(files):
    assert readable_file(files / "good.png", "--x") == files / "good.png" and readable_file(None, "--x") is None
    with pytest.raises(ValueError, match=r"^--x '.*missing.png': no such file$"):
        readable_file(files / "missing.png", "--x")
    with pytest.raises(ValueError, match="is a directory; expected a file"):
        readable_file(files / "folder", "--x")
    with pytest.raises(ValueError, match="is a file; expected a directory"):
        readable_dir(files / "good.png", "--x")
    with pytest.raises(ValueError, match="no such directory"):
        readable_dir(files / "nowhere", "--x")

    assert writable_output(files / "new" / "deeper" / "out.mp4", "--out").parent.is_dir()  # parents created
    with pytest.raises(ValueError, match=r"^--out '.*notes.txt/x/out.mp4': cannot create its directory .*notes.txt/x"):
        writable_output(files / "notes.txt" / "x" / "out.mp4", "--out")
    with pytest.raises(ValueError, match="is a directory; expected a file path"):
        writable_output(files / "folder", "--out")
    with pytest.raises(ValueError, match=r"cannot create its directory '/proc/lv2-nowhere'"):
        writable_output("/proc/lv2-nowhere/out.mp4", "--out")

    assert writable_dir(files / "later" / "rec", "--record-dir", create=False) == files / "later" / "rec"
    assert not (files / "later").exists()  # checked, not made
    with pytest.raises(ValueError, match="'.*notes.txt' is a file"):
        writable_dir(files / "notes.txt" / "rec", "--record-dir", create=False)
    with pytest.raises(ValueError, match="cannot create the directory"):
        writable_dir(files / "notes.txt" / "rec", "--out")
    assert writable_dir(files / "made" / "here", "--out").is_dir()


def test_whole_clips_rounds_to_the_nearer_clip_and_says_so():
    assert whole_clips(0.3, "--seconds", 1.0) == (1, "--seconds 0.3 is 0.3 clips; rolling out 1 clip = 1.0 s")
    assert whole_clips(2.5, "--seconds", 1.0)[0] == 3 and whole_clips(2.4, "--seconds", 1.0)[0] == 2
    assert whole_clips(10, "--seconds", 1.0) == (10, None)
    assert whole_clips(5, "--minutes", 1.0, unit_seconds=60.0) == (300, None)
    assert whole_clips(0.01, "--minutes", 1.0, unit_seconds=60.0) == (
        1, "--minutes 0.01 is 0.6 clips; rolling out 1 clip = 1.0 s")
    assert whole_clips(1.1, "--seconds", 0.25, doing="writing") == (4, "--seconds 1.1 is 4.4 clips; writing 4 clips = 1.0 s")
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="--seconds .*: expected a positive, finite duration"):
            whole_clips(bad, "--seconds", 1.0)


# ---------------------------------------------------------------------------------------------------- lv2 verbs


def test_rollout_out_that_cannot_be_created_is_one_line_not_a_traceback(files):
    done = _lv2("rollout", "--env", "groundtruth", "--seconds", "1", "--quiet", "--out", files / "notes.txt" / "run.mp4")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip() == (f"lv2 rollout: error: --out '{files / 'notes.txt' / 'run.mp4'}': its directory "
                                   f"'{files / 'notes.txt'}' is a file")


def test_rollout_bad_paths(files, capsys):
    base = ["rollout", "--env", "groundtruth", "--seconds", "1", "--quiet"]
    _fails_cleanly(capsys, base + ["--out", "/proc/lv2-nowhere/run.mp4"], "--out", "/proc/lv2-nowhere")
    _fails_cleanly(capsys, base + ["--out", files / "folder"], "--out", "is a directory")
    _fails_cleanly(capsys, base + ["--out", files / "r.mp4", "--side-file", files / "notes.txt" / "s.json"],
                   "--side-file", files / "notes.txt")
    _fails_cleanly(capsys, base + ["--policy", "file", "--pose-file", files / "missing.csv"], "--pose-file",
                   files / "missing.csv", "no such file")
    _fails_cleanly(capsys, base + ["--image", files / "folder"], "--image", files / "folder", "is a directory")
    _fails_cleanly(capsys, ["rollout", "--env", "world", "--checkpoint", files / "nowhere"], "--checkpoint",
                   files / "nowhere", "no such directory")
    assert not (files / "r.mp4").exists()  # refused before anything was written


def test_rollout_durations_are_whole_clips(files, capsys):
    out = files / "short.mp4"
    assert main(["rollout", "--env", "groundtruth", "--seconds", "0.3", "--quiet", "--out", str(out)]) == 0
    assert "lv2 rollout: note: --seconds 0.3 is 0.3 clips; rolling out 1 clip = 1.0 s" in capsys.readouterr().err
    assert probe_video(out)["frames"] == 17
    assert main(["rollout", "--env", "groundtruth", "--seconds", "2", "--quiet", "--out", str(out)]) == 0
    assert "note" not in capsys.readouterr().err and probe_video(out)["frames"] == 33
    assert main(["rollout", "--env", "groundtruth", "--minutes", "0.01", "--quiet", "--out", str(out)]) == 0
    assert "--minutes 0.01 is 0.6 clips; rolling out 1 clip = 1.0 s" in capsys.readouterr().err
    _fails_cleanly(capsys, ["rollout", "--env", "groundtruth", "--seconds", "0", "--out", str(out)], "--seconds 0")
    _fails_cleanly(capsys, ["rollout", "--env", "groundtruth", "--minutes", "-1", "--out", str(out)], "--minutes -1")


def test_rollout_world_of_another_size_is_refused(world_checkpoint, files, capsys):
    _fails_cleanly(capsys, ["rollout", "--env", "world", "--checkpoint", world_checkpoint, "--height", "64",
                            "--width", "64", "--out", files / "w.mp4"],
                   "height=64, width=64", "this model generates 32x32 frames")


def test_play_bad_paths(files, capsys):
    _fails_cleanly(capsys, ["play", "--checkpoint", files / "nowhere"], "--checkpoint", files / "nowhere")
    _fails_cleanly(capsys, ["play", "--env", "groundtruth", "--image", files / "missing.png"], "--image", "no such file")
    _fails_cleanly(capsys, ["play", "--env", "groundtruth", "--record-dir", files / "notes.txt" / "rec"],
                   "--record-dir", files / "notes.txt")
    _fails_cleanly(capsys, ["play", "--env", "groundtruth", "--screenshot", files / "notes.txt" / "s.png"],
                   "--screenshot", files / "notes.txt")


def test_generate_bad_paths(world_checkpoint, files, capsys):
    np.save(files / "poses.npy", np.repeat(np.eye(4)[None], 5, axis=0))
    np.save(files / "depth.npy", np.full((5, 32, 32), 5.0, np.float32))
    with Mp4Writer(files / "control.mp4") as writer:
        writer.write(np.zeros((5, 32, 32, 3), np.uint8))
    given = {"--checkpoint": world_checkpoint, "--first-frame": files / "good.png", "--depth": files / "control.mp4",
             "--tracks": files / "control.mp4", "--prompt": "a field", "--poses": files / "poses.npy",
             "--metric-depth": files / "depth.npy", "--out": files / "gen.mp4"}

    def generate(**changed):
        flags = {**given, **{"--" + k.replace("_", "-"): v for k, v in changed.items()}}
        return ["generate", *[str(part) for flag, value in flags.items() if value is not None for part in (flag, value)]]

    _fails_cleanly(capsys, generate(checkpoint=files / "nowhere"), "--checkpoint", "no such directory")
    _fails_cleanly(capsys, generate(first_frame=files / "missing.png"), "--first-frame", files / "missing.png")
    _fails_cleanly(capsys, generate(depth=files / "folder"), "--depth", files / "folder", "is a directory")
    _fails_cleanly(capsys, generate(tracks=files / "notes.txt"), "--tracks", files / "notes.txt", "cannot be decoded")
    _fails_cleanly(capsys, generate(prompt=None, prompts=files / "missing.txt"), "--prompts", files / "missing.txt")
    _fails_cleanly(capsys, generate(out=files / "notes.txt" / "gen.mp4"), "--out", files / "notes.txt")
    _fails_cleanly(capsys, generate(poses=files / "notes.txt"), "poses", files / "notes.txt", "not a .npy file")
    _fails_cleanly(capsys, generate(metric_depth=files / "poses.npy"), "metric depth", files / "poses.npy")
    _fails_cleanly(capsys, generate(intrinsics=files / "depth.npy"), "[3, 3] matrix K", files / "depth.npy")
    _fails_cleanly(capsys, generate(fov="500"), "--fov 500")
    assert not (files / "gen.mp4").exists()


def test_generate_refuses_a_rendered_model_without_its_camera_path(files, capsys):
    line = _fails_cleanly(capsys, ["generate", "--checkpoint", SHIPPED, "--first-frame", files / "good.png", "--depth",
                                   "d.mp4", "--tracks", "t.mp4", "--prompt", "a field", "--out", files / "gen.mp4"],
                          SHIPPED, "--poses POSES.npy", "--metric-depth DEPTH.npy", "lv2 data controls")
    assert "rendered along the camera path" in line


def test_data_bad_paths(files, capsys):
    _fails_cleanly(capsys, ["data", "procedural", "--out", files / "notes.txt", "--sequences", "1"],
                   "lv2 data procedural: error: --out", "is a file; expected a directory")
    _fails_cleanly(capsys, ["data", "controls", "--out", files / "notes.txt" / "ctl"],
                   "lv2 data controls: error: --out", files / "notes.txt")
    _fails_cleanly(capsys, ["data", "controls", "--out", files / "ctl", "--seconds", "0"], "--seconds 0")
    _fails_cleanly(capsys, ["data", "controls", "--out", files / "ctl", "--clip-frames", "6"], "4k+1", "6")
    _fails_cleanly(capsys, ["data", "videos", "--videos", files / "nowhere", "--out", files / "v", "--depth-model",
                            files / "folder"], "--videos", files / "nowhere", "no such directory")
    _fails_cleanly(capsys, ["data", "videos", "--videos", files / "folder", "--out", files / "v", "--depth-model",
                            files / "good.png"], "--depth-model", files / "good.png")
    _fails_cleanly(capsys, ["data", "generated-frames", "--out", files / "g", "--steps", "0"],
                   "--sequences and --steps must be at least 1", "got 60 and 0")
    _fails_cleanly(capsys, ["data", "generated-frames", "--out", files / "g", "--checkpoint", files / "nowhere"],
                   "--checkpoint", files / "nowhere")
    assert not (files / "ctl").exists() and not (files / "v").exists() and not (files / "g").exists()


def test_train_bad_paths(files, capsys):
    _fails_cleanly(capsys, ["train", "vae", "--data", files / "nowhere", "--out", files / "runs"], "--data",
                   files / "nowhere", "no such directory")
    _fails_cleanly(capsys, ["train", "vae", "--data", files / "folder", "--eval-data", files / "notes.txt",
                            "--out", files / "runs"], "--eval-data", "is a file")
    _fails_cleanly(capsys, ["train", "control", "--data", files / "folder", "--vae", files / "nowhere", "--out",
                            files / "runs"], "--vae", files / "nowhere")
    _fails_cleanly(capsys, ["train", "control", "--data", files / "folder", "--init", files / "nowhere", "--out",
                            files / "runs"], "--init", files / "nowhere")
    _fails_cleanly(capsys, ["train", "vae", "--data", files / "folder", "--out", files / "notes.txt" / "runs"],
                   "--out", files / "notes.txt")
    _fails_cleanly(capsys, ["train", "vae", "--data", files / "folder", "--out", files / "nowhere",
                            "--export-latest", files / "x"], "--out", files / "nowhere")
    _fails_cleanly(capsys, ["train", "cache-latents", "--data", files / "folder"], "needs --vae")
    _fails_cleanly(capsys, ["train", "depth", "--data", files / "folder", "--generated-data", files / "nowhere",
                            "--out", files / "runs"], "--generated-data", files / "nowhere")
    _fails_cleanly(capsys, ["train", "vae", "--data", files / "folder", "--generated-data", files / "folder",
                            "--out", files / "runs"], "the depth stage's")
    assert not (files / "runs").exists()


# ---------------------------------------------------------------------------------------------------- end to end


def test_data_controls_then_generate_on_the_shipped_model(tmp_path):
    """The offline example (docs/full-size-weights.md), from nothing: `lv2 data controls` for a 2-clip path, then `lv2 generate` on
    the shipped rendered-conditioning model."""
    ctl = tmp_path / "ctl"
    made = _lv2("data", "controls", "--out", ctl, "--seconds", "2", "--scene-seed", "3", "--style", "sunny")
    assert made.returncode == 0, made.stderr
    assert {p.name for p in ctl.iterdir()} >= {"first.png", "dense.mp4", "sparse.mp4", "poses.npy", "depth.npy",
                                               "prompts.txt"}
    poses, depth = np.load(ctl / "poses.npy"), np.load(ctl / "depth.npy")
    assert poses.shape == (33, 4, 4) and depth.shape == (33, 128, 128) and np.all(depth > 0)
    assert read_video(ctl / "dense.mp4").shape == read_video(ctl / "sparse.mp4").shape == (33, 128, 128, 3)
    assert len((ctl / "prompts.txt").read_text().splitlines()) == 2

    out = tmp_path / "gen.mp4"
    done = _lv2("generate", "--checkpoint", SHIPPED, "--first-frame", ctl / "first.png", "--depth", ctl / "dense.mp4",
                "--tracks", ctl / "sparse.mp4", "--poses", ctl / "poses.npy", "--metric-depth", ctl / "depth.npy",
                "--prompts", ctl / "prompts.txt", "--out", out, "--quiet")
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout and "33 frames (2 clips)" in done.stdout
    video = read_video(out)
    assert probe_video(out)["frames"] == 33 and video.shape == (33, 128, 128, 3)
    first = np.asarray(Image.open(ctl / "first.png"))
    assert np.abs(video[0].astype(int) - first.astype(int)).mean() < 4  # frame 0 is the start image (H.264 aside)


# ------------------------------------------------------------------------------------------------ the environments


@pytest.mark.parametrize("kwargs, names", [
    ({"action_mode": "joystick"}, ["'joystick'", "discrete"]),
    ({"obs_mode": "pixels"}, ["'pixels'", "frame"]),
    ({"height": 8}, ["height", "8"]),
    ({"style": "volcano"}, ["'volcano'", "sunny"]),
    ({"goal_radius": -1.0}, ["goal_radius", "-1.0"]),
    ({"render_mode": "vr"}, ["'vr'", "rgb_array"]),
    ({"torch_threads": 0}, ["torch_threads", "0"]),
    ({"clip_frames": 6}, ["4k+1", "6"]),
])
def test_ground_truth_arguments(kwargs, names):
    with pytest.raises(ValueError) as error:
        gym.make("LV2/GroundTruth-v0", **kwargs)
    assert all(n in str(error.value) for n in names), str(error.value)


@pytest.mark.parametrize("kwargs, names", [
    ({"precision": "fp16"}, ["'fp16'", "bf16"]),
    ({"decoder": "slow"}, ["'slow'", "fast"]),
    ({"control_source": "lidar"}, ["'lidar'", "cache"]),
    ({"sampling_steps": 0}, ["sampling_steps", "0"]),
    ({"preset": "wan2.1-i2v-14b-480p"}, ["'tiny'", "'wan2.1-i2v-14b-480p'"]),
])
def test_world_arguments(kwargs, names):
    with pytest.raises(ValueError) as error:
        gym.make("LV2/World-v0", **kwargs)
    assert all(n in str(error.value) for n in names), str(error.value)


@pytest.mark.parametrize("mode, action, names", [
    ("discrete", 99, ["[0, 10]", "99"]),
    ("continuous", np.array([np.nan, 0, 0, 0, 0, 0], np.float32), ["finite", "nan"]),
    ("continuous", np.zeros(5, np.float32), ["(6,)", "(5,)"]),
    ("continuous", np.array([9, 0, 0, 0, 0, 0], np.float32), ["forward", "9"]),
    ("trajectory", np.ones((17, 6), np.float32), ["frame 0", "[-0, 0]"]),
])
def test_actions_out_of_their_space(mode, action, names):
    env = gym.make("LV2/GroundTruth-v0", action_mode=mode)
    env.reset(seed=0)
    with pytest.raises(ValueError) as error:
        env.step(action)
    assert all(n in str(error.value) for n in names), str(error.value)


@pytest.mark.parametrize("options, names", [
    ({"weather": 1}, ["'weather'", "scene_seed"]),
    ({"scene_seed": -3}, ["scene_seed", "-3"]),
    ({"start_pose": [1, 2, 3]}, ["start_pose", "(3,)"]),
])
def test_reset_options(options, names):
    with pytest.raises(ValueError) as error:
        gym.make("LV2/GroundTruth-v0").reset(seed=0, options=options)
    assert all(n in str(error.value) for n in names), str(error.value)


def test_world_reset_and_prompt():
    env = gym.make("LV2/World-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match='control_source="cache"'):
        env.reset(options={"image": np.zeros((128, 128, 3), np.uint8)})
    with pytest.raises(ValueError, match="prompt must be a string, got int"):
        env.unwrapped.set_prompt(5)
