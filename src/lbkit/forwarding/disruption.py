"""What a change of table does to traffic: the disruption report shared by forwarding tables
and Maglev tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from lbkit.errors import InvalidArgument

_NO_SERVER = 0xFFFFFFFF
_GONE = -1


@attrs.frozen
class TableDiff:
    """How two tables differ, flow for flow.

    Tables of different sizes are compared through the larger size: with the hash's low bits
    as the index, slot ``i`` of the larger table is slot ``i % size`` of the smaller, so
    ``slots`` is the larger size and every count is in those units.

    A slot's **owner** is the hop that receives its new flows: the first hop, except in a
    ``udp`` table, where it is the second hop when there is one (see
    :func:`~lbkit.forwarding.redirect`). Its other hop is the **previous** one.

    Attributes:
        slots: how many slots (buckets or Maglev entries) were compared.
        moved: slots whose new flows now go to a different server.
        first_hop_changed: slots whose first hop changed.
        second_hop_changed: slots whose second hop changed (0 between Maglev tables).
        broken: slots whose old owner is in neither slot of the new table: the established
            connections it holds there break.
        previous_hop_dropped: slots whose old previous hop is in neither new slot: connections
            older than the slot's last change break, if any are left.

    >>> diff = TableDiff(slots=8, moved=2, first_hop_changed=2, second_hop_changed=2, broken=0,
    ...                  previous_hop_dropped=0)
    >>> diff.moved_fraction, diff.broken_fraction
    (0.25, 0.0)
    """

    slots: int
    moved: int
    first_hop_changed: int
    second_hop_changed: int
    broken: int
    previous_hop_dropped: int

    @property
    def moved_fraction(self) -> float:
        """The fraction of new flows that go to a different server."""
        return self.moved / self.slots

    @property
    def broken_fraction(self) -> float:
        """The fraction of slots whose established connections (on their owner) break."""
        return self.broken / self.slots


class _Hops(Protocol):
    @property
    def servers(self) -> tuple[object, ...]: ...

    @property
    def first_hops(self) -> Sequence[int] | memoryview: ...


def diff(old: _Hops, new: _Hops) -> TableDiff:
    """Compare two tables flow for flow: forwarding tables, Maglev tables, or one of each.

    Servers are matched by id, so tables that number them differently compare correctly.
    Sizes may differ if both are powers of two (see :class:`TableDiff`). A table without
    second hops (Maglev, ``udp-rr``) simply has none. Owners follow each table's protocol.

    Raises:
        InvalidArgument: the sizes differ and are not both powers of two (a prime-sized
            Maglev table maps flows to entries by ``hash % size``, not by low bits).

    Runtime complexity: O(max(size of old, size of new)).

    >>> from lbkit.forwarding import TableBuilder
    >>> builder = TableBuilder({"a": 1, "b": 1}, buckets=16)
    >>> before = builder.table
    >>> _ = builder.add("c", 2)
    >>> change = diff(before, builder.table)
    >>> change.moved, change.broken
    (8, 0)
    """
    old_first, old_second, old_udp = _hops(old)
    new_first, new_second, new_udp = _hops(new)
    # Old server indices translated into the new table's numbering. A server the new table
    # does not list becomes _GONE, which no new hop equals; an empty hop stays _NO_SERVER.
    position = {server: i for i, server in enumerate(new.servers)}
    translate = [position.get(server, _GONE) for server in old.servers]
    translate.append(_NO_SERVER)
    absent = len(translate) - 1
    old_size, new_size = len(old_first), len(new_first)
    if old_size != new_size and (old_size & (old_size - 1) or new_size & (new_size - 1)):
        raise InvalidArgument(
            f"the tables have {old_size} and {new_size} slots; tables of different sizes "
            "hold the same flows in corresponding slots only when both sizes are powers of two"
        )
    slots = max(old_size, new_size)
    moved = first_changed = second_changed = broken = dropped = 0
    for slot in range(slots):
        hop = old_second[slot % old_size] if old_second is not None else _NO_SERVER
        before_first = translate[old_first[slot % old_size]]
        before_second = translate[hop if hop != _NO_SERVER else absent]
        after_first = new_first[slot % new_size]
        after_second = new_second[slot % new_size] if new_second is not None else _NO_SERVER
        if old_udp and before_second != _NO_SERVER:
            before_owner, before_previous = before_second, before_first
        else:
            before_owner, before_previous = before_first, before_second
        after_owner = after_second if new_udp and after_second != _NO_SERVER else after_first
        moved += before_owner != after_owner
        first_changed += before_first != after_first
        second_changed += before_second != after_second
        if before_owner != after_first and before_owner != after_second:
            broken += 1
        if before_previous != _NO_SERVER and before_previous not in (after_first, after_second):
            dropped += 1
    return TableDiff(
        slots=slots,
        moved=moved,
        first_hop_changed=first_changed,
        second_hop_changed=second_changed,
        broken=broken,
        previous_hop_dropped=dropped,
    )


def _hops(
    table: _Hops,
) -> tuple[Sequence[int] | memoryview, Sequence[int] | memoryview | None, bool]:
    second = getattr(table, "second_hops", None)
    return table.first_hops, second, getattr(table, "protocol", "tcp") == "udp"
