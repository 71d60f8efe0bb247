"""The contract every flow method follows.

A flow method is a callable object built with its options as constructor
keywords::

    method = get_method("dis", preset="medium")
    flow = method(img1, img2)            # (H, W, 2) float32, pixels
    flows = method.batch(imgs1, imgs2)   # (N, H, W, 2)

Convention: images are (H, W, 3) uint8 arrays in **RGB** order (colour order is
converted where images are read or written, never inside a method); flow is
(H, W, 2) float32 in pixels, channel 0 = u (towards +x, right), channel 1 = v
(towards +y, down), and maps a pixel of ``img1`` to its position in ``img2``.

Options: a method's options are the keyword parameters of its constructor, and
nothing else (:meth:`FlowMethod.accepted_options`). :func:`~.registry.get_method`
checks the options it is given against them before building the method, so an
option a method does not take (``-O nosuchkey=1``, ``--weights`` for a classical
method) is one ``ValueError`` line naming the option, the method and the options
it does take, never a ``TypeError`` from the constructor. Device rule: a method
without a ``device`` option runs on the CPU only; ``device="cpu"`` is accepted
for it and ignored, any other device (``cuda``, ``cuda:1``) is refused.
"""

from __future__ import annotations

import abc
import inspect
from typing import Callable, ClassVar

import numpy as np

__all__ = ["FlowMethod", "accepted_options", "check_pair", "check_batch", "check_finite"]


def accepted_options(factory: Callable) -> frozenset[str] | None:
    """The option names ``factory`` (a method class or a function building one) takes: the
    keyword parameters of its signature (a class's ``__init__``); ``None`` when it takes
    ``**kwargs`` (anything goes)."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # no signature to read: do not guess
        return None
    names = set()
    for p in params:
        if p.kind is p.VAR_KEYWORD:
            return None
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            names.add(p.name)
    return frozenset(names)


def check_pair(img1: np.ndarray, img2: np.ndarray) -> None:
    """Raise ``ValueError`` unless both images are (H, W, 3) uint8 of one size."""
    for name, img in (("img1", img1), ("img2", img2)):
        if not isinstance(img, np.ndarray):
            raise ValueError(f"{name} must be a numpy array, got {type(img).__name__}")
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"{name} must have shape (H, W, 3), got {img.shape}")
        if img.dtype != np.uint8:
            raise ValueError(f"{name} must be uint8 RGB, got dtype {img.dtype}")
    if img1.shape != img2.shape:
        raise ValueError(f"images differ in size: {img1.shape} vs {img2.shape}")


def check_batch(imgs1: np.ndarray, imgs2: np.ndarray) -> None:
    """Raise ``ValueError`` unless both batches are (N, H, W, 3) uint8 of one size."""
    for name, imgs in (("imgs1", imgs1), ("imgs2", imgs2)):
        if not isinstance(imgs, np.ndarray) or imgs.ndim != 4 or imgs.shape[3] != 3:
            shape = getattr(imgs, "shape", None)
            raise ValueError(f"{name} must be an (N, H, W, 3) array, got {shape}")
        if imgs.dtype != np.uint8:
            raise ValueError(f"{name} must be uint8 RGB, got dtype {imgs.dtype}")
    if imgs1.shape != imgs2.shape:
        raise ValueError(f"batches differ in shape: {imgs1.shape} vs {imgs2.shape}")


def check_finite(flow: np.ndarray, method: str) -> np.ndarray:
    """``flow`` itself when every value is finite; else ``ValueError`` saying how many are not.

    Broken weights (or a checkpoint of another model) make a network put out NaN or inf;
    written out, that would pass as flow with exit 0 and poison every use downstream."""
    if not np.isfinite(flow).all():
        raise non_finite_error(method, int(np.count_nonzero(~np.isfinite(flow))), flow.size)
    return flow


def non_finite_error(method: str, bad: int, total: int) -> ValueError:
    """The one-line error for flow with ``bad`` non-finite values of ``total``."""
    return ValueError(f"{method}: the flow has {bad} non-finite values (NaN/inf) of {total}; "
                      "its weights (or the input) are broken, nothing was written")


class FlowMethod(abc.ABC):
    """Base class: subclasses set ``name``/``description`` and implement ``compute``.

    ``__call__`` validates the inputs, calls :meth:`compute` and refuses non-finite
    flow (:func:`check_finite`); ``batch`` loops over pairs unless a subclass can do
    better (deep networks batch on the GPU; they check their output the same way).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: True where NaN in the output is a documented "unknown" (FlowNet2's crop policy fills the
    #: border it did not compute with NaN) and the method checks its own computed values.
    nan_is_unknown: ClassVar[bool] = False

    @abc.abstractmethod
    def compute(self, img1: np.ndarray, img2: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB ×2 → (H, W, 2) float32 flow in pixels."""

    def __call__(self, img1: np.ndarray, img2: np.ndarray) -> np.ndarray:
        check_pair(img1, img2)
        flow = np.ascontiguousarray(self.compute(img1, img2), dtype=np.float32)
        return flow if self.nan_is_unknown else check_finite(flow, self.name)

    def batch(self, imgs1: np.ndarray, imgs2: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB ×2 → (N, H, W, 2) float32."""
        check_batch(imgs1, imgs2)
        n, h, w, _ = imgs1.shape
        out = np.empty((n, h, w, 2), np.float32)
        for i in range(n):
            out[i] = self.compute(imgs1[i], imgs2[i])
        return out if self.nan_is_unknown else check_finite(out, self.name)

    @classmethod
    def accepted_options(cls) -> frozenset[str] | None:
        """The constructor keywords this method takes (see the module docstring)."""
        return accepted_options(cls)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
