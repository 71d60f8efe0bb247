"""File formats: optical flow (.flo, KITTI .png, .pfm), images and videos.

Conventions shared by every function here:

- flow is ``(H, W, 2)`` float32 in pixels; channel 0 = u (x, right), 1 = v (y, down);
- validity is an ``(H, W)`` bool mask, True where the flow is known;
- images and video frames are ``(H, W, 3)`` uint8 **RGB** (OpenCV's BGR is converted at
  this boundary and nowhere else);
- every path argument accepts ``str`` or ``os.PathLike``; readers raise FileNotFoundError /
  IsADirectoryError / ValueError with the path in the message; writers are atomic
  (temporary file in the same directory, then ``os.replace``) and need the directory to exist.

The atomic-write helpers behind the writers are the project's one way to write a file
(:func:`atomic_output`, :func:`atomic_write_bytes`, :func:`atomic_write_text`), and
:func:`file_sha256` its one way to hash one. :func:`check_outputs` is the one check, made by
every command that writes, that no output would overwrite an input.

:func:`read_flow` / :func:`write_flow` pick the format from the extension:

==========  ===========================  ===============================================
extension   format                       validity
==========  ===========================  ===============================================
``.flo``    Middlebury                   unknown = NaN or ``|.| > 1e9``; written as 1e10
``.png``    KITTI 16-bit                 the B channel
``.pfm``    FlyingThings3D / ChairsSDHom unknown = non-finite; written as NaN
==========  ===========================  ===============================================
"""

from __future__ import annotations

import os

import numpy as np

from ._files import (MAX_DIM, PathLike, atomic_output, atomic_write_bytes, atomic_write_text, check_outputs, file_sha256,
                     remove_temporaries)
from .flo import (
    FLO_MAGIC,
    UNKNOWN_FLOW,
    UNKNOWN_FLOW_THRESH,
    flow_valid_mask,
    read_flo,
    read_flo_with_valid,
    write_flo,
)
from .images import IMAGE_EXTENSIONS, decode_image, encode_image, read_image, write_image
from .kitti import encode_kitti_flow, read_kitti_flow, write_kitti_flow
from .pfm import read_pfm, read_pfm_flow, write_pfm, write_pfm_flow
from .video import TruncatedVideoError, frame_name, iter_video_frames, read_video, video_info, write_video

FLOW_EXTENSIONS = (".flo", ".png", ".pfm")

__all__ = [
    "FLOW_EXTENSIONS",
    "FLO_MAGIC",
    "IMAGE_EXTENSIONS",
    "MAX_DIM",
    "UNKNOWN_FLOW",
    "UNKNOWN_FLOW_THRESH",
    "PathLike",
    "atomic_output",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_flow_extension",
    "check_outputs",
    "decode_image",
    "encode_image",
    "encode_kitti_flow",
    "file_sha256",
    "frame_name",
    "remove_temporaries",
    "flow_valid_mask",
    "iter_video_frames",
    "TruncatedVideoError",
    "read_flo",
    "read_flo_with_valid",
    "read_flow",
    "read_image",
    "read_kitti_flow",
    "read_pfm",
    "read_pfm_flow",
    "read_video",
    "video_info",
    "write_flo",
    "write_flow",
    "write_image",
    "write_kitti_flow",
    "write_pfm",
    "write_pfm_flow",
    "write_video",
]


def check_flow_extension(path: PathLike) -> str:
    """The lower-case extension of a flow file path (``.flo``, ``.png`` = KITTI 16-bit,
    ``.pfm``); ``ValueError`` naming the path and the accepted extensions otherwise. Call it
    before computing a flow that :func:`write_flow` will write."""
    p = os.fspath(path)
    ext = os.path.splitext(p)[1].lower()
    if ext not in FLOW_EXTENSIONS:
        raise ValueError(
            f"{p}: unknown flow file extension {ext!r}; expected .flo, .png (KITTI 16-bit) or .pfm"
        )
    return ext


def read_flow(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a flow file of any supported format, chosen by extension (case-insensitive).

    Returns:
        ``(flow, valid)``: ``(H, W, 2)`` float32 flow with invalid pixels set to 0, and the
        ``(H, W)`` bool validity mask (see the module docstring for each format's rule).

    Raises:
        ValueError: unknown extension (naming the path), or a malformed file.
    """
    ext = check_flow_extension(path)
    if ext == ".flo":
        return read_flo_with_valid(path)
    if ext == ".png":
        return read_kitti_flow(path)
    flow = read_pfm_flow(path)
    valid = np.isfinite(flow).all(axis=-1)
    flow[~valid] = 0.0
    return flow, valid


def write_flow(path: PathLike, flow: np.ndarray, valid: np.ndarray | None = None) -> None:
    """Write ``(H, W, 2)`` flow in the format given by the extension, atomically.

    Invalid pixels (``valid`` False) are written as each format marks them: 1e10 in
    ``.flo``, B = 0 in KITTI ``.png``, NaN in ``.pfm``, so :func:`read_flow` gives the same
    mask back. KITTI quantises to 1/64 px within [-512, 512).
    """
    ext = check_flow_extension(path)
    if ext == ".flo":
        write_flo(path, flow, valid)
    elif ext == ".png":
        write_kitti_flow(path, flow, valid)
    else:
        if valid is not None:
            flow = np.array(flow, dtype=np.float32)  # copy: the caller's array is untouched
            mask = np.asarray(valid, dtype=bool)
            if flow.ndim != 3 or mask.shape != flow.shape[:2]:
                raise ValueError(f"valid must have shape (H, W) matching flow {flow.shape}, got {mask.shape}")
            flow[~mask] = np.nan
        write_pfm_flow(path, flow)
