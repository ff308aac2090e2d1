import os

# Tests never need a real screen or sound card: pygame draws into memory.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pytest  # noqa: E402


def small_world_preset():
    """A 32x32, 5-frame, 2-block model: the shapes of the tiny preset at a size tests run in seconds."""
    from model.presets import TINY_TRAINING, Preset

    return Preset(**{
        **TINY_TRAINING.__dict__, "name": "test", "height": 32, "width": 32, "frames": 5, "history_latent_frames": 1,
        "vae": dict(TINY_TRAINING.vae, base_dim=8),
        "transformer": dict(TINY_TRAINING.transformer, num_layers=2, control_layers=1, ffn_dim=128, control_ffn_dim=64),
        "sampling": dict(TINY_TRAINING.sampling, steps=2),
    })


@pytest.fixture(scope="session")
def world_checkpoint(tmp_path_factory):
    """A randomly initialised checkpoint of :func:`small_world_preset` with a small depth network and control
    encoder."""
    import torch

    from lv2_env.worlds.scene import CAPTION_VOCABULARY
    from model.checkpoint import build_from_preset, save_checkpoint
    from model.control_encoder import ControlEncoder
    from model.depth import TinyDepthConfig, TinyDepthNet
    from model.text import build_vocabulary

    directory = tmp_path_factory.mktemp("world") / "model"
    save_checkpoint(build_from_preset(small_world_preset(), vocabulary=build_vocabulary([], CAPTION_VOCABULARY), seed=0),
                    directory)
    torch.manual_seed(0)
    TinyDepthNet(TinyDepthConfig(channels=[8, 16], groups=4)).save_pretrained(directory / "depth")
    # As the shipped model: a (here untrained) distilled control encoder, for control_encoder="distilled".
    ControlEncoder(widths=(8, 16, 16), blocks=1, groups=4).save_pretrained(directory / "control-encoder")
    return directory
