"""What the ``transformers``-backed models share: the optional import, loading in a stated dtype from a local
directory, and the wrapped model's device and dtype.

The pretrained encoders and estimators (umT5 and CLIP in :mod:`model.text` and :mod:`model.image_encoder`, Depth
Anything in :mod:`model.depth`) load Hugging Face ``transformers`` models from local directories. ``transformers``
is an optional dependency (``pip install "lv2[full]"``): :func:`import_transformers` imports it only when such a
model is loaded and says which extra to install when it is missing. :func:`load_local_model` reads local paths
only (``local_files_only=True``): nothing downloads weights.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import torch

FULL_EXTRA_ADVICE = 'pip install "lv2[full]"'
# transformers renamed from_pretrained's ``torch_dtype`` argument to ``dtype`` in this version.
DTYPE_RENAMED_IN = "4.56"


def import_transformers(what: str) -> ModuleType:
    """The ``transformers`` module; ImportError naming ``what`` (e.g. "Depth Anything") and the extra to install."""
    try:
        import transformers
    except ImportError as error:
        raise ImportError(f"{what} needs the optional 'transformers' package: {FULL_EXTRA_ADVICE}") from error
    return transformers


def dtype_kwargs(transformers: ModuleType, torch_dtype: torch.dtype | None) -> dict[str, torch.dtype]:
    """The dtype keyword argument of ``from_pretrained``, under the name this transformers version takes.

    ``None`` means float32, stated explicitly: transformers 5 would otherwise load in the checkpoint's stored
    dtype (``"auto"``), making the dtype depend on how the weights were saved.
    """
    from packaging.version import Version

    dtype = torch.float32 if torch_dtype is None else torch_dtype
    key = "dtype" if Version(transformers.__version__) >= Version(DTYPE_RENAMED_IN) else "torch_dtype"
    return {key: dtype}


def load_local_model(
    model_class: type, directory: Path, torch_dtype: torch.dtype | None = None, device: str | torch.device | None = None
) -> torch.nn.Module:
    """``model_class.from_pretrained`` (a ``transformers`` model class) on the local ``directory`` only, in
    ``torch_dtype`` (None is float32, see :func:`dtype_kwargs`), moved to ``device`` when one is given."""
    import transformers  # already imported: model_class comes from it (through import_transformers)

    model = model_class.from_pretrained(str(directory), local_files_only=True, **dtype_kwargs(transformers, torch_dtype))
    return model if device is None else model.to(device)


def existing_directory(directory: str | Path, what: str) -> Path:
    """``directory`` as a Path; ValueError naming ``what`` was expected there when it is not a local directory
    (every encoder loader checks this, the tiny text encoder's too)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"expected {what} at {str(directory)!r}, but there is no such directory (only local paths load)")
    return directory


class WrapsModel:
    """Device and dtype of a wrapped ``self.model`` (a pretrained ``transformers`` model)."""

    model: torch.nn.Module

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def write_pretrained(self, directory: str | Path, companion=None) -> Path:
        """Write the model (safetensors) and its ``companion`` (tokenizer or image processor; none when None) into
        one directory, which the class's ``from_pretrained`` reads back."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(directory), safe_serialization=True)
        if companion is not None:
            companion.save_pretrained(str(directory))
        return directory
