"""Compiled (Cython) kernels, one module per module of ``lbkit._pure``, with the same names,
signatures, results and errors."""
