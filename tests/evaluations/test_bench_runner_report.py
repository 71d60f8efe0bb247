"""Runner (resume, runtime protocol), export layouts, report contents, CLI, demo."""

import base64
import json
import re

import numpy as np
import pandas as pd
import pytest

from evaluations.benchmarks import runner as runner_mod
from evaluations.benchmarks.metrics import frame_stats, stats_to_metrics
from evaluations.benchmarks.report import (
    NOT_TRANSCRIBED,
    published_value,
    render_report,
    summary_table,
)
from evaluations.benchmarks.runner import export_submission, load_results, run_benchmark
from flownet2_core.data.datasets import list_samples
from flownet2_core.data.mini import (
    write_mini_all,
    write_mini_kitti2015,
    write_mini_sintel,
)
from flownet2_core.io import read_flo, read_kitti_flow

SIZE = (32, 48)


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return write_mini_all(tmp_path_factory.mktemp("mini"), size=SIZE)


class Counting:
    """Stand-in method: zero flow, counts calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, img1, img2):
        self.calls += 1
        return np.zeros(img1.shape[:2] + (2,), np.float32)


class TestRunner:
    def test_rows_match_metrics(self, mini, tmp_path):
        df = run_benchmark("sintel-clean", mini["sintel-clean"], ["dis"], tmp_path, log=None)
        samples = list_samples("sintel-clean", mini["sintel-clean"])
        assert list(df["sample"]) == [s.id for s in samples]
        assert set(df["sequence"]) == {"scene_1", "scene_2"}
        assert (df["runtime_s"] > 0).all() and df["epe_all"].notna().all()
        assert df["epe_noc"].notna().all()   # occlusion masks were read
        runs = json.loads((tmp_path / "runs.json").read_text())
        r = runs["sintel-clean|dis"]
        assert r["resolution"] == list(SIZE) and r["frames"] == len(samples) and r["warmup"] == 1
        assert r["median_runtime_s"] == pytest.approx(float(np.median(df["runtime_s"])))
        assert r["device"]
        # estimates of the first two pairs are kept for the galleries
        assert (tmp_path / "flow/sintel-clean/dis/scene_1/frame_0001.flo").is_file()
        assert not (tmp_path / f"flow/sintel-clean/dis/{samples[2].id}.flo").exists()

    def test_zero_flow_rows_are_hand_checkable(self, mini, tmp_path, monkeypatch):
        m = Counting()
        monkeypatch.setattr(runner_mod, "get_method", lambda name, **kw: m)
        df = run_benchmark("kitti-2015", mini["kitti-2015"], ["zero"], tmp_path, warmup=3, log=None)
        samples = list_samples("kitti-2015", mini["kitti-2015"])
        assert m.calls == 3 + len(samples)           # warm-up calls, then one per pair
        from flownet2_core.data.datasets import load_sample
        fr = load_sample(samples[0])
        want = stats_to_metrics(frame_stats(np.zeros_like(fr.gt), fr.gt, fr.valid,
                                            occluded=fr.occluded, foreground=fr.foreground))
        for k in ("epe_all", "epe_noc", "fl_all", "fl_fg", "fl_bg"):
            assert df.loc[0, k] == pytest.approx(want[k], nan_ok=True)

    def test_resume_skips_done_frames(self, mini, tmp_path, monkeypatch):
        root = mini["sintel-final"]
        run_benchmark("sintel-final", root, ["farneback"], tmp_path, max_frames=2, log=None)
        first, _ = load_results(tmp_path)
        m = Counting()
        real = runner_mod.get_method
        monkeypatch.setattr(runner_mod, "get_method", lambda name, **kw: m if name == "zero" else real(name, **kw))
        df = run_benchmark("sintel-final", root, ["farneback"], tmp_path, log=None)
        assert len(df) == len(list_samples("sintel-final", root))
        kept = df[df["sample"].isin(first["sample"])].reset_index(drop=True)
        pd.testing.assert_series_equal(kept["runtime_s"], first["runtime_s"], check_names=False)
        # a frame lost from the CSV (killed run) is recomputed, nothing else
        frames, _ = load_results(tmp_path)
        frames.iloc[:-1].to_csv(tmp_path / "frames.csv", index=False)
        df2 = run_benchmark("sintel-final", root, ["farneback"], tmp_path, log=None)
        assert len(df2) == len(df)
        pd.testing.assert_series_equal(df2["runtime_s"].iloc[:-1], df["runtime_s"].iloc[:-1])
        # no resume: recomputed
        run_benchmark("sintel-final", root, ["zero"], tmp_path, resume=False, log=None)
        assert m.calls == 1 + len(df)

    def test_interrupted_run_keeps_finished_frames(self, mini, tmp_path, monkeypatch):
        class Failing(Counting):
            def __call__(self, img1, img2):
                if self.calls == 3:      # warm-up, frame 1, frame 2, then Ctrl-C
                    raise KeyboardInterrupt
                return super().__call__(img1, img2)

        monkeypatch.setattr(runner_mod, "get_method", lambda name, **kw: Failing())
        with pytest.raises(KeyboardInterrupt):
            run_benchmark("sintel-clean", mini["sintel-clean"], ["zero"], tmp_path, save_every_s=1e9, log=None)
        frames, _ = load_results(tmp_path)
        assert list(frames["sample"]) == ["scene_1/frame_0001", "scene_1/frame_0002"]
        m = Counting()
        monkeypatch.setattr(runner_mod, "get_method", lambda name, **kw: m)
        df = run_benchmark("sintel-clean", mini["sintel-clean"], ["zero"], tmp_path, log=None)
        assert m.calls == 1 + 2 and len(df) == 4   # warm-up + the two missing frames

    def test_resume_with_other_options_is_refused(self, mini, tmp_path):
        run_benchmark("chairs", mini["chairs"], ["farneback"], tmp_path, max_frames=1, log=None)
        with pytest.raises(ValueError, match="runs.json.*options"):
            run_benchmark("chairs", mini["chairs"], ["farneback"], tmp_path, log=None,
                          method_options={"farneback": {"levels": 3}})
        df = run_benchmark("chairs", mini["chairs"], ["farneback"], tmp_path, log=None, resume=False,
                           method_options={"farneback": {"levels": 3}})
        assert len(df) == 2 and load_results(tmp_path)[1]["chairs|farneback"]["options"] == {"levels": "3"}

    def test_test_split_is_refused(self, mini, tmp_path):
        with pytest.raises(ValueError, match="no ground truth"):
            run_benchmark("kitti-2015", mini["kitti-2015"], ["dis"], tmp_path, split="test", log=None)


class TestExport:
    def test_sintel_tree(self, tmp_path):
        root = write_mini_sintel(tmp_path / "S", scenes=0, frames=3, test_scenes=2, size=SIZE)
        out = export_submission("sintel-final", root, "dis", tmp_path / "sub", log=None)
        files = sorted(str(p.relative_to(out)) for p in out.rglob("*.flo"))
        assert files == ["final/test_1/frame_0001.flo", "final/test_1/frame_0002.flo",
                         "final/test_2/frame_0001.flo", "final/test_2/frame_0002.flo"]
        assert read_flo(out / files[0]).shape == SIZE + (2,)

    def test_kitti_folder(self, tmp_path):
        root = write_mini_kitti2015(tmp_path / "K", pairs=1, test_pairs=2, size=SIZE)
        out = export_submission("kitti-2015", root, "dis", tmp_path / "sub", log=None)
        assert sorted(p.name for p in (out / "flow").iterdir()) == ["000000_10.png", "000001_10.png"]
        flow, valid = read_kitti_flow(out / "flow/000000_10.png")
        assert valid.all() and flow.shape == SIZE + (2,)

    def test_other_datasets_refused(self, mini, tmp_path):
        with pytest.raises(ValueError, match="export"):
            export_submission("chairs", mini["chairs"], "dis", tmp_path, log=None)


@pytest.fixture(scope="module")
def report(mini, tmp_path_factory):
    res = tmp_path_factory.mktemp("res")
    for ds in ("sintel-clean", "kitti-2015", "middlebury"):
        run_benchmark(ds, mini[ds], ["dis", "farneback"], res, log=None)
    return render_report(res)


class TestReport:

    def test_files(self, report):
        for key in ("md", "html", "table", "details", "per_sequence"):
            assert report[key].is_file() and report[key].stat().st_size > 0

    def test_tables(self, report):
        table = pd.read_csv(report["table"])
        assert list(table["method"]) == ["dis", "farneback"]
        for col in ("Sintel clean EPE", "KITTI 2015 EPE", "KITTI 2015 Fl-all %", "Middlebury AAE °",
                    "runtime ms"):
            assert table[col].notna().all()
            assert (table[f"{col} (published)"] == NOT_TRANSCRIBED).all()
        assert "Chairs EPE" not in table.columns          # only datasets that were run
        assert (table["runtime on"] == "sintel-clean 48×32").all()  # W×H
        details = pd.read_csv(report["details"])
        assert set(details["average"]) == {"pixel", "image"}
        assert details.loc[details["dataset"] == "kitti-2015", "fl_fg"].notna().all()
        per_seq = pd.read_csv(report["per_sequence"], dtype={"sequence": str})
        assert {"scene_1", "scene_2"} <= set(per_seq["sequence"])
        md = report["md"].read_text()
        assert "| method | Sintel clean EPE |" in md and "not transcribed" in md
        assert "## Per sequence" in md and "![" in md
        assert "| dataset | method | EPE all | EPE matched | EPE unmatched |" in md
        assert "Fl-fg %" in md and "AAE °" in md

    def test_html_is_self_contained(self, report):
        html = report["html"].read_text()
        imgs = re.findall(r"<img src='([^']*)'", html)
        assert len(imgs) >= 1 + 3 * (2 + 2 * 2)   # scatter + 3 galleries (frame, GT, 2 × (flow, error))
        for src in imgs:
            assert src.startswith("data:image/png;base64,")
            assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
        assert "<table" in html and "not transcribed" in html

    def test_published_figures_with_source(self):
        assert published_value("flownet2", "Sintel clean EPE") == "2.22 (converted weights, ptlflow)"
        assert published_value("flownet2", "KITTI 2015 Fl-all %").startswith("30.50 (")
        assert published_value("tvl1", "Sintel clean EPE") == NOT_TRANSCRIBED
        gt = np.zeros((2, 2, 2), np.float32)
        row = {"dataset": "sintel-final", "method": "flownet2", "sample": "a", "sequence": "a",
               "height": 2, "width": 2, "runtime_s": 0.1, **frame_stats(gt + 1, gt)}
        t = summary_table(pd.DataFrame([row]))
        assert t.loc[0, "Sintel final EPE"] == pytest.approx(np.sqrt(2))
        assert t.loc[0, "Sintel final EPE (published)"] == "3.64 (converted weights, ptlflow)"
        assert t.loc[0, "runtime ms (published)"].startswith("123.00 (paper")
        assert t.loc[0, "runtime ms"] == pytest.approx(100.0)

    def test_empty_results(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="frames.csv"):
            render_report(tmp_path)


class TestCLI:
    def parser(self):
        from evaluations.benchmarks.commands import BENCH
        from flownet2_core.cli import build_parser
        return build_parser({"bench": BENCH})

    def test_run_report_export(self, mini, tmp_path, capsys):
        p = self.parser()
        res = tmp_path / "res"
        args = p.parse_args(["bench", "run", "--dataset", "sintel", "--root", str(mini["sintel-clean"]),
                             "--method", "dis", "--method", "farneback", "-o", str(res), "--max-frames", "2"])
        assert args._run(args) == 0
        frames, _ = load_results(res)
        assert set(frames["method"]) == {"dis", "farneback"} and set(frames["dataset"]) == {"sintel-clean"}
        args = p.parse_args(["bench", "run", "--dataset", "sintel", "--pass", "final", "--root",
                             str(mini["sintel-final"]), "--method", "dis", "-o", str(res), "--max-frames", "1"])
        assert args._run(args) == 0
        assert "sintel-final|dis" in load_results(res)[1]
        args = p.parse_args(["bench", "report", str(res)])
        assert args._run(args) == 0
        assert (res / "report/report.html").is_file() and "report:" in capsys.readouterr().out
        args = p.parse_args(["bench", "export", "--dataset", "kitti-2015", "--root", str(mini["kitti-2015"]),
                             "--method", "dis", "-o", str(tmp_path / "sub")])
        assert args._run(args) == 0
        assert (tmp_path / "sub/flow/000000_10.png").is_file()

    def test_mini(self, tmp_path):
        p = self.parser()
        args = p.parse_args(["bench", "mini", str(tmp_path), "--size", "32", "24"])
        assert args._run(args) == 0
        assert (tmp_path / "KittiFlow/training/obj_map/000000_10.png").is_file()

    def test_bad_input(self, tmp_path, capsys):
        p = self.parser()
        with pytest.raises(SystemExit):
            p.parse_args(["bench", "run", "--dataset", "kitti-2013", "--method", "dis"])
        assert "unknown dataset" in capsys.readouterr().err
        from flownet2_core.cli import UserError
        args = p.parse_args(["bench", "run", "--dataset", "chairs", "--method", "dis"])
        with pytest.raises(UserError, match="--root"):
            args._run(args)


SYNTH = "flownet2-sss-synth"


class TestDemo:
    def test_bench_demo(self, tmp_path):
        from evaluations.benchmarks.demo import bench_demo
        sec = bench_demo(tmp_path, methods=("dis", "farneback"), size=SIZE, motorcycle=False)
        assert (tmp_path / sec.page).is_file()
        assert "dis" in sec.summary
        table = pd.read_csv(tmp_path / "report/table.csv")
        assert {"Sintel final EPE", "KITTI 2012 EPE", "Chairs EPE", "HD1K EPE"} <= set(table.columns)

    def test_demo_methods_follow_the_learned_file(self, learned_package):
        from evaluations.benchmarks.demo import DEMO_METHODS, demo_methods
        assert demo_methods() == DEMO_METHODS
        learned_package()
        assert demo_methods() == (SYNTH, *DEMO_METHODS)

    def test_bench_demo_default_runs_the_learned_method(self, tmp_path, learned_package, monkeypatch):
        """make demo's default (classical methods narrowed to dis here) with a tiny random
        stand-in for the learned method's weights: it runs on every set and the page says so."""
        import evaluations.benchmarks.demo as demo
        monkeypatch.setattr(demo, "DEMO_METHODS", ("dis",))
        learned_package()
        sec = demo.bench_demo(tmp_path / "demo", size=SIZE, motorcycle=False)
        assert sec.summary.startswith(f"{SYNTH} (learned), dis on generated miniature datasets")
        frames, _ = load_results(tmp_path / "demo" / "results")
        assert set(frames["method"]) == {SYNTH, "dis"}
        assert set(frames[frames["method"] == SYNTH]["dataset"]) == set(frames["dataset"])
        html = (tmp_path / "demo" / sec.page).read_text()
        assert f"(with the learned {SYNTH})" in html

    def test_bench_demo_default_without_the_learned_file(self, tmp_path, learned_package, monkeypatch):
        import evaluations.benchmarks.demo as demo
        monkeypatch.setattr(demo, "DEMO_METHODS", ("dis",))
        sec = demo.bench_demo(tmp_path / "demo", size=SIZE, motorcycle=False)
        assert sec.summary.startswith("dis on generated") and f"Learned flow method {SYNTH} not run: " in sec.summary
        frames, _ = load_results(tmp_path / "demo" / "results")
        assert set(frames["method"]) == {"dis"}
        assert f"(learned {SYNTH} not run: its weights file is absent)" in (tmp_path / "demo" / sec.page).read_text()


