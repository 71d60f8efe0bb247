"""Flow-stack extraction end to end: layout, lists, failures, resume, shards, torchrun, SIGKILL."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from flowapps.stacks.ucf101 import collect_videos
from flowapps.stacks.extract import ExtractConfig, extract, shard_videos
from flowapps.stacks.mini_ucf101 import write_mini_ucf101
from flowapps.stacks.rawframes import read_flow_stack
from flownet2_core.cli import main

METHOD = "dis"


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return write_mini_ucf101(tmp_path_factory.mktemp("ucf"), classes=("MoveLeft", "MoveRight", "Expand"),
                             num_groups=3, clips_per_group=2, num_frames=10, size=(64, 80))


@pytest.fixture(scope="module")
def videos(mini):
    return collect_videos(str(mini.video_root), str(mini.split_dir), None)


@pytest.fixture(scope="module")
def reference(mini, videos, tmp_path_factory):
    """One uninterrupted single-process run, the yardstick for the others."""
    out = tmp_path_factory.mktemp("ref")
    summary = extract(videos, mini.video_root, out, ExtractConfig(method=METHOD, short_side=None),
                      split_dir=mini.split_dir, progress=False)
    return out, summary


def tree(root: Path) -> dict[str, bytes]:
    """Every output file except run bookkeeping, by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".stacks" not in p.parts and p.name != "manifest.json"}


def stacks_cli(*args):
    return [sys.executable, "-m", "flownet2_core", "stacks", *map(str, args)]


def test_layout_counts_and_lists(mini, videos, reference):
    out, summary = reference
    assert summary.done == len(videos) - 1 and len(summary.failed) == 1
    d = out / "MoveRight" / "v_MoveRight_g01_c01"
    names = sorted(os.listdir(d))
    assert names[:10] == [f"flow_x_{i:05d}.jpg" for i in range(1, 10)] + ["flow_y_00001.jpg"]
    assert sum(n.startswith("img_") for n in names) == 10
    assert sum(n.startswith("flow_y_") for n in names) == 9
    # mmaction2 lists: "<frame_dir> <total_frames> <label>"; val = test split.
    rgb = (out / "ucf101_val_split_1_rawframes.txt").read_text().splitlines()
    flow = (out / "ucf101_val_split_1_rawframes_flow.txt").read_text().splitlines()
    assert "MoveRight/v_MoveRight_g01_c01 10 1" in rgb
    assert "MoveRight/v_MoveRight_g01_c01 9 1" in flow
    # The case-mismatched class is listed with its on-disk folder name.
    left = [ln for ln in rgb if ln.startswith("MoveLeft/")]
    assert left and all((out / ln.split()[0]).is_dir() for ln in left)
    train = (out / "ucf101_train_split_1_rawframes.txt").read_text().splitlines()
    assert len(train) == 3 * 2 * 2 and not set(train) & set(rgb)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["method"] == METHOD and manifest["bound"] == 20.0
    assert manifest["num_videos"] == len(videos) - 1
    assert manifest["videos"]["Expand/v_Expand_g02_c02"] == {"frames": 10, "flows": 9, "label": 2,
                                                             "width": 80, "height": 64}
    assert "torch" in manifest["versions"]
    assert [f["video"] for f in manifest["failures"]] == [mini.broken]
    assert (out / "failures.txt").read_text().startswith(mini.broken + "\t")
    assert not list(out.rglob(".tmp.*"))


def test_flow_content_matches_the_method(mini, reference):
    """The stored stack decodes to the method's own flow within quantisation."""
    from flowapps.stacks.mini_ucf101 import render_video, video_scene
    from flownet2_core.io import read_video
    from flownet2_core.methods import get_method

    out, _ = reference
    frames = read_video(mini.video_root / "Expand" / "v_Expand_g01_c01.avi")
    flow = get_method(METHOD)(frames[3], frames[4])
    stored = read_flow_stack(out / "Expand" / "v_Expand_g01_c01", 4, 1)[0]
    inside = np.abs(flow) < 20
    err = np.abs(stored - flow)[inside]
    assert np.percentile(err, 99) < 3 * 40 / 255
    # and the method's flow is about the scene's true motion
    _, gt = render_video(video_scene("Expand", 1, 1, size=(64, 80), num_frames=10), 10, with_flow=True)
    assert np.abs(stored - gt[3]).mean() < 1.0


