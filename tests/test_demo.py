"""The demo machinery and the core's section, on a small size."""

from flownet2_core.demo import flow_methods_demo, markdown_table, run_demo


def test_markdown_table():
    assert markdown_table(["a", "b"], [[1, 2]]) == "| a | b |\n|---|---|\n| 1 | 2 |\n"


def test_flow_methods_section(tmp_path):
    section = flow_methods_demo(tmp_path, size=(96, 128))
    page = (tmp_path / section.page).read_text()
    md = (tmp_path / "results.md").read_text()
    for name in ("tvl1", "deepflow", "dis", "farneback", "pcaflow"):
        assert f"| {name} |" in md
        assert f"images/set0_{name}.png" in page
        assert (tmp_path / "images" / f"set0_{name}.png").exists()
    # Every EPE cell is a finite number.
    for line in md.splitlines():
        if line.startswith("| ") and not line.startswith("| method"):
            float(line.split("|")[-3])
    assert (tmp_path / "data" / "sequence" / "clip.avi").exists()


def test_run_demo_index_links_sections(tmp_path, monkeypatch):
    import functools

    import flownet2_core.demo as demo

    # The entry point is looked up on the module at run time: shrink its size.
    monkeypatch.setattr(demo, "flow_methods_demo", functools.partial(flow_methods_demo, size=(96, 128)))
    index = run_demo(tmp_path, only=["10-flow-methods"])
    text = index.read_text()
    assert "10-flow-methods/index.html" in text
    assert (tmp_path / "10-flow-methods" / "index.html").exists()


def test_run_demo_unknown_section(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="unknown demo section"):
        run_demo(tmp_path, only=["nope"])
