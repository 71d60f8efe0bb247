"""Small file helpers: atomic writes and file hashes (public through
:mod:`flownet2_core.io`, used by every package that writes results), and, for the
readers and writers here, checks that a path names a readable regular file, size
limits and flow-array validation. The module is private to :mod:`flownet2_core.io`: its
public names are what the io modules share, and only some are exported by the package."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Iterator
from typing import Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]

MAX_DIM = 100_000
"""Largest width or height any reader accepts: larger headers are treated as corrupt."""


def check_input_file(path: PathLike) -> str:
    """Return ``os.fspath(path)`` after checking it names an existing non-directory.

    Raises FileNotFoundError / IsADirectoryError with the path in the message; this
    matters for readers backed by OpenCV, which fail silently on such paths.
    """
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "no such file", p) from None
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory, expected a file", p)
    return p


def read_bytes(path: PathLike) -> bytes:
    """Read a whole file; errors name the path."""
    p = check_input_file(path)
    with open(p, "rb") as f:
        return f.read()


def _check_output_path(path: PathLike) -> str:
    """Return ``os.fspath(path)`` after checking its directory exists and it is not a directory."""
    p = os.fspath(path)
    parent = os.path.dirname(p) or "."
    if not os.path.isdir(parent):
        raise FileNotFoundError(errno.ENOENT, "parent directory does not exist", p)
    if os.path.isdir(p):
        raise IsADirectoryError(errno.EISDIR, "is a directory, cannot write a file there", p)
    return p


def _real(path: PathLike) -> str:
    """``path`` with ``~``, ``..`` and symbolic links resolved (as far as it exists)."""
    return os.path.realpath(os.path.expanduser(os.fspath(path)))


def _same(a: str, b: str) -> bool:
    """True when resolved paths ``a`` and ``b`` name one file (hard links too)."""
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _inside(child: str, folder: str) -> bool:
    """True when resolved path ``child`` lies under resolved folder ``folder`` (at any depth)."""
    return os.path.commonpath([child, folder]) == folder and child != folder


def check_outputs(inputs, files=(), folders=()) -> None:
    """Refuse outputs that would overwrite an input, before any work is done.

    ``inputs``: paths read by a command (files or folders; ``None`` entries are skipped).
    ``files``: output files it will write; ``folders``: output folders it will write into.
    Paths are compared after resolving ``~``, ``..`` and symbolic links (and hard links
    when both exist). Refused, with one ``ValueError`` line naming both paths:

    * an output file that is an input (file or folder), or that is another output file;
    * an output folder that is an input folder or input file, or that contains an input
      (at any depth): a command writing there could replace or mix with what it reads.

    An output folder *inside* an input folder is allowed (``flow --frames DIR -o DIR/flow``).
    """
    ins = [(os.fspath(p), _real(p)) for p in inputs if p is not None]
    outs = [(os.fspath(p), _real(p)) for p in files if p is not None]
    for i, (shown, real) in enumerate(outs):
        for shown_in, real_in in ins:
            if _same(real, real_in):
                raise ValueError(f"output {shown} is the input {shown_in}; refusing to overwrite an input")
        for shown_other, real_other in outs[:i]:
            if _same(real, real_other):
                raise ValueError(f"outputs {shown_other} and {shown} are the same file")
    for p in folders:
        if p is None:
            continue
        shown, real = os.fspath(p), _real(p)
        for shown_in, real_in in ins:
            if _same(real, real_in):
                raise ValueError(f"output folder {shown} is the input {shown_in}; "
                                 "refusing to write into an input folder")
            if _inside(real_in, real):
                raise ValueError(f"output folder {shown} contains the input {shown_in}; "
                                 "choose an output folder outside the inputs")


def _temp_name(path: str, suffix: str = ".tmp") -> str:
    """A fresh hidden name in the same directory as ``path``: ``.<name>.<random><suffix>``."""
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.{secrets.token_hex(6)}{suffix}")


@contextlib.contextmanager
def atomic_output(path: PathLike, suffix: str = ".tmp") -> Iterator[str]:
    """Yield a fresh temporary file name next to ``path``; on success rename it onto ``path``.

    The one way this project writes a file that other processes or a re-run may read:
    whatever the ``with`` block writes to the yielded name appears under ``path`` all at
    once (``os.replace``), or not at all. The temporary name, ``.<name>.<random><suffix>``
    in the same directory, is unique per call, so concurrent writers of one path never
    share it (the last rename wins); ``suffix`` lets writers that pick the format from the
    extension (``cv2.VideoWriter``, ``numpy.savez``, ``savefig``) see the real one. On an
    exception the temporary file is removed and ``path`` is left untouched; a killed
    process may leave a hidden temporary behind, never a truncated ``<name>``. The
    directory must exist (FileNotFoundError naming ``path`` otherwise)::

        with atomic_output("model.pt") as tmp:
            torch.save(state, tmp)
    """
    final = _check_output_path(path)
    tmp = _temp_name(final, suffix)
    _IN_FLIGHT.add(tmp)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    finally:
        _IN_FLIGHT.discard(tmp)


# Temporary files of atomic_output blocks still open, so that a command stopped by Ctrl-C
# while a worker thread writes can remove them (remove_temporaries) before it exits.
_IN_FLIGHT: set[str] = set()


def remove_temporaries() -> None:
    """Remove the temporary files of :func:`atomic_output` blocks still in progress (their
    final files are untouched: they keep their last complete version, or do not exist)."""
    for tmp in list(_IN_FLIGHT):
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def atomic_write_bytes(path: PathLike, *chunks: bytes | np.ndarray) -> None:
    """Write ``chunks`` (bytes or contiguous arrays, in order) to ``path`` atomically
    (:func:`atomic_output`). The file gets mode 0o666 filtered by the umask, like ``open``."""
    with atomic_output(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (:func:`atomic_write_bytes`); line ends are
    written as given (no platform translation)."""
    atomic_write_bytes(path, text.encode(encoding))


def file_sha256(path: PathLike) -> str:
    """The SHA-256 of a file's bytes as 64 hex digits, read in blocks (``hashlib.file_digest``)."""
    with open(check_input_file(path), "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def check_dims(path: str, width: int, height: int, what: str) -> None:
    """Refuse absurd sizes before anything is allocated."""
    if not (0 < width <= MAX_DIM and 0 < height <= MAX_DIM):
        raise ValueError(
            f"{path}: implausible size width={width} height={height} in the {what} header "
            f"(each must be in 1..{MAX_DIM}); the file is corrupt or not a {what} file"
        )


def as_flow_array(flow: np.ndarray, what: str = "flow") -> np.ndarray:
    """Validate an ``(H, W, 2)`` real-valued array and return it as native float32."""
    arr = np.asarray(flow)
    if arr.ndim != 3 or arr.shape[2] != 2:
        raise ValueError(f"{what} must have shape (H, W, 2), got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{what} must not be empty, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{what} must be a real numeric array, got dtype {arr.dtype}")
    return arr.astype(np.float32, copy=False)
