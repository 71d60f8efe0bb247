"""Flow methods by name.

Modules register their methods with :func:`register`; :func:`get_method` builds
one with its options. The built-in modules are imported lazily on first lookup
so that importing :mod:`flownet2_core` stays cheap.

Other packages add methods through the ``flownet2.flow_methods`` entry-point
group, as they add subcommands through ``flownet2.commands`` (pytest's plugin
pattern): each entry point names a module whose import registers its methods
with :func:`register`, e.g. in a package's ``pyproject.toml``::

    [project.entry-points."flownet2.flow_methods"]
    mymethods = "mypackage.flow_methods"

The registry loads them on first lookup, after the built-ins, so the core never
imports the layers above it.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Callable

from .base import FlowMethod, accepted_options

__all__ = ["register", "get_method", "get_factory", "check_options", "method_accepts", "available_methods", "unavailable_methods",
           "DEFAULT_METHOD", "DEFAULT_LEARNED_METHOD", "learned_method_reason", "learned_demo_methods"]

#: The one default flow method of every command that computes flow (``flow``, ``stacks
#: extract``, ``segment run``, ``table5``'s examples): DIS (medium) is the fastest of the
#: classical methods and the most accurate of them on real photographs (scikit-image's
#: motorcycle pair, ``docs/benchmarks.md``) and on the held-out synthetic set
#: (``docs/trained_model.md``). It becomes the learned model once one trained here beats it.
#: TV-L1 (``--method tvl1``) is what denseflow and TSN compute; the stacks README says so.
DEFAULT_METHOD = "dis"

#: The default learned flow method: FlowNet2-sss (width 3/8) trained in this repository, whose
#: weights ship inside the package (no ``--weights``, no ``FLOWNET2_WEIGHTS``). Every demo
#: section runs it beside its classical methods when its file is there.
DEFAULT_LEARNED_METHOD = "flownet2-sss-synth"

# name -> (factory, one-line description)
_REGISTRY: dict[str, tuple[Callable[..., FlowMethod], str]] = {}

# The core's modules whose import registers methods. Other packages never go here: they
# register through the entry-point group (see the module docstring).
_BUILTIN_MODULES = ("flownet2_core.methods.opencv", "flownet2_core.methods.flownet2", "flownet2_core.methods.raft")
ENTRY_POINT_GROUP = "flownet2.flow_methods"
_loaded = False


def register(name: str, description: str):
    """Class/factory decorator: ``@register("tvl1", "Dual TV-L1 (OpenCV)")``."""

    def deco(factory):
        if name in _REGISTRY and _REGISTRY[name][0] is not factory:
            raise ValueError(f"flow method {name!r} is registered twice")
        _REGISTRY[name] = (factory, description)
        return factory

    return deco


def _load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in _BUILTIN_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            # Only tolerate the module itself not existing yet, never a
            # broken import inside it.
            if exc.name != mod:
                raise
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            ep.load()
        except Exception as exc:
            raise ImportError(f"flow-method entry point {ep.name} = {ep.value} "
                              f"({ENTRY_POINT_GROUP}) failed to load: {exc}") from exc


def available_methods() -> dict[str, str]:
    """Registered method names → one-line descriptions, sorted by name."""
    _load_builtins()
    return {k: _REGISTRY[k][1] for k in sorted(_REGISTRY)}


def unavailable_methods() -> dict[str, str]:
    """Registered methods that cannot run as they are → one line saying why (sorted by name).

    A factory says so through an optional ``unavailable_reason()`` returning ``None`` or
    the reason (FlowNet2 methods whose default weights file is absent). Cheap: no
    method is built and no torch is imported.
    """
    _load_builtins()
    out = {}
    for name in sorted(_REGISTRY):
        check = getattr(_REGISTRY[name][0], "unavailable_reason", None)
        reason = check() if callable(check) else None
        if reason:
            out[name] = reason
    return out


def get_factory(name: str) -> Callable[..., FlowMethod]:
    """The class (or factory) registered as ``name``, unbuilt: for reading its
    signature or class attributes. ``ValueError`` when unknown."""
    _load_builtins()
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise ValueError(f"unknown flow method {name!r}; known: {known}")
    return _REGISTRY[name][0]


def method_accepts(name: str, option: str) -> bool:
    """Whether flow method ``name`` takes the option ``option`` (a constructor keyword)."""
    accepted = accepted_options(get_factory(name))
    return accepted is None or option in accepted


def check_options(name: str, options: dict) -> dict:
    """``options`` checked against what flow method ``name`` takes; returns the keywords to
    build it with. Cheap: nothing is built and no torch is imported.

    Raises ``ValueError`` (one line naming the option, the method and the options it takes)
    for an option the method does not take. ``device`` follows the package's rule (see
    :mod:`flownet2_core.methods.base`): a method without a ``device`` option runs on the
    CPU, so ``device="cpu"`` is dropped and any other device is refused.
    """
    accepted = accepted_options(get_factory(name))
    if accepted is None:
        return dict(options)
    out = dict(options)
    if "device" in out and "device" not in accepted:
        device = out.pop("device")
        if device is not None and str(device).strip().lower() != "cpu":
            raise ValueError(f"flow method {name!r} runs on the CPU only; device {device!r} is not "
                             f"available for it (give cpu or no device)")
    for key in out:
        if key not in accepted:
            takes = ", ".join(sorted(accepted)) or "none"
            raise ValueError(f"flow method {name!r} has no option {key!r}; its options: {takes}")
    return out


def get_method(name: str, **options) -> FlowMethod:
    """Build the flow method ``name`` with constructor keywords ``options``.

    Raises ``ValueError`` naming the known methods when ``name`` is unknown, and one
    line naming the option when ``options`` holds one the method does not take
    (:func:`check_options`), before anything is built.
    """
    return get_factory(name)(**check_options(name, options))


def learned_method_reason(name: str = DEFAULT_LEARNED_METHOD) -> str | None:
    """``None`` when the learned method ``name`` can run as it is, else one line saying why
    not (its weights file is absent, or it is not registered). Cheap: nothing is built."""
    _load_builtins()
    if name not in _REGISTRY:
        return f"flow method {name} is not registered in this installation"
    check = getattr(_REGISTRY[name][0], "unavailable_reason", None)
    return (check() if callable(check) else None) or None


def learned_demo_methods() -> list[str]:
    """The learned flow methods the demo sections run: ``[DEFAULT_LEARNED_METHOD]`` when its
    weights are there, else ``[]`` (the sections then say why with :func:`learned_method_reason`)."""
    return [] if learned_method_reason() else [DEFAULT_LEARNED_METHOD]
