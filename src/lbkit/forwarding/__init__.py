"""Forwarding tables in the style of Cloudflare's Unimog, with Beamer's daisy chaining, and
Maglev tables beside them.

* :class:`ForwardingTable`: the immutable snapshot the data plane reads.
* :class:`TableBuilder`: the control plane that makes successive tables.
* :func:`redirect`: the rule a server applies to a packet it does not own.
* :func:`diff`: what a change does to new and established connections.

Server ids are ``str`` (1 to 255 bytes of UTF-8) or ``int`` (signed 64-bit); their canonical
bytes are ``b"s"`` + UTF-8 or ``b"i"`` + 8 big-endian bytes, used in blobs and for Maglev's
permutations.
"""

from lbkit.forwarding.builder import BalanceReport, TableBuilder
from lbkit.forwarding.disruption import TableDiff, diff
from lbkit.forwarding.redirector import redirect
from lbkit.forwarding.table import (
    MAX_BUCKET_BITS,
    MIN_BUCKET_BITS,
    NO_SERVER,
    PROTOCOLS,
    ForwardingTable,
    Protocol,
)

__all__ = [
    "MAX_BUCKET_BITS",
    "MIN_BUCKET_BITS",
    "NO_SERVER",
    "PROTOCOLS",
    "BalanceReport",
    "ForwardingTable",
    "Protocol",
    "TableBuilder",
    "TableDiff",
    "diff",
    "redirect",
]
