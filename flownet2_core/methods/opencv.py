"""Classical flow methods from OpenCV (``opencv-contrib-python``).

Registered names:

* ``tvl1``: Dual TV-L1 (Zach et al. 2007; Wedel et al. 2009), the usual flow
  for UCF101 two-stream networks.
* ``deepflow``: OpenCV's variational part of DeepFlow **without DeepMatching**.
* ``dis``: Dense Inverse Search (Kroeger et al. 2016), very fast.
* ``farneback``: polynomial expansion (Farnebäck 2003).
* ``pcaflow``: OpenCV's PCA-Flow (Wulff & Black 2015) variant.

All of them work on grey images: each RGB image is converted once with
``cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)`` (:func:`to_gray`), and the result
follows the package convention: (H, W, 2) float32, u right, v down, from
``img1`` to ``img2``.

Every method takes ``threads``: ``None`` (default) leaves OpenCV's thread
setting alone; an int sets ``cv2.setNumThreads(threads)`` for the duration of
each call and restores the previous value afterwards (``0`` = run
sequentially, OpenCV's meaning). OpenCV's setting is process-wide, so do not
give different ``threads`` to methods used concurrently from several Python
threads. The OpenCV algorithm objects are built lazily and are not pickled,
so a method can be sent to worker processes.

These methods run on the CPU and take no ``device``, ``weights`` or ``batch_size``:
:func:`~.registry.get_method` accepts ``device="cpu"`` and ignores it, and refuses any
other device or option with one line (see :mod:`.base`).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import cv2
import numpy as np

from .base import FlowMethod
from .registry import register

__all__ = [
    "to_gray",
    "OpenCVMethod",
    "TVL1Flow",
    "DeepFlowOpenCV",
    "DISFlow",
    "FarnebackFlow",
    "PCAFlow",
]


def to_gray(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB → contiguous (H, W) uint8 grey (ITU-R BT.601 weights)."""
    return np.ascontiguousarray(cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY))


@contextlib.contextmanager
def _num_threads(threads: int | None):
    if threads is None:
        yield
        return
    previous = cv2.getNumThreads()
    cv2.setNumThreads(threads)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


def _positive(name: str, value: Any, *, integer: bool = False, allow_zero: bool = False) -> Any:
    kind = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kind) or not np.isfinite(value):
        what = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return int(value) if integer else float(value)


class OpenCVMethod(FlowMethod):
    """Shared plumbing: grey conversion, thread setting, lazy algorithm object.

    Subclasses implement :meth:`_make` (build the OpenCV object, or return
    None for function-style APIs) and :meth:`_flow` (grey, grey → flow).
    """

    def __init__(self, threads: int | None = None):
        if threads is not None:
            threads = _positive("threads", threads, integer=True, allow_zero=True)
        self.threads = threads
        self._algo = None

    def _make(self):
        return None

    @property
    def algorithm(self):
        """The underlying OpenCV object (built on first use)."""
        if self._algo is None:
            self._algo = self._make()
        return self._algo

    def _flow(self, gray1: np.ndarray, gray2: np.ndarray) -> np.ndarray:
        return self.algorithm.calc(gray1, gray2, None)

    def compute(self, img1: np.ndarray, img2: np.ndarray) -> np.ndarray:
        g1, g2 = to_gray(img1), to_gray(img2)
        with _num_threads(self.threads):
            flow = self._flow(g1, g2)
        return np.ascontiguousarray(flow, dtype=np.float32)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_algo"] = None  # OpenCV objects do not pickle; rebuilt on use
        return state


