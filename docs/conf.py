"""Sphinx configuration for the lbkit documentation.

The documentation describes the lbkit that is installed in the building environment (``pip
install .`` first); ``src/`` is deliberately not put on ``sys.path``, so autodoc and the doctest
builder see the same package, compiled kernels included, that users get.
"""

from __future__ import annotations

import doctest

import lbkit

project = "lbkit"
author = "The lbkit developers"
copyright = "The lbkit developers"
release = lbkit.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build"]
# docs/generated/ holds fragments that other pages include; they are not pages of their own.
exclude_patterns += ["generated"]

nitpicky = True
# Standard-library types that appear in signatures. Without intersphinx (the build stays
# offline) they have no target; everything lbkit defines must still resolve.
nitpick_ignore = [
    ("py:mod", "ipaddress"),
    ("py:class", "array"),
    ("py:class", "array.array"),
    ("py:class", "collections.abc.Callable"),
    ("py:class", "collections.abc.Hashable"),
    ("py:class", "collections.abc.Iterable"),
    ("py:class", "collections.abc.Mapping"),
    ("py:class", "collections.abc.Sequence"),
    ("py:class", "ipaddress.IPv4Address"),
    ("py:class", "ipaddress.IPv6Address"),
    ("py:class", "collections.abc.Collection"),
    ("py:mod", "re"),
    ("py:mod", "secrets"),
    ("py:class", "random.Random"),
    ("py:class", "pathlib.Path"),
    # redis-py's client, in RedisStore's signature (the redis extra; no intersphinx offline).
    ("py:class", "redis.Redis"),
    # The steering kernels are private (the pure kernel is their specification, see design):
    # SteeringContext.rng is annotated with the kernel generator, whichever path is in use, and
    # the policies' docstrings name the kernel functions they call.
    ("py:class", "lbkit._pure._steering.Rng"),
    ("py:class", "lbkit._fast._steering.Rng"),
    ("py:func", "lbkit._pure._steering.rendezvous_pick"),
    ("py:func", "lbkit._pure._steering.weighted_choice"),
]

# Napoleon: Google-style sections only.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
# Show the alias, not its expansion, in signatures that take an address.
autodoc_type_aliases = {"Address": "lbkit.hashing.Address"}

# The doctest builder runs the examples in these pages and, because autodoc puts docstrings
# into the pages, the ``>>>`` examples of every documented docstring too.
doctest_test_doctest_blocks = "default"
# The flags tests/test_docstrings.py runs the docstrings with. Sphinx would also ignore exception
# details by default; the pages show exact error messages, so the messages are checked too.
doctest_default_flags = doctest.ELLIPSIS

html_theme = "furo"
html_title = f"lbkit {release}"
html_static_path: list[str] = []
