"""Build of the compiled ops: one extension module, ``flownet2_core._C``.

Project metadata lives in ``pyproject.toml``; this file only adds the
extension (setuptools merges the two). Like torchvision's ``setup.py``:

* C++ sources (``csrc/*.cpp``, ``csrc/ops/*.cpp``, ``csrc/ops/cpu/*.cpp``)
  are always built.
* CUDA sources (``csrc/ops/cuda/*.cu``) are built when a CUDA toolkit is found
  (and torch itself was built with CUDA), or when ``FORCE_CUDA=1``, which
  makes a missing toolkit an error. ``FORCE_CUDA=0`` skips them even when a
  toolkit is present (quick CPU-only builds).
* GPU architectures come from ``TORCH_CUDA_ARCH_LIST``. When it is unset and
  no GPU is visible (CI, build machines), the default is ``8.0;9.0``: SASS
  for Ampere (runs on every 8.x card) and Hopper (H100/H200; 8.0 code does not
  run there), two architectures only, to keep the compile short. Name others
  for other cards (``"8.6;8.9;10.0;12.0+PTX"``), or one (``8.0``) where the
  build only has to compile (CI).
  When it is unset and a GPU is visible, torch's rule applies (the visible
  cards' architectures).
* ``CUDA_HOME`` / ``CUDA_PATH`` are honoured. Otherwise the toolkit root is
  the first of ``/usr/local/cuda``, the root of the real ``nvcc`` on
  ``PATH``, ``/usr/local/cuda-*`` that holds ``bin/nvcc`` and
  ``include/cuda_runtime.h``. (torch's own guess takes two levels above the
  ``nvcc`` on ``PATH``; where that is a wrapper script in ``/usr/local/bin``
  it lands on ``/usr/local``, which has no CUDA headers.)
* C++20 (torch 2.14's headers need it; gcc >= 10 and nvcc 12.x/13.x accept
  it), ``-O3``, built with ninja when it is installed (``MAX_JOBS`` limits its
  parallelism). No ``-march=native``: the AVX2/FMA kernels are selected at
  run time (see ``csrc/ops/cpu/simd.h``), so one build runs on any x86-64
  CPU, and other CPUs get the portable code.
* ``FLOWNET2_DEBUG_BUILD=1`` builds with ``-O0 -g``.
* torch must be importable (``pip install --no-build-isolation``); without it
  the package installs without ``flownet2_core._C`` and says so.

The resolved configuration is printed at the start of every build.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))
CSRC = "csrc"
DEFAULT_ARCH_LIST = "8.0;9.0"


def _env_flag(name: str) -> bool | None:
    """``True``/``False`` for a set variable ("1"/"0", "true"/"false", ...), ``None`` if unset."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip().lower() not in ("0", "false", "no", "off")


def _is_cuda_root(path: str | None) -> bool:
    return bool(path) and os.path.isfile(os.path.join(path, "bin", "nvcc")) and os.path.isfile(
        os.path.join(path, "include", "cuda_runtime.h"))


def _find_cuda_home() -> tuple[str | None, str]:
    """``(root, how it was found)`` of the CUDA toolkit, ``(None, why not)`` if there is none."""
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            return os.environ[var], f"${var}"
    if _is_cuda_root("/usr/local/cuda"):
        return "/usr/local/cuda", "/usr/local/cuda"
    nvcc = shutil.which("nvcc")
    if nvcc:
        root = os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))
        if _is_cuda_root(root):
            return root, f"nvcc on PATH ({nvcc})"
    for root in sorted(glob.glob("/usr/local/cuda-*"), reverse=True):
        if _is_cuda_root(root):
            return root, "newest /usr/local/cuda-*"
    return None, "no CUDA toolkit found (set CUDA_HOME)"


