"""Text encoders: prompts -> the DiT's ``encoder_hidden_states`` (the image context is :mod:`model.image_encoder`).

Two encoders, one contract (:class:`TextEncoder`): ``encode(prompts) -> [B, max_tokens, dim]`` with every
position past a prompt's last token set to zero. Wan's pipeline zeroes the padding of its umT5 embeddings too, so
the DiT is trained and sampled on the same kind of context whichever encoder made it, and the empty prompt ``""``
(the unconditional prompt of classifier-free guidance) is a well-defined all-zero context for the tiny encoder.

* :class:`WordTextEncoder` -- the ``tiny`` preset's small learned encoder over a word vocabulary (trained with the
  DiT on the procedural worlds' captions; a checkpoint directory holds ``config.json`` + ``model.safetensors`` +
  ``vocab.json``).
* :class:`UMT5TextEncoder` -- Wan2.1's umT5-XXL text tower (``transformers.UMT5EncoderModel``), 512 tokens.

:func:`load_text_encoder` picks the class from a directory's ``config.json``. ``transformers`` is an optional
dependency (``pip install "lv2[full]"``, see :mod:`model.hf`), imported only by the umT5 encoder. Every loader
reads local paths only (``local_files_only=True``): nothing here downloads weights.
"""

from __future__ import annotations

import html
import json
import re
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol, Sequence, runtime_checkable

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from model.checkpoint_files import (
    build_from_config, check_json_keys, check_weights_file, read_json, read_json_object, state_shapes,
)
from model.hf import WrapsModel, existing_directory, import_transformers, load_local_model

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
VOCAB_NAME = "vocab.json"
WORDS_KIND = "words"
PAD_TOKEN, UNK_TOKEN = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
UMT5_MAX_TOKENS = 512  # Wan2.1 pads every prompt to 512 umT5 tokens
# The types of what a tiny encoder's config.json may hold (besides its kind); the constructor's defaults fill in.
WORDS_CONFIG_TYPES: dict[str, type] = {"dim": int, "num_layers": int, "num_heads": int, "max_tokens": int,
                                       "ffn_dim": int, "vocab_size": int}

_WORD = re.compile(r"[^\W\d_]+")  # runs of letters (any script); digits, '_' and punctuation split words


@runtime_checkable
class TextEncoder(Protocol):
    """What the generator and the trainer need from a text encoder."""

    dim: int
    max_tokens: int

    def encode(self, prompts: list[str]) -> torch.Tensor:
        """``[B, max_tokens, dim]`` float embeddings; positions past each prompt's tokens are zero."""
        ...

    def save(self, directory: str | Path) -> Path:
        """Write the encoder so that :func:`load_text_encoder` reads it back."""
        ...


# ---------------------------------------------------------------------------------------------------- words


def split_words(text: str) -> list[str]:
    """The tiny encoder's tokenisation: lower-cased runs of letters ("Red-brick wall, 2x" -> red, brick, wall, x)."""
    return _WORD.findall(text.lower())


def build_vocabulary(texts: Iterable[str], extra: Iterable[str] = ()) -> list[str]:
    """Sorted unique words of ``texts`` (tokenised as :func:`split_words`) and of ``extra``.

    Sorting makes the vocabulary -- hence every word's index -- independent of the order captions were seen in.
    """
    words: set[str] = set()
    for text in (*texts, *extra):
        words.update(split_words(text))
    return sorted(words)


def _check_vocabulary(vocabulary: Sequence[str]) -> list[str]:
    words = list(vocabulary)
    bad = [w for w in words if not isinstance(w, str) or split_words(w) != [w]]
    if bad:
        raise ValueError(
            f"vocabulary entries must be single lower-case words of letters (as build_vocabulary makes them); "
            f"got {bad[:10]}{' ...' if len(bad) > 10 else ''}"
        )
    if len(set(words)) != len(words):
        seen: set[str] = set()
        dupes = sorted({w for w in words if w in seen or seen.add(w)})
        raise ValueError(f"vocabulary entries must be unique; repeated: {dupes[:10]}")
    return words


