"""Text and image encoders (model/text.py): the tiny word encoder, and umT5 / CLIP on tiny random models built
offline in tmp_path (nothing is downloaded: the transformers tests run with network connections refused)."""

from __future__ import annotations

import json
import socket
import warnings

import numpy as np
import pytest
import torch

from model.image_encoder import CLIP_MEAN, CLIP_STD, ClipImageEncoder
from model.text import (
    TextEncoder,
    UMT5TextEncoder,
    WordTextEncoder,
    build_vocabulary,
    load_text_encoder,
    split_words,
)
from model.presets import TINY_TRAINING

CAPTIONS = [
    "A red brick corridor with a wooden door",
    "Camera turns left in a green meadow",
    "Stone pillars under a grey sky; the camera moves forward.",
]


def _tiny_config() -> dict:
    return {k: v for k, v in TINY_TRAINING.text_encoder.items() if k != "kind"}


@pytest.fixture
def encoder() -> WordTextEncoder:
    torch.manual_seed(0)
    return WordTextEncoder(vocabulary=build_vocabulary(CAPTIONS), **_tiny_config()).eval()


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test: every loader must read local files only."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a network connection was attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# ---------------------------------------------------------------------------------------------------- words


def test_vocabulary_and_tokenisation():
    assert split_words("Red-brick wall, 2x! Über") == ["red", "brick", "wall", "x", "über"]
    vocab = build_vocabulary(["b a", "A c"], extra=["zeta"])
    assert vocab == ["a", "b", "c", "zeta"]
    with pytest.raises(ValueError, match="single lower-case words"):
        WordTextEncoder(vocabulary=["Red"])
    with pytest.raises(ValueError, match="unique"):
        WordTextEncoder(vocabulary=["a", "a"])


def test_word_encoder_shapes_padding_and_protocol(encoder):
    assert isinstance(encoder, TextEncoder)
    assert (encoder.dim, encoder.max_tokens) == (64, 32)
    out = encoder.encode(CAPTIONS + [""])
    assert out.shape == (4, 32, 64) and out.dtype == torch.float32
    for row, caption in enumerate(CAPTIONS):
        n = len(split_words(caption))
        assert torch.all(out[row, n:] == 0)
        assert torch.all(out[row, :n].abs().sum(-1) > 0)
    assert torch.all(out[3] == 0)  # the empty prompt: all padding
    assert torch.isfinite(out).all()


def test_padding_does_not_change_the_tokens_outputs(encoder):
    short, long = "a red door", CAPTIONS[2]
    alone = encoder.encode([short])
    batched = encoder.encode([long, short])
    n = len(split_words(short))
    torch.testing.assert_close(batched[1, :n], alone[0, :n], atol=1e-6, rtol=0)
    # ...and equals the forward pass over the unpadded tokens only.
    ids, mask = encoder.tokenize([short])
    unpadded = encoder(ids[:, :n], mask[:, :n])
    torch.testing.assert_close(alone[0, :n], unpadded[0], atol=1e-6, rtol=0)
    # Inference (no autograd) takes PyTorch's fused encoder-layer path; it must honour the mask the same way.
    with torch.no_grad():
        fused = encoder.encode([long, short, ""])
    torch.testing.assert_close(fused[1], alone[0], atol=1e-5, rtol=0)
    assert torch.all(fused[2] == 0)


def test_empty_prompt_has_finite_gradients(encoder):
    encoder.train()
    out = encoder.encode(["", "a red door"])
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in encoder.parameters() if p.grad is not None)


def test_unknown_words_warn_once_naming_them(encoder):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = encoder.encode(["a dragon in the castle", "the dragon sleeps"])
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 1
    assert "['dragon', 'castle', 'sleeps']" in messages[0] and "<unk>" in messages[0]
    assert out.shape == (2, 32, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encoder.encode(["a red door"])  # known words: no warning


def test_truncation_warns_naming_the_prompt(encoder):
    prompt = " ".join(["red"] * 40)
    with pytest.warns(UserWarning, match="truncated") as record:
        out = encoder.encode([prompt])
    assert prompt in str(record[0].message)
    assert out.shape == (1, 32, 64) and torch.all(out[0].abs().sum(-1) > 0)


def test_different_prompts_differ_and_seed_is_deterministic(encoder):
    a, b = encoder.encode(["a red door", "a green meadow"])
    assert not torch.allclose(a, b)
    torch.manual_seed(0)
    again = WordTextEncoder(vocabulary=build_vocabulary(CAPTIONS), **_tiny_config()).eval()
    torch.testing.assert_close(again.encode(CAPTIONS), encoder.encode(CAPTIONS), atol=0, rtol=0)


def test_word_encoder_save_load_round_trip(encoder, tmp_path):
    encoder.save_pretrained(tmp_path / "text_encoder")
    files = sorted(p.name for p in (tmp_path / "text_encoder").iterdir())
    assert files == ["config.json", "model.safetensors", "vocab.json"]
    config = json.loads((tmp_path / "text_encoder" / "config.json").read_text())
    assert config["kind"] == "words" and config["dim"] == 64 and config["max_tokens"] == 32
    loaded = load_text_encoder(tmp_path / "text_encoder")
    assert isinstance(loaded, WordTextEncoder) and loaded.vocabulary == encoder.vocabulary
    torch.testing.assert_close(loaded.encode(CAPTIONS + [""]), encoder.encode(CAPTIONS + [""]), atol=0, rtol=0)
    assert isinstance(load_text_encoder(tmp_path / "text_encoder" / "config.json"), WordTextEncoder)


def test_load_text_encoder_errors(tmp_path):
    with pytest.raises(ValueError, match="no such directory"):
        load_text_encoder(tmp_path / "missing")
    with pytest.raises(ValueError, match="expected config.json"):
        load_text_encoder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"kind": "bag-of-letters"}))
    with pytest.raises(ValueError, match="expected kind 'words' or .*umt5.*got kind='bag-of-letters'"):
        load_text_encoder(tmp_path)
    with pytest.raises(ValueError, match="expected kind 'words'"):
        load_text_encoder({"kind": "umt5", "max_tokens": 512})
    fresh = load_text_encoder({**TINY_TRAINING.text_encoder, "vocabulary": ["red"]})
    assert isinstance(fresh, WordTextEncoder) and fresh.dim == 64


