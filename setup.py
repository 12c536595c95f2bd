"""Build script: compiles the Cython kernels in ``src/lbkit/_fast``.

A build that is meant to compile and cannot must fail loudly (the msgpack lesson: a silent
fallback once shipped wheels with no extension for years). So there is no try/except around
the compiler here. ``LBKIT_NO_EXTENSIONS=1`` at build time is the only way to get a pure build.
"""

import os
import sys
from pathlib import Path

from setuptools import Extension, setup


def _extensions() -> list[Extension]:
    if os.environ.get("LBKIT_NO_EXTENSIONS", "") not in ("", "0"):
        print("lbkit: LBKIT_NO_EXTENSIONS is set; building the pure-Python package only")
        return []
    from Cython.Build import cythonize

    sources = sorted(Path("src/lbkit/_fast").glob("*.pyx"))
    # The kernels must give the same bits as the pure-Python ones: no fused multiply-add may
    # contract a*b + c (GCC and Clang do so by default on ARM). MSVC does not contract here.
    flags = [] if sys.platform == "win32" else ["-ffp-contract=off"]
    extensions = [
        Extension(f"lbkit._fast.{path.stem}", [str(path)], extra_compile_args=flags)
        for path in sources
    ]
    return cythonize(
        extensions,
        # Generated C goes to build/, out of the package tree, so it is not installed with it.
        build_dir="build/cython",
        # Safe defaults stay on module-wide; kernels relax them per function (DESIGN.md §3.8).
        compiler_directives={"language_level": "3", "binding": True, "embedsignature": True},
    )


setup(ext_modules=_extensions())