class WordTextEncoder(nn.Module):
    """The ``tiny`` preset's text encoder: word embedding + learned positions + a pre-norm Transformer encoder.

    Index 0 is padding and 1 is ``<unk>``; the vocabulary's words follow in the order given. Padding is masked out
    of attention (so a prompt's embedding does not depend on what it is batched with) and its outputs are zero.
    Dropout is fixed at 0 so ``encode`` is a deterministic function of the weights in train and eval mode alike.

    ``encode`` runs under the caller's grad mode: the tiny encoder is trained with the DiT.
    """

    def __init__(
        self,
        vocabulary: Sequence[str] = (),
        dim: int = 64,
        num_layers: int = 2,
        num_heads: int = 4,
        max_tokens: int = 32,
        ffn_dim: int | None = None,
    ) -> None:
        super().__init__()
        if dim <= 0 or num_heads <= 0 or dim % num_heads:
            raise ValueError(f"dim must be a positive multiple of num_heads, got dim={dim}, num_heads={num_heads}")
        if max_tokens <= 0 or num_layers < 0:
            raise ValueError(f"max_tokens must be > 0 and num_layers >= 0, got {max_tokens} and {num_layers}")
        self.vocabulary: tuple[str, ...] = tuple(_check_vocabulary(vocabulary))
        self._index = {word: i + 2 for i, word in enumerate(self.vocabulary)}
        self.dim = int(dim)
        self.max_tokens = int(max_tokens)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.ffn_dim = int(ffn_dim if ffn_dim is not None else 4 * dim)

        self.token_embedding = nn.Embedding(len(self.vocabulary) + 2, self.dim, padding_idx=PAD_ID)
        self.position_embedding = nn.Parameter(torch.randn(self.max_tokens, self.dim) * 0.02)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                self.dim, self.num_heads, self.ffn_dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
            )
            for _ in range(self.num_layers)
        )
        self.norm = nn.LayerNorm(self.dim)

    # ------------------------------------------------------------------ config

    @property
    def config(self) -> dict[str, Any]:
        """What :meth:`save_pretrained` records in ``config.json`` (the vocabulary goes to ``vocab.json``)."""
        return {
            "kind": WORDS_KIND,
            "dim": self.dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "max_tokens": self.max_tokens,
            "ffn_dim": self.ffn_dim,
            "vocab_size": len(self.vocabulary) + 2,
        }

    @property
    def device(self) -> torch.device:
        return self.token_embedding.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.token_embedding.weight.dtype

    # ------------------------------------------------------------------ tokenising

    def tokenize(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ids, mask)``, both ``[B, max_tokens]`` on the encoder's device; ``mask`` is True on real tokens.

        Warns (one ``UserWarning`` per call each) about prompts cut to ``max_tokens`` words and about words not in
        the vocabulary, naming them: both silently change what the model is conditioned on.
        """
        prompts = _check_prompts(prompts)
        ids = torch.full((len(prompts), self.max_tokens), PAD_ID, dtype=torch.long)
        unknown: dict[str, None] = {}
        truncated: list[str] = []
        for row, prompt in enumerate(prompts):
            words = split_words(prompt)
            if len(words) > self.max_tokens:
                truncated.append(prompt)
                words = words[: self.max_tokens]
            for col, word in enumerate(words):
                index = self._index.get(word)
                if index is None:
                    unknown[word] = None
                    index = UNK_ID
                ids[row, col] = index
        if truncated:
            warnings.warn(
                f"prompts longer than the tiny text encoder's {self.max_tokens} words are truncated to their first "
                f"{self.max_tokens} words: {truncated}",
                UserWarning,
                stacklevel=3,
            )
        if unknown:
            warnings.warn(
                f"prompt words not in the tiny text encoder's vocabulary: {list(unknown)}; they are encoded as {UNK_TOKEN}",
                UserWarning,
                stacklevel=3,
            )
        return ids.to(self.device), ids.ne(PAD_ID).to(self.device)

    # ------------------------------------------------------------------ forward

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``ids [B, L]`` (``L <= max_tokens``), ``mask [B, L]`` True on real tokens -> ``[B, L, dim]``, zero at padding."""
        if ids.ndim != 2 or ids.shape[1] > self.max_tokens:
            raise ValueError(f"ids must be [B, L] with L <= max_tokens={self.max_tokens}, got {tuple(ids.shape)}")
        if mask is None:
            mask = ids.ne(PAD_ID)
        if mask.shape != ids.shape:
            raise ValueError(f"mask {tuple(mask.shape)} must match ids {tuple(ids.shape)}")
        mask = mask.bool()
        x = self.token_embedding(ids) + self.position_embedding[: ids.shape[1]]
        # A row with no tokens at all (the empty prompt) would attend to nothing: softmax over all -inf gives NaN,
        # and NaN survives masking in the backward pass. Let such rows attend freely; their outputs are zeroed below.
        key_padding = ~mask & mask.any(dim=1, keepdim=True)
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=key_padding)
        x = self.norm(x)
        return x.masked_fill(~mask.unsqueeze(-1), 0.0)

    def encode(self, prompts: list[str]) -> torch.Tensor:
        """Prompts -> ``[B, max_tokens, dim]``, zero past each prompt's words (all zero for ``""``)."""
        ids, mask = self.tokenize(prompts)
        return self(ids, mask)

    # ------------------------------------------------------------------ saving and loading

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json``, ``model.safetensors`` and ``vocab.json`` (``["<pad>", "<unk>", words...]``)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_NAME).write_text(json.dumps(self.config, indent=2) + "\n")
        (directory / VOCAB_NAME).write_text(json.dumps([PAD_TOKEN, UNK_TOKEN, *self.vocabulary], indent=0) + "\n")
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
        return directory

    save = save_pretrained

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, device: str | torch.device | None = None, torch_dtype: torch.dtype | None = None
    ) -> "WordTextEncoder":
        """Load a directory written by :meth:`save_pretrained` (safetensors only).

        Every file is checked before the weights are read: a config or vocabulary that is not valid JSON or holds
        values of the wrong type raises ValueError naming the file, and weights with a missing, extra or wrongly
        shaped tensor raise :class:`~model.checkpoint_files.CheckpointWeightsError` naming the file and the keys.
        """
        directory = existing_directory(directory, "a tiny text encoder directory")
        config = _read_config(directory)
        config_path = directory / CONFIG_NAME
        if config.get("kind") != WORDS_KIND:
            raise ValueError(f"{config_path}: expected kind {WORDS_KIND!r}, got {config.get('kind')!r}")
        check_json_keys(config, config_path, "a tiny text encoder's config", optional=WORDS_CONFIG_TYPES)
        for name in (VOCAB_NAME, WEIGHTS_NAME):
            if not (directory / name).is_file():
                raise ValueError(f"{str(directory)!r} is not a tiny text encoder: expected {name} in it")
        tokens = read_json(directory / VOCAB_NAME, "the tiny text encoder's vocabulary")
        if not isinstance(tokens, list) or tokens[:2] != [PAD_TOKEN, UNK_TOKEN]:
            raise ValueError(
                f"{directory / VOCAB_NAME}: expected a JSON list starting with {[PAD_TOKEN, UNK_TOKEN]}, "
                f"got {str(tokens)[:80]}"
            )
        vocab_size = config.get("vocab_size", len(tokens))
        if vocab_size != len(tokens):
            raise ValueError(f"{directory}: config.json says vocab_size {vocab_size} but vocab.json has {len(tokens)} tokens")
        kwargs = {k: config[k] for k in ("dim", "num_layers", "num_heads", "max_tokens", "ffn_dim") if k in config}
        encoder = build_from_config(lambda: cls(vocabulary=tokens[2:], **kwargs), config_path, "a tiny text encoder")
        files = check_weights_file(directory, WEIGHTS_NAME, state_shapes(encoder),
                                   f"the tiny text encoder that {config_path} and {VOCAB_NAME} build")
        state = {key: tensor for path in files for key, tensor in load_file(str(path)).items()}
        encoder.load_state_dict(state, strict=True)
        return encoder.to(device=device, dtype=torch_dtype).eval()


