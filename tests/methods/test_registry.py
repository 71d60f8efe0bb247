"""Flow methods of other packages register through the ``flownet2.flow_methods``
entry-point group (a fake entry point here), the way subcommands do, so the core
registry never imports the layers above it."""

from __future__ import annotations

import sys
import textwrap
from importlib.metadata import EntryPoint

import numpy as np
import pytest

from flownet2_core.methods import FlowMethod, available_methods, get_method
from flownet2_core.methods import registry

PLUGIN = "fake_flow_plugin_for_tests"

PLUGIN_SOURCE = '''
import numpy as np

from flownet2_core.methods import FlowMethod, register


@register("fake-zero", "Zero flow (a test plugin)")
class ZeroFlow(FlowMethod):
    name = "fake-zero"
    description = "Zero flow (a test plugin)"

    def __init__(self, *, scale: float = 0.0):
        self.scale = scale

    def compute(self, img1, img2):
        return np.full(img1.shape[:2] + (2,), self.scale, np.float32)
'''


@pytest.fixture
def plugin_registry(tmp_path, monkeypatch):
    """The registry as on a fresh start with one more installed entry point, ``source``
    its module's code; restored afterwards."""

    def install(source: str = PLUGIN_SOURCE, value: str = PLUGIN):
        available_methods()  # the built-ins are registered (and their modules imported)
        (tmp_path / f"{PLUGIN}.py").write_text(textwrap.dedent(source))
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.delitem(sys.modules, PLUGIN, raising=False)
        monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
        monkeypatch.setattr(registry, "_loaded", False)
        fake = [EntryPoint(name="fake", value=value, group=registry.ENTRY_POINT_GROUP)]
        monkeypatch.setattr(registry, "entry_points",
                            lambda group: fake if group == registry.ENTRY_POINT_GROUP else [])

    yield install
    sys.modules.pop(PLUGIN, None)


def test_entry_point_method_is_found_and_built(plugin_registry):
    plugin_registry()
    methods = available_methods()
    assert methods["fake-zero"] == "Zero flow (a test plugin)"
    assert "dis" in methods and "farneback" in methods  # the built-ins are still there
    method = get_method("fake-zero", scale=1.5)
    assert isinstance(method, FlowMethod)
    img = np.zeros((8, 12, 3), np.uint8)
    flow = method(img, img)
    assert flow.shape == (8, 12, 2) and np.all(flow == 1.5)


def test_no_entry_point_no_method(plugin_registry, monkeypatch):
    plugin_registry()
    monkeypatch.setattr(registry, "entry_points", lambda group: [])
    with pytest.raises(ValueError, match="unknown flow method 'fake-zero'"):
        get_method("fake-zero")


def test_broken_entry_point_names_itself(plugin_registry):
    plugin_registry("import this_module_does_not_exist_anywhere\n")
    with pytest.raises(ImportError, match=r"flow-method entry point fake = fake_flow_plugin_for_tests"):
        available_methods()