@register("tvl1", "Dual TV-L1 (OpenCV contrib), the usual UCF101 flow")
class TVL1Flow(OpenCVMethod):
    """Dual TV-L1 optical flow (``cv2.optflow.DualTVL1OpticalFlow_create``).

    Defaults are OpenCV's. The UCF101 flow extractors (TSN's dense_flow,
    denseflow for mmaction2) run the GPU version with its default settings,
    which match these, so stacks computed here are the published protocol's.

    Large displacements need a deeper pyramid than these defaults give (5 scales
    at 0.8: the coarsest is 0.41 of the image, enough for UCF101's few pixels per
    frame). Measured on scikit-image's stereo pair (2026-12-05, 2-core EPYC, EPE
    over valid pixels): at ¼ size (185×125, disparities ≤ 15 px) the defaults give
    3.16 px in 2.1 s, ``nscales=10`` 0.93 px, ``nscales=10, scale_step=0.5``
    0.91 px in 1.4 s; at ½ size (370×250, ≤ 30 px) 11.29 px in 45 s against
    2.76 px (10.7 s) and 1.71 px (4.6 s). For such motion pass
    ``-O nscales=10 -O scale_step=0.5``.

    Args:
        tau: time step of the numerical scheme (0.25).
        lambda_: weight of the data term; smaller = smoother flow (0.15).
        theta: coupling between the data and the TV term (0.3).
        nscales: number of pyramid scales (5).
        warps: warpings per scale (5).
        epsilon: stopping threshold of the inner solver (0.01).
        inner_iterations: iterations of the inner loop (30).
        outer_iterations: iterations of the outer loop (10). The GPU version
            (``cv::cuda::OpticalFlowDual_TVL1``) has a single ``iterations``
            = 300, which corresponds to inner × outer here.
        scale_step: downscaling factor between pyramid scales (0.8).
        gamma: weight of the illumination term, 0 disables it (0.0).
        median_filtering: median filter size applied to the flow after each
            warp, 1 disables it (5).
        threads: see the module docstring.
    """

    name = "tvl1"
    description = "Dual TV-L1 (OpenCV contrib), the usual UCF101 flow"

    def __init__(self, *, tau: float = 0.25, lambda_: float = 0.15, theta: float = 0.3,
                 nscales: int = 5, warps: int = 5, epsilon: float = 0.01,
                 inner_iterations: int = 30, outer_iterations: int = 10,
                 scale_step: float = 0.8, gamma: float = 0.0, median_filtering: int = 5,
                 threads: int | None = None):
        super().__init__(threads)
        self.tau = _positive("tau", tau)
        self.lambda_ = _positive("lambda_", lambda_)
        self.theta = _positive("theta", theta)
        self.nscales = _positive("nscales", nscales, integer=True)
        self.warps = _positive("warps", warps, integer=True)
        self.epsilon = _positive("epsilon", epsilon)
        self.inner_iterations = _positive("inner_iterations", inner_iterations, integer=True)
        self.outer_iterations = _positive("outer_iterations", outer_iterations, integer=True)
        self.scale_step = _positive("scale_step", scale_step)
        if not self.scale_step < 1:
            raise ValueError(f"scale_step must be in (0, 1), got {scale_step!r}")
        self.gamma = _positive("gamma", gamma, allow_zero=True)
        self.median_filtering = _positive("median_filtering", median_filtering, integer=True)

    def _make(self):
        algo = cv2.optflow.DualTVL1OpticalFlow_create()
        # Setters rather than create() keywords: one of those is misspelt
        # ("innnerIterations") in OpenCV's binding.
        algo.setTau(self.tau)
        algo.setLambda(self.lambda_)
        algo.setTheta(self.theta)
        algo.setScalesNumber(self.nscales)
        algo.setWarpingsNumber(self.warps)
        algo.setEpsilon(self.epsilon)
        algo.setInnerIterations(self.inner_iterations)
        algo.setOuterIterations(self.outer_iterations)
        algo.setScaleStep(self.scale_step)
        algo.setGamma(self.gamma)
        algo.setMedianFiltering(self.median_filtering)
        return algo


@register(
    "deepflow",
    "OpenCV's variational DeepFlow refinement WITHOUT DeepMatching (not the paper's DeepFlow)",
)
class DeepFlowOpenCV(OpenCVMethod):
    """OpenCV's ``createOptFlow_DeepFlow``: **not** the DeepFlow of the paper.

    Weinzaepfel et al.'s DeepFlow feeds DeepMatching correspondences into a
    variational energy; OpenCV implements only the variational part
    (coarse-to-fine with a fine pyramid, downscale 0.95, grey data +
    gradient constancy, SOR solver) and no matching term, so it behaves like
    a classical Brox-style method and misses large displacements that
    DeepFlow's matches would catch. Rows labelled "DeepFlow" in the paper's
    tables cannot be reproduced with it.

    OpenCV's Python binding exposes no parameters; the fixed values are
    sigma 0.6, min pyramid size 25, downscale 0.95, 5 fixed-point and
    25 SOR iterations, alpha 1, delta 0.5, gamma 5, omega 1.6.

    Args:
        threads: see the module docstring.
    """

    name = "deepflow"
    description = (
        "OpenCV's variational DeepFlow refinement WITHOUT DeepMatching (not the paper's DeepFlow)"
    )

    def __init__(self, *, threads: int | None = None):
        super().__init__(threads)

    def _make(self):
        return cv2.optflow.createOptFlow_DeepFlow()


_DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


