"""A minimal reader and writer for Caffe's ``.caffemodel`` protobuf wire format.

Only what weight conversion needs, no compiled ``.proto`` and no Caffe:
layer names, types and their blobs (shape + float data). Field numbers of
``caffe.proto`` used here:

* ``NetParameter``: ``layer = 100`` (``LayerParameter``), legacy ``layers = 2``
  (``V1LayerParameter``); everything else is skipped.
* ``LayerParameter``: ``name = 1``, ``type = 2`` (string), ``blobs = 7``.
* ``V1LayerParameter``: ``name = 4``, ``type = 5`` (enum: 4 CONVOLUTION,
  39 DECONVOLUTION), ``blobs = 6``.
* ``BlobProto``: ``num, channels, height, width = 1..4`` (legacy 4-D shape),
  ``data = 5`` (float, packed or not), ``diff = 6`` (skipped), ``shape = 7``
  (``BlobShape``: ``dim = 1``, int64, packed or not), ``double_data = 8``.

The file is memory-mapped; float payloads are located by offset and copied
out with numpy, so a 650 MB FlowNet2 file is parsed with a few hundred
Python-level field reads. Any inconsistency (a length running past its
message, a bad wire type, a varint longer than 10 bytes, a blob whose data
does not fill its shape) raises :class:`ProtoError`.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

__all__ = ["CaffeLayer", "ProtoError", "encode_net", "read_net"]

V1_TYPES = {4: "Convolution", 39: "Deconvolution", 14: "InnerProduct"}
V1_TYPE_IDS = {"Convolution": 4, "Deconvolution": 39, "InnerProduct": 14}

_VARINT, _I64, _LEN, _SGROUP, _EGROUP, _I32 = 0, 1, 2, 3, 4, 5


class ProtoError(ValueError):
    """The bytes are not a well-formed Caffe NetParameter."""


@dataclass
class CaffeLayer:
    """One layer of a Caffe net: its name, type and parameter blobs (float32 arrays)."""

    name: str
    type: str
    blobs: list[np.ndarray] = field(default_factory=list)


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise ProtoError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtoError("varint longer than 10 bytes")


def _fields(buf, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """Yield (field number, wire type, value or payload start, payload end) of one message."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        num, wire = key >> 3, key & 7
        if num == 0:
            raise ProtoError(f"field number 0 at byte {pos}")
        if wire == _VARINT:
            value, pos = _varint(buf, pos, end)
            yield num, wire, value, pos
        elif wire == _I64:
            if pos + 8 > end:
                raise ProtoError("truncated 64-bit field")
            yield num, wire, pos, pos + 8
            pos += 8
        elif wire == _LEN:
            length, pos = _varint(buf, pos, end)
            if pos + length > end:
                raise ProtoError(f"field {num} runs {pos + length - end} bytes past its message "
                                 "(truncated file?)")
            yield num, wire, pos, pos + length
            pos += length
        elif wire == _I32:
            if pos + 4 > end:
                raise ProtoError("truncated 32-bit field")
            yield num, wire, pos, pos + 4
            pos += 4
        else:
            raise ProtoError(f"unsupported wire type {wire} (field {num})")


def _packed_varints(buf, start: int, end: int) -> list[int]:
    out, pos = [], start
    while pos < end:
        v, pos = _varint(buf, pos, end)
        out.append(v)
    return out


def _text(buf, start: int, end: int) -> str:
    try:
        return bytes(buf[start:end]).decode("utf-8")
    except UnicodeDecodeError:
        raise ProtoError("a layer name or type is not UTF-8 text") from None


