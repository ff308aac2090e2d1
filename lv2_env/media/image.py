"""Still images in: the start frame of a world (``reset(options={"image": ...})``) and of ``lv2 generate``.

:func:`load_image` is the one loader both use: a path or an array in, uint8 RGB ``[H, W, 3]`` of the model's
size out. A picture that cannot be read (missing, a directory, not an image, truncated or corrupt) raises
``ValueError`` naming the path and the reason, never PIL's own exceptions; a picture of another size is resized
with a warning, since any photograph should be usable as a start frame.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["load_image", "read_image", "fit_image"]


def read_image(path: str | os.PathLike[str], name: str = "image") -> np.ndarray:
    """The picture at ``path`` as uint8 RGB ``[H, W, 3]`` (grey, palette and alpha images converted).

    ``name`` says what the picture is in a message (``"--first-frame"``, ``"options['image']"``). Every reason
    it cannot be read is a ``ValueError`` naming the path: no such file, a directory, not an image PIL can
    identify, or a file whose data ends early or is corrupt.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    where = f"{name} {str(path)!r}"
    if path.is_dir():
        raise ValueError(f"{where} is a directory; expected an image file")
    if not path.is_file():
        raise ValueError(f"{where}: no such file")
    try:
        with Image.open(path) as picture:
            picture.load()  # open() reads the header only; the pixels (and a truncation) come here
            return np.asarray(picture.convert("RGB"), dtype=np.uint8).copy()
    except UnidentifiedImageError:
        raise ValueError(f"{where} is not an image (no format PIL reads recognises its contents)") from None
    except Image.DecompressionBombError as err:
        raise ValueError(f"{where} is too large to read safely ({err})") from None
    except (OSError, SyntaxError, ValueError) as err:  # PIL reports truncated or corrupt data as any of these
        raise ValueError(f"{where} cannot be read: truncated or corrupt image data ({err})") from None


def fit_image(image: np.ndarray, height: int, width: int, what: str = "image", stacklevel: int = 2) -> np.ndarray:
    """``image`` (uint8 ``[H, W, 3]``) at ``height x width``: unchanged if it is that size, else resized (bicubic)
    with a warning that names it (``what``) and says both sizes. ``stacklevel`` as :func:`warnings.warn`'s,
    counted from the caller."""
    from PIL import Image

    if image.shape[:2] == (height, width):
        return image
    warnings.warn(f"{what} is {image.shape[1]}x{image.shape[0]}; resized to the model's {width}x{height}",
                  stacklevel=stacklevel + 1)
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BICUBIC), dtype=np.uint8).copy()


def load_image(image: Any, height: int, width: int, name: str = "image", stacklevel: int = 2) -> np.ndarray:
    """A start frame from a path (:func:`read_image`) or a uint8 ``[H, W, 3]`` array, as uint8 ``[height, width,
    3]`` (:func:`fit_image`: another size is resized with a warning). Anything else raises ``ValueError``."""
    if isinstance(image, (str, os.PathLike)):
        array, what = read_image(image, name), f"{name} {str(image)!r}"
    else:
        array, what = np.asarray(image), name
        if array.ndim != 3 or array.shape[-1] != 3 or array.dtype != np.uint8:
            raise ValueError(f"{name} must be a path or a uint8 [H, W, 3] array, got {array.dtype} {array.shape}")
    return fit_image(array, height, width, what, stacklevel=stacklevel + 1)