@register("dis", "Dense Inverse Search (OpenCV), presets ultrafast/fast/medium")
class DISFlow(OpenCVMethod):
    """Dense Inverse Search (``cv2.DISOpticalFlow_create``).

    Preset values in OpenCV 4.x (finest scale, gradient-descent iterations,
    patch stride, variational refinement iterations; patch size is 8 for all)::

        ultrafast  2  12  4  0
        fast       2  16  4  5
        medium     1  25  3  5

    Args:
        preset: ``"ultrafast"``, ``"fast"`` or ``"medium"`` (default).
        finest_scale, patch_size, patch_stride, gradient_descent_iterations,
        variational_refinement_iterations, use_mean_normalization,
        use_spatial_propagation: override the preset's value when not None.
            ``finest_scale`` 0 is full resolution (more accurate, slower).
        threads: see the module docstring.

    Images must be large enough for the pyramid to reach the finest scale:
    short side >= 16 px and long side >= 46 px for ``medium``, >= 32 and
    >= 91 px for ``fast``/``ultrafast`` (finest scale 2); ``ValueError``
    otherwise, where OpenCV itself would crash on some of those sizes.
    """

    name = "dis"
    description = "Dense Inverse Search (OpenCV), presets ultrafast/fast/medium"

    def __init__(self, *, preset: str = "medium", finest_scale: int | None = None,
                 patch_size: int | None = None, patch_stride: int | None = None,
                 gradient_descent_iterations: int | None = None,
                 variational_refinement_iterations: int | None = None,
                 use_mean_normalization: bool | None = None,
                 use_spatial_propagation: bool | None = None,
                 threads: int | None = None):
        super().__init__(threads)
        if preset not in _DIS_PRESETS:
            raise ValueError(f"unknown DIS preset {preset!r}; known: {', '.join(_DIS_PRESETS)}")
        self.preset = preset
        self.overrides: dict[str, Any] = {}
        for key, value, allow_zero in (
            ("FinestScale", finest_scale, True),
            ("PatchSize", patch_size, False),
            ("PatchStride", patch_stride, False),
            ("GradientDescentIterations", gradient_descent_iterations, False),
            ("VariationalRefinementIterations", variational_refinement_iterations, True),
        ):
            if value is not None:
                self.overrides[key] = _positive(key, value, integer=True, allow_zero=allow_zero)
        for key, value in (("UseMeanNormalization", use_mean_normalization),
                           ("UseSpatialPropagation", use_spatial_propagation)):
            if value is not None:
                self.overrides[key] = bool(value)
        if self.overrides.get("PatchStride", 1) > self.overrides.get("PatchSize", 8):
            raise ValueError("patch_stride must not exceed patch_size")

    def _make(self):
        algo = cv2.DISOpticalFlow_create(_DIS_PRESETS[self.preset])
        for key, value in self.overrides.items():
            getattr(algo, "set" + key)(value)
        return algo

    def _flow(self, gray1, gray2):
        algo = self.algorithm
        h, w = gray1.shape
        patch, finest = algo.getPatchSize(), algo.getFinestScale()
        # OpenCV's choice of the coarsest pyramid level (dis_flow.cpp, C-style
        # truncation). When it falls below the finest level OpenCV re-picks the
        # levels from the width alone, which crashes the process (segmentation
        # fault, OpenCV 4.13) on short wide images; refuse those sizes instead.
        coarsest = min(int(math.log(max(h, w) / (4.0 * patch)) / math.log(2.0) + 0.5),
                       int(math.log(min(h, w) / patch) / math.log(2.0)))
        if coarsest < finest:
            raise ValueError(
                f"image of {h}x{w} px is too small for DIS with patch size {patch} and "
                f"finest scale {finest}; use a larger image or finest_scale=0")
        return algo.calc(gray1, gray2, None)