def _blob(buf, start: int, end: int) -> np.ndarray:
    legacy = [None, None, None, None]
    shape: list[int] | None = None
    chunks: list[np.ndarray] = []
    for num, wire, a, b in _fields(buf, start, end):
        if 1 <= num <= 4 and wire == _VARINT:
            legacy[num - 1] = a
        elif num == 5:  # float data
            if wire == _LEN:
                if (b - a) % 4:
                    raise ProtoError("packed float data is not a multiple of 4 bytes")
                chunks.append(np.frombuffer(buf, dtype="<f4", count=(b - a) // 4, offset=a))
            elif wire == _I32:
                chunks.append(np.frombuffer(buf, dtype="<f4", count=1, offset=a))
            else:
                raise ProtoError("blob data with a wrong wire type")
        elif num == 8:  # double data
            if wire == _LEN:
                if (b - a) % 8:
                    raise ProtoError("packed double data is not a multiple of 8 bytes")
                chunks.append(np.frombuffer(buf, dtype="<f8", count=(b - a) // 8, offset=a))
            elif wire == _I64:
                chunks.append(np.frombuffer(buf, dtype="<f8", count=1, offset=a))
            else:
                raise ProtoError("blob double_data with a wrong wire type")
        elif num == 7 and wire == _LEN:
            shape = []
            for n2, w2, a2, b2 in _fields(buf, a, b):
                if n2 == 1 and w2 == _LEN:
                    shape.extend(_packed_varints(buf, a2, b2))
                elif n2 == 1 and w2 == _VARINT:
                    shape.append(a2)
    if shape is None:
        if all(v is None for v in legacy):
            shape = []
        else:
            shape = [1 if v is None else v for v in legacy]
    data = (np.concatenate(chunks) if len(chunks) > 1 else chunks[0] if chunks
            else np.zeros(0, np.float32)).astype(np.float32)  # astype copies out of the map
    count = int(np.prod(shape)) if shape else data.size
    if data.size != count:
        raise ProtoError(f"blob of shape {tuple(shape)} holds {data.size} values instead of {count}")
    return data.reshape(shape) if shape else data


def _layer(buf, start: int, end: int, v1: bool) -> CaffeLayer:
    name_f, type_f, blobs_f = (4, 5, 6) if v1 else (1, 2, 7)
    name, ltype, blobs = "", "", []
    for num, wire, a, b in _fields(buf, start, end):
        if num == name_f and wire == _LEN:
            name = _text(buf, a, b)
        elif num == type_f:
            if v1 and wire == _VARINT:
                ltype = V1_TYPES.get(a, f"V1:{a}")
            elif not v1 and wire == _LEN:
                ltype = _text(buf, a, b)
        elif num == blobs_f and wire == _LEN:
            blobs.append(_blob(buf, a, b))
    return CaffeLayer(name, ltype, blobs)


def _parse(buf, size: int) -> list[CaffeLayer]:
    layers = []
    for num, wire, a, b in _fields(buf, 0, size):
        if num == 100 and wire == _LEN:
            layers.append(_layer(buf, a, b, v1=False))
        elif num == 2 and wire == _LEN:
            layers.append(_layer(buf, a, b, v1=True))
    return layers


def read_net(path: str | os.PathLike) -> list[CaffeLayer]:
    """All layers of a binary ``.caffemodel`` (``NetParameter``), in file order.

    Raises :class:`ProtoError` (a ``ValueError``) for malformed or truncated bytes.
    """
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            raise ProtoError("the file is empty")
        error = None
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            try:
                layers = _parse(mm, size)
            except ProtoError as exc:
                error = str(exc)
            except (ValueError, IndexError, OverflowError, MemoryError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            # Leaving the except blocks dropped the traceback and with it every array
            # still viewing the map, so the map can close.
    if error is not None:
        raise ProtoError(error)
    return layers


# --- writing (used by tests and by anyone producing Caffe files from our models) ---

def _enc_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(num: int, wire: int) -> bytes:
    return _enc_varint((num << 3) | wire)


def _len_field(num: int, payload: bytes) -> bytes:
    return _key(num, _LEN) + _enc_varint(len(payload)) + payload


def _enc_blob(arr: np.ndarray, legacy: bool, packed: bool) -> bytes:
    arr = np.ascontiguousarray(arr, dtype="<f4")
    out = bytearray()
    if legacy:
        dims = list(arr.shape)
        dims = [1] * (4 - len(dims)) + dims  # Caffe's legacy biases are (1, 1, 1, N)
        for i, d in enumerate(dims):
            out += _key(i + 1, _VARINT) + _enc_varint(int(d))
    if packed:
        out += _len_field(5, arr.tobytes())
    else:
        for v in arr.reshape(-1):
            out += _key(5, _I32) + struct.pack("<f", float(v))
    if not legacy:
        dims = b"".join(_enc_varint(int(d)) for d in arr.shape)
        out += _len_field(7, _len_field(1, dims))
    return bytes(out)


def encode_net(layers: list[CaffeLayer], *, v1: bool = False, packed: bool = True,
               name: str = "") -> bytes:
    """Serialise layers as a ``NetParameter`` (``layer`` = 100, or legacy ``layers`` = 2 with
    ``v1=True``, which also writes legacy num/channels/height/width blob shapes)."""
    out = bytearray()
    if name:
        out += _len_field(1, name.encode())
    for layer in layers:
        body = bytearray()
        if v1:
            body += _len_field(4, layer.name.encode())
            body += _key(5, _VARINT) + _enc_varint(V1_TYPE_IDS.get(layer.type, 0))
            for blob in layer.blobs:
                body += _len_field(6, _enc_blob(blob, legacy=True, packed=packed))
            out += _len_field(2, bytes(body))
        else:
            body += _len_field(1, layer.name.encode())
            body += _len_field(2, layer.type.encode())
            for blob in layer.blobs:
                body += _len_field(7, _enc_blob(blob, legacy=False, packed=packed))
            out += _len_field(100, bytes(body))
    return bytes(out)