class TestFlowNet2Plumbing:
    def test_weights_and_device_reach_the_method(self, mini, tmp_path):
        """A FlowNet2 variant through `bench run` with a (random) checkpoint on the CPU:
        checks the option plumbing and the device/runtime record, not accuracy."""
        torch = pytest.importorskip("torch")
        from flownet2_core.methods import get_factory
        from flownet2_core.models import build_model, save_checkpoint

        torch.manual_seed(0)
        weights = tmp_path / "s_random.pth.tar"
        save_checkpoint(weights, build_model(get_factory("flownet2-s").arch).eval())
        p = TestCLI().parser()
        res = tmp_path / "res"
        args = p.parse_args(["bench", "run", "--dataset", "chairs", "--root", str(mini["chairs"]),
                             "--method", "flownet2-s", "--method", "dis", "--weights", str(weights),
                             "--device", "cpu", "-o", str(res), "--max-frames", "1"])
        assert args._run(args) == 0
        frames, runs = load_results(res)
        assert runs["chairs|flownet2-s"]["options"] == {"weights": str(weights), "device": "cpu"}
        assert runs["chairs|dis"]["options"] == {}
        assert runs["chairs|flownet2-s"]["device"].startswith("CPU")
        assert np.isfinite(frames["epe_all"]).all()