@register("farneback", "Farnebäck polynomial expansion (OpenCV)")
class FarnebackFlow(OpenCVMethod):
    """Farnebäck flow (``cv2.calcOpticalFlowFarneback``).

    Args:
        pyr_scale: scale between pyramid levels, < 1 (0.5: halve each level).
        levels: pyramid levels including the full image (5). OpenCV drops
            the levels that would be too small: with OpenCV 4.13 we measured
            1 level used at 96×128, 2 at 240×320, 3 at 480×640 (a level's
            smaller side must stay at or above about 64 px), so on small
            frames large motions are out of reach whatever ``levels`` says.
        winsize: averaging window; larger = more robust, blurrier (15).
        iterations: iterations per level (3).
        poly_n: neighbourhood of the polynomial expansion, 5 or 7 (5).
        poly_sigma: Gaussian sigma of the expansion; OpenCV recommends 1.1
            for poly_n 5 and 1.5 for poly_n 7 (1.1).
        gaussian_window: Gaussian instead of box window
            (``OPTFLOW_FARNEBACK_GAUSSIAN``), more accurate, slower (False).
        threads: see the module docstring.
    """

    name = "farneback"
    description = "Farnebäck polynomial expansion (OpenCV)"

    def __init__(self, *, pyr_scale: float = 0.5, levels: int = 5, winsize: int = 15,
                 iterations: int = 3, poly_n: int = 5, poly_sigma: float = 1.1,
                 gaussian_window: bool = False, threads: int | None = None):
        super().__init__(threads)
        self.pyr_scale = _positive("pyr_scale", pyr_scale)
        if not self.pyr_scale < 1:
            raise ValueError(f"pyr_scale must be in (0, 1), got {pyr_scale!r}")
        self.levels = _positive("levels", levels, integer=True)
        self.winsize = _positive("winsize", winsize, integer=True)
        self.iterations = _positive("iterations", iterations, integer=True)
        if poly_n not in (5, 7):
            raise ValueError(f"poly_n must be 5 or 7, got {poly_n!r}")
        self.poly_n = int(poly_n)
        self.poly_sigma = _positive("poly_sigma", poly_sigma)
        self.gaussian_window = bool(gaussian_window)

    def _flow(self, gray1, gray2):
        flags = cv2.OPTFLOW_FARNEBACK_GAUSSIAN if self.gaussian_window else 0
        return cv2.calcOpticalFlowFarneback(
            gray1, gray2, None, self.pyr_scale, self.levels, self.winsize,
            self.iterations, self.poly_n, self.poly_sigma, flags)


@register("pcaflow", "PCA-Flow (OpenCV contrib variant: DCT basis, OpenCV features)")
class PCAFlow(OpenCVMethod):
    """OpenCV's PCA-Flow (``cv2.optflow.createOptFlow_PCAFlow``).

    Differs from Wulff & Black's: a DCT basis replaces the learned PCA basis,
    and sparse features come from OpenCV's tracker instead of libviso. The
    flow is a smooth combination of basis fields, so it cannot follow sharp
    motion boundaries.

    Only OpenCV's defaults are available (basis 18×14, sparse rate 0.024,
    retained corners 0.2, occlusion threshold 3e-4, damping 2e-5, CLAHE clip
    14, no learned prior): building ``cv2.optflow.OpticalFlowPCAFlow(...)``
    directly from Python, even with no arguments, crashes the interpreter
    (segmentation fault) on the first ``calc`` with opencv-contrib 4.13, so
    this class uses the factory function, which takes no parameters.

    Images must be at least 64×64: OpenCV 4.13's PCAFlow corrupts memory and
    crashes the process on smaller ones (we saw crashes up to 56 px high and
    up to 12 px wide), so those raise ``ValueError`` here. A pair without
    trackable features (e.g. flat or black frames, common at fades in
    videos) makes OpenCV raise; ``on_failure`` decides what happens then.

    Args:
        on_failure: ``"zeros"`` (default) returns zero flow for such pairs,
            as the other methods would estimate on textureless images;
            ``"raise"`` raises ``ValueError`` with OpenCV's message.
        threads: see the module docstring.
    """

    name = "pcaflow"
    description = "PCA-Flow (OpenCV contrib variant: DCT basis, OpenCV features)"
    min_size = 64

    def __init__(self, *, on_failure: str = "zeros", threads: int | None = None):
        super().__init__(threads)
        if on_failure not in ("zeros", "raise"):
            raise ValueError(f"on_failure must be 'zeros' or 'raise', got {on_failure!r}")
        self.on_failure = on_failure

    def _make(self):
        return cv2.optflow.createOptFlow_PCAFlow()

    def _flow(self, gray1, gray2):
        h, w = gray1.shape
        if h < self.min_size or w < self.min_size:
            raise ValueError(
                f"pcaflow needs images of at least {self.min_size}x{self.min_size} px, "
                f"got {h}x{w} (OpenCV's PCAFlow crashes on small images)")
        try:
            return self.algorithm.calc(gray1, gray2, None)
        except cv2.error as exc:
            if self.on_failure == "raise":
                raise ValueError(f"pcaflow failed on this pair (no usable features?): {exc}") from exc
            return np.zeros((h, w, 2), np.float32)
