"""The demo machinery and the core's section, on a small size; the default learned method
(with a tiny random stand-in for its packaged weights file, and without the file)."""

import dataclasses

import pytest

from flownet2_core.demo import flow_methods_demo, run_demo
from flownet2_core.reporting import markdown_table


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
    with pytest.raises(ValueError, match="unknown demo section"):
        run_demo(tmp_path, only=["nope"])


# ----------------------------------------------------------------------------- the default learned method

SYNTH = "flownet2-sss-synth"
TINY = 1 / 16


def test_learned_demo_methods_follow_the_package_file(learned_package):
    from flownet2_core.demo import learned_method_note
    from flownet2_core.methods import (
        DEFAULT_LEARNED_METHOD,
        available_methods,
        learned_demo_methods,
        learned_method_reason,
        unavailable_methods,
    )

    assert DEFAULT_LEARNED_METHOD == SYNTH and SYNTH in available_methods()
    assert learned_demo_methods() == []
    assert learned_method_reason() == unavailable_methods()[SYNTH]
    assert learned_method_note() == f"Learned flow method {SYNTH} not run: {learned_method_reason()}."
    assert learned_method_reason("no-such-method") == "flow method no-such-method is not registered in this installation"
    learned_package()
    assert learned_demo_methods() == [SYNTH] and learned_method_reason() is None
    assert learned_method_note().startswith(f"Learned flow: {SYNTH}, FlowNet2-sss (width 3/8) trained here")


@pytest.fixture
def dis_and_synth(monkeypatch):
    """Only dis and the learned method in the flow-methods section (keeps the test quick)."""
    import flownet2_core.methods as methods

    full = methods.available_methods()
    monkeypatch.setattr(methods, "available_methods", lambda: {m: full[m] for m in ("dis", SYNTH)})


def test_flow_methods_section_runs_the_learned_method_first(tmp_path, learned_package, dis_and_synth):
    learned_package()
    section = flow_methods_demo(tmp_path, size=(64, 96))
    md = (tmp_path / "results.md").read_text()
    rows = [ln for ln in md.splitlines() if ln.startswith("| ") and not ln.startswith("| method")]
    assert rows[0].startswith(f"| {SYNTH} | learned (demo default) |") and rows[1].startswith("| dis | classical |")
    assert f"The first row is the demo's learned method. Learned flow: {SYNTH}" in md
    assert "Skipped" not in md and (tmp_path / SYNTH / "set0_pair0.flo").is_file()
    assert (tmp_path / "images" / f"set0_{SYNTH}.png").is_file()
    assert f"Learned {SYNTH} (first row): mean EPE" in section.summary
    assert "learned (demo default)" in (tmp_path / "index.html").read_text()


def test_flow_methods_section_without_the_learned_file(tmp_path, learned_package, dis_and_synth):
    section = flow_methods_demo(tmp_path, size=(64, 96))
    md = (tmp_path / "results.md").read_text()
    assert "| dis | classical |" in md and f"| {SYNTH} |" not in md
    assert f"Learned flow method {SYNTH} not run: {SYNTH} needs pretrained weights" in md
    assert f"- `{SYNTH}`: " in md
    assert f"Learned {SYNTH} not run (see Skipped)." not in section.summary
    assert f"Learned {SYNTH} not run (weights file absent)." in section.summary


def test_run_demo_index_opens_with_the_leads(tmp_path, monkeypatch):
    """A section's lead (Table 5's table and plots) comes first on index.html, above the list
    of sections; sections without one only get their list entry."""
    import flownet2_core.demo as demo
    from flownet2_core.demo import DemoSection

    def plain(out):
        out.mkdir(parents=True)
        return DemoSection("Plain", "index.html", "no lead")

    def leading(out):
        out.mkdir(parents=True)
        return DemoSection("Leading", "index.html", "has a lead", lead="<h2>THE TABLE</h2>")

    class EP:
        def __init__(self, name, fn):
            self.name, self.load = name, (lambda: fn)

    monkeypatch.setattr(demo, "entry_points", lambda group: [EP("20-plain", plain), EP("05-leading", leading)])
    text = run_demo(tmp_path).read_text()
    assert text.count("THE TABLE") == 1
    assert text.index("THE TABLE") < text.index("<h2>Sections</h2>") < text.index("05-leading/index.html") \
        < text.index("20-plain/index.html")