def test_resume_skips_finished_and_redoes_partial(mini, videos, reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference[0], out)
    victim = out / "Expand" / "v_Expand_g01_c01"
    (victim / "flow_x_00003.jpg").unlink()          # a partial folder
    stale = out / "Expand" / ".tmp.v_Expand_g02_c01.12345"  # a killed run's leftovers
    stale.mkdir()
    (stale / "img_00001.jpg").write_bytes(b"junk")
    keep = out / "MoveRight" / "v_MoveRight_g01_c01" / "img_00001.jpg"
    mtime = keep.stat().st_mtime_ns
    s = extract(videos, mini.video_root, out, ExtractConfig(method=METHOD, short_side=None),
                split_dir=mini.split_dir, progress=False)
    assert s.done == 1 and s.skipped == len(videos) - 2 and len(s.failed) == 1
    assert keep.stat().st_mtime_ns == mtime
    assert tree(out) == tree(reference[0])
    assert not stale.exists()


def test_other_settings_in_the_same_folder_are_refused(mini, videos, reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference[0], out)
    with pytest.raises(ValueError, match="other settings"):
        extract(videos, mini.video_root, out, ExtractConfig(method="farneback", short_side=None),
                split_dir=mini.split_dir, progress=False)


def test_shards_are_disjoint_balanced_and_equal_one_run(mini, videos, reference, tmp_path):
    shares = [shard_videos(videos, mini.video_root, k, 3) for k in range(3)]
    rels = [v.rel for s in shares for v in s]
    assert sorted(rels) == sorted(v.rel for v in videos)  # disjoint and complete
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    out = tmp_path / "out"
    for k in range(3):  # array jobs, then finalize by hand
        status = main(["stacks", "extract", "--videos", str(mini.video_root), "--splits", str(mini.split_dir),
                       "-o", str(out), "--method", METHOD, "--native", "--shard", f"{k}/3"])
        assert status in (0, 1)
    assert not (out / "manifest.json").exists()
    assert main(["stacks", "finalize", str(out)]) == 1  # the broken video is reported
    assert tree(out) == tree(reference[0])


def test_cli_exit_status_and_errors(mini, tmp_path, capsys):
    status = main(["stacks", "extract", "--videos", str(mini.video_root), "--splits", str(mini.split_dir),
                   "-o", str(tmp_path / "o"), "--method", METHOD, "--native"])
    assert status == 1  # finished, but one video failed
    err = capsys.readouterr().err
    assert f"failed: {mini.broken}" in err
    for argv, msg in [
        (["--videos", str(tmp_path / "nope"), "--splits", str(mini.split_dir)], "not a folder"),
        (["--videos", str(mini.video_root), "--splits", str(tmp_path)], "classInd.txt"),
        (["--videos", str(mini.video_root)], "exactly one of"),
        (["--videos", str(mini.video_root), "--splits", str(mini.split_dir), "--shard", "3/3"], "0 <= K < N"),
    ]:
        status = main(["stacks", "extract", *argv, "-o", str(tmp_path / "o2")])
        err = capsys.readouterr().err
        assert status == 2 and msg in err and len(err.strip().splitlines()) == 1, err


def test_dry_run_estimates(mini, tmp_path, capsys):
    status = main(["stacks", "extract", "--videos", str(mini.video_root), "--splits", str(mini.split_dir),
                   "-o", str(tmp_path / "o"), "--method", METHOD, "--dry-run"])
    out = capsys.readouterr().out
    assert status == 0
    assert "19 videos (1 unreadable), 180 frames, 162 flow fields" in out
    assert "ms per flow field" in out and "GB on disk" in out
    assert not (tmp_path / "o").exists()