# ---------------------------------------------------------------------------------------------------- umT5


def clean_prompt(prompt: str) -> str:
    """Wan's prompt cleaning without ftfy: unescape HTML entities (twice, as Wan does) and collapse whitespace."""
    return re.sub(r"\s+", " ", html.unescape(html.unescape(prompt))).strip()


def _has_tokenizer(directory: Path) -> bool:
    return any((directory / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json", "spiece.model"))


class UMT5TextEncoder(WrapsModel):
    """Wan2.1's text encoder: umT5's encoder (``transformers.UMT5EncoderModel``) and its tokenizer.

    As Wan's pipeline: prompts are padded (and truncated) to ``max_tokens`` (512) tokens with the tokenizer's special
    tokens, encoded with the attention mask, and the embeddings past each prompt's length are set to zero. The model
    is frozen: ``encode`` runs without autograd.
    """

    def __init__(self, model, tokenizer, max_tokens: int = UMT5_MAX_TOKENS) -> None:
        if max_tokens <= 0:
            raise ValueError(f"max_tokens must be > 0, got {max_tokens}")
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.max_tokens = int(max_tokens)
        self.dim = int(model.config.d_model)

    @classmethod
    def from_pretrained(
        cls,
        directory: str | Path,
        tokenizer_directory: str | Path | None = None,
        torch_dtype: torch.dtype | None = None,
        device: str | torch.device | None = None,
        max_tokens: int = UMT5_MAX_TOKENS,
    ) -> "UMT5TextEncoder":
        """Load the model from ``directory`` (a transformers ``config.json`` of ``model_type`` "umt5" + weights).

        The tokenizer is read from ``tokenizer_directory``, else from ``directory`` when it holds tokenizer files,
        else from the sibling ``../tokenizer`` (diffusers' Wan pipeline layout: ``text_encoder/`` + ``tokenizer/``).
        ``torch_dtype`` (default float32): ``torch.bfloat16`` halves the memory of the 4096-dim XXL (~11 GB).
        """
        transformers = import_transformers("the umT5 text encoder")
        directory = existing_directory(directory, "a umT5 encoder directory (transformers config.json + weights)")
        if tokenizer_directory is None:
            tokenizer_directory = directory if _has_tokenizer(directory) else directory.parent / "tokenizer"
        tokenizer_directory = Path(tokenizer_directory)
        if not tokenizer_directory.is_dir() or not _has_tokenizer(tokenizer_directory):
            raise ValueError(
                f"no tokenizer for the umT5 encoder in {str(directory)!r}: expected tokenizer.json, "
                f"tokenizer_config.json or spiece.model in it or in {str(tokenizer_directory)!r}"
            )
        model = load_local_model(transformers.UMT5EncoderModel, directory, torch_dtype, device)
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(tokenizer_directory), local_files_only=True)
        return cls(model, tokenizer, max_tokens=max_tokens)

    def tokenize(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ids, mask)`` ``[B, max_tokens]``; warns naming the prompts cut at ``max_tokens`` tokens."""
        prompts = [clean_prompt(p) for p in _check_prompts(prompts)]
        lengths = [len(ids) for ids in self.tokenizer(prompts, add_special_tokens=True)["input_ids"]]
        truncated = [p for p, n in zip(prompts, lengths) if n > self.max_tokens]
        if truncated:
            warnings.warn(
                f"prompts longer than the umT5 encoder's {self.max_tokens} tokens are truncated: {truncated}",
                UserWarning,
                stacklevel=3,
            )
        batch = self.tokenizer(
            prompts,
            padding="max_length",
            max_length=self.max_tokens,
            truncation=True,
            add_special_tokens=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        return batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device)

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> torch.Tensor:
        """Prompts -> ``[B, max_tokens, d_model]`` in the model's dtype, zero past each prompt's tokens."""
        ids, mask = self.tokenize(prompts)
        hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        return hidden.masked_fill(~mask.bool().unsqueeze(-1), 0.0)

    def save(self, directory: str | Path) -> Path:
        """Write model and tokenizer into one directory (which :func:`load_text_encoder` reads back)."""
        return self.write_pretrained(directory, self.tokenizer)

    save_pretrained = save


# ---------------------------------------------------------------------------------------------------- loading


def load_text_encoder(
    directory_or_config: str | Path | Mapping[str, Any],
    torch_dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> TextEncoder:
    """The text encoder a directory holds, chosen by its ``config.json``.

    * ``{"kind": "words", ...}`` -> :class:`WordTextEncoder` (lv2's tiny encoder);
    * a transformers config with ``"model_type": "umt5"`` -> :class:`UMT5TextEncoder`.

    ``directory_or_config`` may also be the path of the ``config.json`` itself, or a config mapping of kind
    ``"words"`` (with an optional ``"vocabulary"`` list), which builds a fresh, untrained tiny encoder.
    """
    if isinstance(directory_or_config, Mapping):
        config = dict(directory_or_config)
        kind = config.pop("kind", None)
        if kind != WORDS_KIND:
            raise ValueError(
                f"a text encoder config mapping builds only a fresh tiny encoder: expected kind {WORDS_KIND!r}, "
                f"got {kind!r}; pretrained encoders (umT5) load from their directory"
            )
        config.pop("vocab_size", None)
        return WordTextEncoder(**config)
    path = Path(directory_or_config)
    directory = path.parent if path.name == CONFIG_NAME and path.is_file() else path
    directory = existing_directory(directory, "a text encoder directory with a config.json")
    config = _read_config(directory)
    if config.get("kind") == WORDS_KIND:
        return WordTextEncoder.from_pretrained(directory, device=device, torch_dtype=torch_dtype)
    if config.get("model_type") == "umt5":
        return UMT5TextEncoder.from_pretrained(directory, torch_dtype=torch_dtype, device=device)
    raise ValueError(
        f"{directory / CONFIG_NAME}: unknown text encoder; expected kind {WORDS_KIND!r} or a transformers config with "
        f"model_type 'umt5', got kind={config.get('kind')!r}, model_type={config.get('model_type')!r}"
    )


def _read_config(directory: Path) -> dict[str, Any]:
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise ValueError(f"expected {CONFIG_NAME} in {str(directory)!r}, found {sorted(p.name for p in directory.iterdir())}")
    return read_json_object(path, "a text encoder's config")


def _check_prompts(prompts: Sequence[str]) -> list[str]:
    if isinstance(prompts, str):
        raise ValueError(f"encode takes a list of prompts, got the single string {prompts!r}; wrap it in a list")
    prompts = list(prompts)
    if not prompts or not all(isinstance(p, str) for p in prompts):
        raise ValueError(f"expected a non-empty list of prompt strings, got {prompts!r}")
    return prompts


__all__ = [
    "TextEncoder",
    "WordTextEncoder",
    "UMT5TextEncoder",
    "build_vocabulary",
    "split_words",
    "clean_prompt",
    "load_text_encoder",
]
