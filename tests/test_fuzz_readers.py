"""Property-based tests of every reader and parser a user's file reaches: whatever the bytes,
the only outcome besides a result is the documented one-line error (``ValueError``), never
another exception, a hang or an allocation the file's size does not justify.

Examples per reader: ``FUZZ_EXAMPLES`` (default 40 in ``make test``; ``make proof`` runs 2000).
Each reader gets arbitrary bytes and, to reach past the first check, inputs that start right
(a valid magic number or header with random sizes, plausible text with random fields).
"""

from __future__ import annotations

import os
import struct
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
fuzz = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

#: An allocation bound far above any legitimate use of these small files: a reader that
#: trusts a header's sizes would ask for gigabytes.
MAX_ALLOC = 256 << 20


def _write(data: bytes | str, suffix: str) -> str:
    fd, path = tempfile.mkstemp(suffix=suffix)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    return path


def expect_value_error_only(read, data, suffix: str):
    """Run ``read(path)`` on a file holding ``data``: a result or ValueError, nothing else, and
    no array in the result larger than MAX_ALLOC."""
    path = _write(data, suffix)
    try:
        out = read(path)
    except ValueError as exc:
        assert str(exc), "an error without a message"
        return None
    finally:
        os.unlink(path)
    for v in (out if isinstance(out, tuple) else (out,)):
        if isinstance(v, np.ndarray):
            assert v.nbytes <= MAX_ALLOC
    return out


# ------------------------------------------------------------------ flow files
def _flo_header(w: int, h: int) -> bytes:
    return b"PIEH" + struct.pack("<ii", w, h)


@fuzz
@given(st.one_of(st.binary(max_size=200),
                 st.builds(lambda w, h, body: _flo_header(w, h) + body,
                           st.integers(-2**31, 2**31 - 1), st.integers(-2**31, 2**31 - 1), st.binary(max_size=400))))
def test_flo(data):
    from flownet2_core.io import read_flo

    expect_value_error_only(read_flo, data, ".flo")


@fuzz
@given(st.one_of(st.binary(max_size=200),
                 st.builds(lambda tag, w, h, scale, body: f"{tag}\n{w} {h}\n{scale}\n".encode() + body,
                           st.sampled_from(["PF", "Pf", "pf", "P6"]), st.integers(-10, 10**9), st.integers(-10, 10**9),
                           st.sampled_from(["-1.0", "1", "nan", "0", "x", "-1e40"]), st.binary(max_size=300))))
def test_pfm(data):
    from flownet2_core.io import read_pfm

    expect_value_error_only(read_pfm, data, ".pfm")