# ---------------------------------------------------------------------------------------------------- umT5


def _write_tiny_umt5(directory) -> None:
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    words = sorted({w for c in CAPTIONS for w in split_words(c)})
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(words)}}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = tokenizers.normalizers.Lowercase()
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok.post_processor = tokenizers.processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    fast.save_pretrained(str(directory))
    torch.manual_seed(0)
    config = transformers.UMT5Config(
        vocab_size=100, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )
    transformers.UMT5EncoderModel(config).save_pretrained(str(directory))


def test_umt5_encoder_through_load_text_encoder(tmp_path, no_network):
    _write_tiny_umt5(tmp_path)
    encoder = load_text_encoder(tmp_path)
    assert isinstance(encoder, UMT5TextEncoder) and isinstance(encoder, TextEncoder)
    assert (encoder.dim, encoder.max_tokens) == (32, 512)
    prompts = ["a red door", CAPTIONS[2], ""]
    out = encoder.encode(prompts)
    assert out.shape == (3, 512, 32) and out.dtype == torch.float32
    ids, mask = encoder.tokenize(prompts)
    lengths = mask.sum(1).tolist()
    assert lengths == [4, 13, 1]  # words and punctuation (Whitespace splits both) + </s>
    for row, n in enumerate(lengths):
        assert torch.all(out[row, n:] == 0) and torch.all(out[row, :n].abs().sum(-1) > 0)
    # Padding is masked: the first prompt's tokens encoded alone, unpadded, give the same embeddings.
    alone = encoder.model(input_ids=ids[:1, : lengths[0]]).last_hidden_state
    torch.testing.assert_close(out[0, : lengths[0]], alone[0], atol=1e-5, rtol=1e-5)


def test_umt5_dtype_and_save_round_trip(tmp_path, no_network):
    _write_tiny_umt5(tmp_path / "a")
    encoder = UMT5TextEncoder.from_pretrained(tmp_path / "a", torch_dtype=torch.bfloat16, max_tokens=16)
    assert encoder.dtype == torch.bfloat16
    assert encoder.encode(["a red door"]).shape == (1, 16, 32)
    encoder.save(tmp_path / "b")
    again = load_text_encoder(tmp_path / "b", torch_dtype=torch.bfloat16)
    torch.testing.assert_close(again.encode(["a red door"])[:, :16], encoder.encode(["a red door"]), atol=0, rtol=0)


# ---------------------------------------------------------------------------------------------------- CLIP


def _write_tiny_clip(directory, processor: bool = False):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=28, patch_size=14
    )
    transformers.CLIPVisionModel(config).save_pretrained(str(directory))
    if processor:
        pytest.importorskip("PIL")
        transformers.CLIPImageProcessor(
            size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}
        ).save_pretrained(str(directory))


def test_clip_image_encoder_penultimate_tokens(tmp_path, no_network):
    _write_tiny_clip(tmp_path)
    encoder = ClipImageEncoder.from_pretrained(tmp_path)
    assert encoder.processor is None and (encoder.dim, encoder.num_tokens) == (32, 5)
    images = np.random.default_rng(0).integers(0, 256, size=(2, 40, 56, 3), dtype=np.uint8)
    out = encoder.encode(images)
    assert out.shape == (2, 5, 32)
    pixels = encoder.preprocess(images)
    assert pixels.shape == (2, 3, 28, 28)
    reference = encoder.model(pixel_values=pixels, output_hidden_states=True).hidden_states[-2]
    torch.testing.assert_close(out, reference, atol=0, rtol=0)
    assert not torch.allclose(out, encoder.model(pixel_values=pixels).last_hidden_state)
    assert encoder.encode(torch.from_numpy(images[0])).shape == (1, 5, 32)  # one [H, W, 3] torch image
    with pytest.raises(ValueError, match="uint8"):
        encoder.encode(images.astype(np.float32))


def test_clip_processor_path_matches_torch_preprocessing(tmp_path, no_network):
    _write_tiny_clip(tmp_path, processor=True)
    encoder = ClipImageEncoder.from_pretrained(tmp_path)
    assert encoder.processor is not None
    images = np.random.default_rng(1).integers(0, 256, size=(2, 28, 28, 3), dtype=np.uint8)
    # At the model's own size there is no resize: both paths are rescale + CLIP normalisation.
    expected = (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(
        CLIP_STD
    ).view(1, 3, 1, 1)
    torch.testing.assert_close(encoder.preprocess(images), expected, atol=1e-5, rtol=1e-5)
    assert encoder.encode(images).shape == (2, 5, 32)


def test_missing_transformers_names_the_extra(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` now raises ImportError
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "umt5"}))
    with pytest.raises(ImportError, match=r'pip install "lv2\[full\]"'):
        load_text_encoder(tmp_path)
    with pytest.raises(ImportError, match=r'pip install "lv2\[full\]"'):
        ClipImageEncoder.from_pretrained(tmp_path)