def _nvcc_version(cuda_home: str) -> str:
    try:
        out = subprocess.run([os.path.join(cuda_home, "bin", "nvcc"), "--version"],
                             capture_output=True, text=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as err:
        return f"unknown ({err})"
    lines = [line for line in out.splitlines() if "release" in line]
    return lines[-1].strip() if lines else "unknown"


def _compiler_version() -> str:
    cxx = os.environ.get("CXX", "c++")
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=True,
                             timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as err:
        return f"{cxx}: unknown ({err})"
    return f"{cxx}: {out.splitlines()[0] if out else 'unknown'}"


def _extensions_and_cmdclass():
    force_cuda = _env_flag("FORCE_CUDA")
    cuda_home, cuda_how = _find_cuda_home()
    if cuda_home and not os.environ.get("CUDA_HOME"):
        # torch.utils.cpp_extension reads CUDA_HOME once, when it is imported.
        os.environ["CUDA_HOME"] = cuda_home

    try:
        import torch
        from torch.utils import cpp_extension
    except ImportError as err:
        # An isolated build (pip without --no-build-isolation) has no torch to
        # build against: install the Python package alone, saying so; the ops
        # then use their pure-PyTorch twins and flownet2_core.ops.backend()
        # reports why (FLOWNET2_REQUIRE_COMPILED=1 makes that an error).
        print(f"flownet2_core._C: not built, torch is not importable here ({err}); "
              "build with `pip install --no-build-isolation -e .`", flush=True)
        return [], {}

    torch_has_cuda = torch.version.cuda is not None
    if force_cuda is True:
        if not torch_has_cuda:
            sys.exit(f"FORCE_CUDA=1 but torch {torch.__version__} was built without CUDA")
        if not _is_cuda_root(cuda_home):
            sys.exit(f"FORCE_CUDA=1 but no CUDA toolkit was found: {cuda_how}"
                     f"{'' if cuda_home is None else ' at ' + cuda_home}")
        with_cuda, why = True, "FORCE_CUDA=1"
    elif force_cuda is False:
        with_cuda, why = False, "FORCE_CUDA=0"
    elif not torch_has_cuda:
        with_cuda, why = False, f"torch {torch.__version__} has no CUDA"
    elif not _is_cuda_root(cuda_home):
        with_cuda, why = False, cuda_how if cuda_home is None else f"no nvcc/headers in {cuda_home}"
    else:
        with_cuda, why = True, f"toolkit found ({cuda_how})"

    arch_note = "-"
    if with_cuda:
        if not os.environ.get("TORCH_CUDA_ARCH_LIST"):
            if torch.cuda.is_available():
                arch_note = "visible GPUs (torch's default)"
            else:
                os.environ["TORCH_CUDA_ARCH_LIST"] = DEFAULT_ARCH_LIST
                arch_note = f"{DEFAULT_ARCH_LIST} (default: TORCH_CUDA_ARCH_LIST unset, no GPU visible)"
        else:
            arch_note = f"{os.environ['TORCH_CUDA_ARCH_LIST']} (TORCH_CUDA_ARCH_LIST)"

    def find(*parts: str) -> list[str]:
        # setuptools wants source paths relative to the project root.
        return sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, CSRC, *parts)))

    sources = find("*.cpp") + find("ops", "*.cpp") + find("ops", "cpu", "*.cpp")
    cuda_sources = find("ops", "cuda", "*.cu")

    debug = _env_flag("FLOWNET2_DEBUG_BUILD") is True
    opt = ["-O0", "-g"] if debug else ["-O3"]
    cxx_flags = opt + ["-std=c++20"]
    # at::parallel_for is a header template: with torch's OpenMP backend it is
    # `#pragma omp parallel` compiled into *this* library, so without -fopenmp
    # every CPU kernel silently runs on one thread. Linking libgomp.so.1 is
    # safe: torch loads the same soname first and the loader reuses it.
    link_flags = []
    if torch.backends.openmp.is_available() and sys.platform.startswith("linux"):
        cxx_flags.append("-fopenmp")
        link_flags.append("-fopenmp")
    nvcc_flags = opt + ["-std=c++20", "--expt-relaxed-constexpr", "-lineinfo"]
    define_macros = []
    if with_cuda:
        sources += cuda_sources
        define_macros.append(("WITH_CUDA", None))
        extension = cpp_extension.CUDAExtension
        extra = {"cxx": cxx_flags, "nvcc": nvcc_flags}
    else:
        extension = cpp_extension.CppExtension
        extra = {"cxx": cxx_flags}

    use_ninja = shutil.which("ninja") is not None
    lines = [
        "flownet2_core._C build configuration:",
        f"  torch           {torch.__version__} (CUDA {torch.version.cuda})",
        f"  C++ compiler    {_compiler_version()}",
        f"  C++ standard    C++20, flags {' '.join(cxx_flags)}",
        f"  parallel        {'OpenMP (at::parallel_for)' if link_flags else 'serial: torch has no OpenMP here'}",
        "  CPU kernels     portable code + AVX2/FMA paths chosen at run time (no -march)",
        f"  CUDA            {'yes' if with_cuda else 'no'} ({why})",
        f"  CUDA_HOME       {cuda_home or '-'} ({cuda_how})",
    ]
    if with_cuda:
        lines += [f"  nvcc            {_nvcc_version(cuda_home)}, flags {' '.join(nvcc_flags)}",
                  f"  CUDA archs      {arch_note}"]
    lines += [f"  ninja           {'yes' if use_ninja else 'no (slower, serial build)'}"
              f", MAX_JOBS={os.environ.get('MAX_JOBS', 'all cores')}",
              f"  sources         {len(sources)} ({len(cuda_sources) if with_cuda else 0} CUDA)"]
    print("\n".join(lines), flush=True)

    ext = extension(
        "flownet2_core._C",
        sources=sources,
        include_dirs=[os.path.join(ROOT, CSRC)],
        define_macros=define_macros,
        extra_compile_args=extra,
        extra_link_args=link_flags,
    )
    cmdclass = {"build_ext": cpp_extension.BuildExtension.with_options(use_ninja=use_ninja)}
    return [ext], cmdclass


ext_modules, cmdclass = _extensions_and_cmdclass()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