def _png(arr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", arr)
    assert ok
    return buf.tobytes()


@fuzz
@given(st.one_of(st.binary(max_size=300),
                 st.builds(lambda shape, dtype, seed: _png(np.random.default_rng(seed).integers(
                     0, 255 if dtype == np.uint8 else 65535, size=shape, endpoint=True).astype(dtype)),
                     st.sampled_from([(4, 5), (4, 5, 3), (3, 7, 4), (1, 1, 3), (6, 2, 3)]),
                     st.sampled_from([np.uint8, np.uint16]), st.integers(0, 2**32 - 1)),
                 st.builds(lambda seed, cut: _png(np.random.default_rng(seed).integers(0, 65535, (8, 8, 3))
                                                  .astype(np.uint16))[:cut],
                           st.integers(0, 2**32 - 1), st.integers(0, 200))))
def test_kitti_png(data):
    from flownet2_core.io import read_kitti_flow

    out = expect_value_error_only(read_kitti_flow, data, ".png")
    if out is not None:
        flow, valid = out
        assert flow.shape[:2] == valid.shape and flow.shape[2] == 2 and np.isfinite(flow).all()


# ------------------------------------------------------------------ UCF101 lists
_line = st.one_of(
    st.text(max_size=40),
    st.builds(lambda c, g, k, lab: f"{c}/v_{c}_g{g:02d}_c{k:02d}.avi {lab}", st.sampled_from(["Walk", "Run", "walk"]),
              st.integers(0, 30), st.integers(0, 9), st.one_of(st.integers(-3, 5).map(str), st.text(max_size=3))))
_list_text = st.lists(_line, max_size=8).map(lambda ls: "\r\n".join(ls))


@fuzz
@given(classes=st.one_of(st.text(max_size=60), st.just("1 Walk\r\n2 Run\r\n")), lst=_list_text,
       subset=st.sampled_from(["train", "test"]))
def test_ucf101_split_files(classes, lst, subset):
    from flowapps.stacks.ucf101 import read_split

    with tempfile.TemporaryDirectory() as d:
        Path(d, "classInd.txt").write_bytes(classes.encode("utf-8", "surrogatepass"))
        Path(d, f"{subset}list01.txt").write_bytes(lst.encode("utf-8", "surrogatepass"))
        try:
            videos = read_split(d, 1, subset)
        except ValueError:
            return
        assert len({v.rel.lower() for v in videos}) == len(videos)   # never a duplicate


@fuzz
@given(_list_text)
def test_video_list(text):
    from flowapps.stacks.ucf101 import read_video_list

    out = expect_value_error_only(read_video_list, text, ".txt")
    if out is not None:
        assert all(v.label >= -1 for v in out)


@fuzz
@given(st.lists(st.one_of(st.text(max_size=30),
                          st.builds(lambda d, n, lab: f"{d} {n} {lab}", st.sampled_from(["A/v1", "A/v2", "B/v1"]),
                                    st.integers(-2, 40), st.integers(-2, 5))), max_size=6).map("\n".join))
def test_annotation_list(text):
    from flowapps.action.data import read_annotations

    out = expect_value_error_only(read_annotations, text, ".txt")
    if out is not None:
        assert all(r.label >= 0 and r.total_frames >= 0 for r in out)


# ------------------------------------------------------------------ FBMS-59 files
def _def_text(n, codes, total, frames):
    lines = ["Ground truth definition file; do not change!", "", "Total number of regions:", str(n)]
    for k, c in enumerate(codes):
        lines += [f"Scale of region {k}:", str(c)]
    lines += ["", "Confusion penality matrix"] + [" ".join("1" for _ in range(max(n, 0)))] * max(n, 0)
    lines += ["", "Total number of frames in this shot:", str(total), "Total number of labeled frames for this shot:",
              str(len(frames))]
    for f in frames:
        lines += ["Frame number:", str(f), "File name:", f"x_{f}.pgm", "Input file name:", f"x_{f}.jpg"]
    return "\n".join(lines) + "\n"


@fuzz
@given(st.one_of(st.text(max_size=300),
                 st.builds(_def_text, st.integers(-2, 4), st.lists(st.integers(-5, 300), max_size=4),
                           st.integers(-5, 40), st.lists(st.integers(-5, 50), max_size=4))))
def test_fbms_definition(text):
    from flowapps.segmentation.fbms import read_definition

    d = expect_value_error_only(read_definition, text, "Def.dat")
    if d is not None:
        assert all(0 <= f < d.total_frames for f in d.labelled_frames)


def _tracks_text(length, m, tracks):
    out = [str(length), str(m)]
    for lab, pts in tracks:
        out.append(f"{lab} {len(pts)}")
        out += [f"{x} {y} {f}" for x, y, f in pts]
    return "\n".join(out) + "\n"


_pt = st.tuples(st.one_of(st.floats(-1e3, 1e3), st.just(float("nan"))), st.floats(-1e3, 1e3), st.integers(-2, 30))


@fuzz
@given(st.one_of(st.binary(max_size=200),
                 st.builds(_tracks_text, st.integers(-3, 60), st.integers(-2, 4),
                           st.lists(st.tuples(st.integers(-2, 5), st.lists(_pt, max_size=4)), max_size=4))))
def test_fbms_tracks(data):
    from flowapps.segmentation.fbms import read_tracks

    ts = expect_value_error_only(read_tracks, data, ".dat")
    if ts is not None:
        assert len(ts.offsets) == len(ts.labels) + 1 and (ts.labels >= 0).all()


@fuzz
@given(st.text(max_size=200))
def test_fbms_shot_list(text):
    from flowapps.segmentation.fbms import read_shot_list

    expect_value_error_only(read_shot_list, text, ".txt")


# ------------------------------------------------------------------ weights
@fuzz
@given(st.one_of(st.binary(max_size=300),
                 st.builds(lambda body: b"PK\x03\x04" + body, st.binary(max_size=300)),
                 st.builds(lambda body: b"\x80\x02" + body, st.binary(max_size=300))))
def test_torch_checkpoint(data):
    from flownet2_core.models.checkpoint import read_checkpoint

    expect_value_error_only(read_checkpoint, data, ".pth")


@fuzz
@given(st.one_of(st.binary(max_size=300),
                 st.builds(lambda body: b"\x89HDF\r\n\x1a\n" + body, st.binary(max_size=300)),
                 # protobuf-looking: field 100 (layer, wire type 2) with a random length and body
                 st.builds(lambda n, body: b"\xa2\x06" + bytes([n]) + body, st.integers(0, 127),
                           st.binary(max_size=200))))
def test_caffe_weights(data):
    from flownet2_core.models.caffe import read_caffe_weights

    expect_value_error_only(read_caffe_weights, data, ".caffemodel")

