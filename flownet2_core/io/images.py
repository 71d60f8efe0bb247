"""Reading and writing images as ``(H, W, 3)`` uint8 RGB arrays.

Convention: images in memory are ``(H, W, 3)`` uint8 in **R, G, B** order. OpenCV works in
B, G, R order; the conversion happens here, at the IO boundary, and nowhere else.

Decoding (:func:`read_image`):

- grey images become 3 identical channels; an alpha channel is dropped;
- 16-bit images are converted to 8 bits by ``round(x / 257)`` (65535 -> 255), other
  depths (float) are refused with ValueError;
- EXIF orientation tags are ignored: the stored pixel grid is returned, because flow ground
  truth is defined on that grid (cv2.imread would rotate JPEGs that carry the tag).

Files are read and written through Python (``cv2.imdecode`` / ``cv2.imencode``), so missing
files raise FileNotFoundError and undecodable ones ValueError, both naming the path, instead
of ``cv2.imread``'s silent ``None``; writes are atomic (temp file + rename).
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from ._files import PathLike, atomic_write_bytes, read_bytes

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".ppm", ".bmp")
"""Extensions :func:`write_image` accepts (lower-case; matching is case-insensitive)."""

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DECODE_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH | cv2.IMREAD_IGNORE_ORIENTATION


def decode_image(data: bytes | np.ndarray, name: str = "<bytes>") -> np.ndarray:
    """Decode an encoded image (PNG, JPEG, PPM, ...) to ``(H, W, 3)`` uint8 RGB.

    ``name`` is only used in error messages.
    """
    buf = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    raw = data if isinstance(data, bytes) else None  # searched in place; other buffers copied once
    if buf[:8].tobytes() == _PNG_SIGNATURE and (raw or buf.tobytes()).rfind(b"IEND") < 0:
        # Said here, before libpng prints "PNG input buffer is incomplete" on stderr itself.
        raise ValueError(f"{name}: truncated PNG (no IEND chunk: the file ends early)")
    img = cv2.imdecode(buf, _DECODE_FLAGS) if buf.size else None
    if img is None:
        raise ValueError(f"{name}: cannot be decoded as an image (empty, corrupt or unsupported format)")
    if img.dtype == np.uint16:
        img = ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ValueError(f"{name}: {img.dtype} image; only 8- and 16-bit images are supported")
    if img.ndim == 2:  # IMREAD_COLOR already expands grey; kept for safety
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    else:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img


def read_image(path: PathLike) -> np.ndarray:
    """Read an image file as ``(H, W, 3)`` uint8 RGB.

    Raises:
        FileNotFoundError, IsADirectoryError: the path is missing or a directory.
        ValueError: the file cannot be decoded as an image, or has an unsupported depth.

    Example:
        >>> img = read_image("frame_0001.png")  # doctest: +SKIP
        >>> img.shape, img.dtype  # doctest: +SKIP
        ((436, 1024, 3), dtype('uint8'))
    """
    return decode_image(read_bytes(path), os.fspath(path))


def encode_image(img: np.ndarray, ext: str, *, jpeg_quality: int = 95) -> bytes:
    """Encode an ``(H, W, 3)`` uint8 RGB (or ``(H, W)`` grey) image for extension ``ext``."""
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ValueError(f"image must have shape (H, W, 3) RGB or (H, W) grey, got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"image must not be empty, got shape {arr.shape}")
    if arr.ndim == 3:
        arr = arr[:, :, ::-1]  # RGB -> BGR for OpenCV
    ext = ext.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise ValueError(f"unsupported image extension {ext!r}; use one of {', '.join(IMAGE_EXTENSIONS)}")
    params: list[int] = []
    if ext in (".jpg", ".jpeg"):
        if not 0 <= int(jpeg_quality) <= 100:
            raise ValueError(f"jpeg_quality must be in 0..100, got {jpeg_quality}")
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(arr), params)
    if not ok:  # pragma: no cover - OpenCV encodes uint8 images in these formats
        raise ValueError(f"OpenCV failed to encode a {arr.shape} image as {ext}")
    return buf.tobytes()


def write_image(path: PathLike, img: np.ndarray, *, jpeg_quality: int = 95) -> None:
    """Write an RGB image, atomically; the format follows the extension.

    Args:
        path: destination ending in ``.png``, ``.jpg``/``.jpeg``, ``.ppm`` or ``.bmp``
            (case-insensitive); its directory must exist.
        img: ``(H, W, 3)`` uint8 **RGB**, or ``(H, W)`` / ``(H, W, 1)`` uint8 grey.
        jpeg_quality: 0..100, used for JPEG only.

    Raises:
        ValueError: unsupported extension, dtype or shape (the message names the path).
    """
    p = os.fspath(path)
    try:
        data = encode_image(img, os.path.splitext(p)[1], jpeg_quality=jpeg_quality)
    except ValueError as e:
        raise ValueError(f"{p}: {e}") from None
    atomic_write_bytes(p, data)
