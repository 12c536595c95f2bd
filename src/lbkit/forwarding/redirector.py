"""The redirector rule: which hop serves a packet, decided by the server that receives it.

A balancer sends every packet of a bucket to its first hop. That server serves the packet if
the connection is its own; otherwise it forwards the packet to the bucket's second hop, which
holds the connections that predate the last change (Beamer's daisy chaining). What "its own"
means depends on the protocol:

* **TCP.** A SYN opens a new connection: the first hop always takes it. Any other packet is
  served by the first hop if it has the connection, else passed to the second hop.
* **UDP.** There is no SYN, so the first hop cannot tell a new flow from another server's old
  one: it serves flows it knows and passes the rest to the second hop. New flows therefore land
  on the second hop, which is why a builder puts a new UDP server in the second slot.
* **UDP request-response** (``udp-rr``, DNS-like): every exchange is independent, buckets have a
  single hop, and the first hop serves everything.
"""

from __future__ import annotations

from typing import Literal

from lbkit.errors import ArgumentTypeError, InvalidArgument
from lbkit.forwarding.table import PROTOCOLS, Protocol

__all__ = ["redirect"]


def redirect(
    protocol: Protocol, *, is_syn: bool, first_has_flow: bool
) -> Literal["first", "second"]:
    """Which hop serves a packet that reached a bucket's first hop.

    Args:
        protocol: ``"tcp"``, ``"udp"`` or ``"udp-rr"``.
        is_syn: the packet opens a TCP connection (SYN without ACK); always False for UDP.
        first_has_flow: the first hop has state for the packet's flow.

    Raises:
        InvalidArgument: an unknown protocol, or ``is_syn`` for a UDP protocol.
        ArgumentTypeError: a flag that is not a bool.

    Runtime complexity: O(1).

    >>> redirect("tcp", is_syn=True, first_has_flow=False)
    'first'
    >>> redirect("tcp", is_syn=False, first_has_flow=False)
    'second'
    >>> redirect("udp", is_syn=False, first_has_flow=False)
    'second'
    >>> redirect("udp-rr", is_syn=False, first_has_flow=False)
    'first'
    """
    if protocol not in PROTOCOLS:
        raise InvalidArgument(f"protocol is {protocol!r}; it must be one of {PROTOCOLS}")
    for name, flag in (("is_syn", is_syn), ("first_has_flow", first_has_flow)):
        if not isinstance(flag, bool):
            raise ArgumentTypeError(f"{name} is {type(flag).__name__}; it must be a bool")
    if protocol == "tcp":
        return "first" if is_syn or first_has_flow else "second"
    if is_syn:
        raise InvalidArgument(f"is_syn is True but {protocol} has no SYN")
    if protocol == "udp":
        return "first" if first_has_flow else "second"
    return "first"