def test_torchrun_two_processes_equal_one_run(mini, reference, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "flownet2_core", "stacks", "extract", "--videos", str(mini.video_root),
           "--splits", str(mini.split_dir), "-o", str(out), "--method", METHOD, "--native"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode != 0  # the broken video makes the run fail at the end ...
    assert (out / "manifest.json").exists()  # ... after rank 0 finalized
    assert tree(out) == tree(reference[0]), r.stderr[-2000:]


def kill_rounds(mini, out: Path, rounds: int, seed: int, n: int = 18) -> list[int]:
    """Start the CLI and SIGKILL it once a random number of further videos are
    recorded (plus a random delay, so kills also land mid-write) or, in some
    rounds, at a random moment after start (start-up, decoding); repeat.
    Returns the number of recorded videos after each kill."""
    rng = random.Random(seed)
    records = out / ".stacks" / "records"
    counts = []
    for _ in range(rounds):
        have = len(os.listdir(records)) if records.is_dir() else 0
        if have >= n:
            break
        # Small random steps, so many rounds interrupt the work before it ends.
        target = have + rng.randint(0, max(1, (n - have) // 4))
        proc = subprocess.Popen(stacks_cli("extract", "--videos", mini.video_root, "--splits", mini.split_dir,
                                           "-o", out, "--method", METHOD, "--native", "--batch-size", "2"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        by_time = rng.random() < 0.3 or target == have  # some kills land at a random moment
        kill_at = time.time() + rng.uniform(0.5, 4.0)
        while proc.poll() is None and time.time() < deadline:
            if by_time and time.time() >= kill_at:
                break
            if not by_time and records.is_dir() and len(os.listdir(records)) >= target:
                time.sleep(rng.uniform(0, 0.05))
                break
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        counts.append(len(os.listdir(records)) if records.is_dir() else 0)
    return counts


def test_sigkill_and_resume_equal_one_run(mini, reference, tmp_path):
    out = tmp_path / "out"
    counts = kill_rounds(mini, out, rounds=3, seed=0)
    assert counts and min(counts) < 18  # the kills did interrupt the work
    r = subprocess.run(stacks_cli("extract", "--videos", mini.video_root, "--splits", mini.split_dir,
                                  "-o", out, "--method", METHOD, "--native"), capture_output=True, text=True)
    assert r.returncode == 1, r.stderr[-2000:]
    assert tree(out) == tree(reference[0])
    assert not list(out.rglob(".tmp.*"))


SYNTH = "flownet2-sss-synth"


def _check_demo_page(out, section):
    page = (out / section.page).read_text()
    assert "flow_x_00005.jpg" in page and "manifest.json" in page
    for src in __import__("re").findall(r"src='([^']+)'", page):
        assert (out / src).is_file(), src
    assert "corrupt video reported: MoveLeft/" in section.summary
    return page


def test_demo_section(tmp_path, learned_package):
    """Without the learned method's weights file: dis, and the page says why."""
    from flowapps.stacks.demo import stacks_demo

    section = stacks_demo(tmp_path / "demo")
    page = _check_demo_page(tmp_path / "demo", section)
    assert json.loads((tmp_path / "demo" / "stacks" / "manifest.json").read_text())["method"] == "dis"
    assert f"Flow method: <code>dis</code>. Learned flow method {SYNTH} not run: " in page
    assert f"with dis (learned {SYNTH} not available)" in section.summary


def test_demo_section_with_the_learned_method(tmp_path, learned_package):
    """With its weights file (a tiny random stand-in) the stacks are made with flownet2-sss-synth."""
    from flowapps.stacks.demo import stacks_demo

    learned_package()
    section = stacks_demo(tmp_path / "demo")
    page = _check_demo_page(tmp_path / "demo", section)
    assert json.loads((tmp_path / "demo" / "stacks" / "manifest.json").read_text())["method"] == SYNTH
    assert f"Flow method: <code>{SYNTH}</code>. The demo&#x27;s learned method. Learned flow: {SYNTH}" in page
    assert f"flow fields with {SYNTH} (learned) in the rawframes layout" in section.summary


def test_exact_stacks_hold_the_true_flow(mini, tmp_path):
    from flowapps.stacks.mini_ucf101 import render_video, video_scene, write_exact_stacks

    out = write_exact_stacks(mini, tmp_path / "exact")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["method"] == "exact" and manifest["num_videos"] == 18
    assert [f["video"] for f in manifest["failures"]] == [mini.broken]
    _, gt = render_video(video_scene("Expand", 2, 1, size=(64, 80), num_frames=10), 10, with_flow=True)
    stored = read_flow_stack(out / "Expand" / "v_Expand_g02_c01", 1, 9)
    inside = np.abs(gt) < 20
    assert np.percentile(np.abs(stored - gt)[inside], 99) <= 2 * 40 / 255
    lines = (out / "ucf101_val_split_1_rawframes_flow.txt").read_text().splitlines()
    assert "Expand/v_Expand_g01_c01 9 2" in lines


def test_default_size_keeps_ucf101_videos_as_denseflow_does(tmp_path):
    """A 320×240 video (UCF101's size) under the default settings (short side 256, shrink only, as
    denseflow and so mmaction2/TSN): 320×240 flow fields equal to the method's flow on the
    unresized frames, quantisation aside; --upscale gives the old 341×256 and scaled values, and a
    larger video still shrinks."""
    from flownet2_core.data.synthetic import make_sequence
    from flownet2_core.io import read_video, write_video
    from flownet2_core.methods import get_method
    from flowapps.stacks.extract import output_size
    from flowapps.stacks.ucf101 import Video

    seq = make_sequence(3, 3, (240, 320), num_objects=2, max_translation=4.0)
    (tmp_path / "v" / "Walk").mkdir(parents=True)
    write_video(tmp_path / "v" / "Walk" / "v_Walk_g01_c01.avi", seq.frames)
    video = [Video("Walk/v_Walk_g01_c01.avi", 0)]
    extract(video, tmp_path / "v", tmp_path / "out", ExtractConfig(method="farneback", write_rgb=False),
            progress=False)
    got = read_flow_stack(tmp_path / "out" / "Walk" / "v_Walk_g01_c01")
    frames = read_video(tmp_path / "v" / "Walk" / "v_Walk_g01_c01.avi")
    want = np.clip(get_method("farneback")(frames[0], frames[1]), -20, 20)
    assert got.shape == (2, 240, 320, 2)
    step = 40 / 255
    assert np.abs(got[0] - want).max() <= step / 2 + step  # rounding + JPEG (quality 98)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["short_side"] == 256 and manifest["upscale"] is False
    assert output_size(320, 240, ExtractConfig(upscale=True)) == (341, 256)
    assert output_size(640, 480, ExtractConfig()) == (341, 256)
    assert output_size(320, 240, ExtractConfig(size=(340, 256))) == (340, 256)


def test_progress_moves_with_each_batch_of_flow_fields(mini, videos, tmp_path, monkeypatch):
    """The bar advances by a video's share per batch of fields (10-frame videos, batches of 4:
    4/9, 4/9, 1/9 of a video), and stands on a whole number at the end of every video."""
    import flowapps.stacks.extract as ex

    steps, ends = [], []

    class Bar:
        def __init__(self, *a, **k):
            self.n = 0

        def update(self, k):
            steps.append(k)

        def refresh(self):
            ends.append(self.n)

        def set_postfix(self, *a, **k):
            pass

        def close(self):
            pass

    monkeypatch.setattr(ex, "tqdm", Bar)
    two = [v for v in videos if "c01" in v.rel][:2]
    ex.extract(two, mini.video_root, tmp_path / "o", ExtractConfig(method=METHOD, short_side=None),
               batch_size=4, writer_threads=1)
    assert steps == pytest.approx([4 / 9, 4 / 9, 1 / 9] * 2) and ends == [1, 2]
