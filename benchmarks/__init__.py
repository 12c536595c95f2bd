"""lbkit's benchmark suite (pytest-benchmark); see benchmarks/README.md for how to run it.

A package, so its test modules may share names with those in ``tests/``.
"""
