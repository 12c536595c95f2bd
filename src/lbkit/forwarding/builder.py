"""The control plane of forwarding tables: one writer that turns weights, membership and load
into successive :class:`~lbkit.forwarding.ForwardingTable` snapshots.

The rules, after Cloudflare's Unimog and Beamer (Olteanu et al., NSDI 2018):

* **Shares.** Every server's bucket count stays within one bucket of its exact share,
  ``bucket_count * weight / total``: strictly between ``share - 1`` and ``share + 1``. A fresh
  table is apportioned by largest remainder. (Growing the table keeps the traffic split
  exactly and so keeps the same precision in larger units; see :meth:`TableBuilder.resize`.)
* **Minimal movement.** A change moves only as many buckets as the shares require: the counts
  that can stay, stay (``lbkit._pure._forwarding.apportion``), and only servers above their new
  range give buckets up. Removing one of N servers moves only that server's buckets.
* **Swaps before moves.** A bucket whose first hop must give and whose second hop must receive
  is fixed by exchanging the two hops: new connections go to the other server and no
  established connection breaks.
* **Least recently modified.** When a server gives buckets up, it gives those that changed
  longest ago (each bucket remembers the generation of its last change): their second hops
  are the least likely to still hold connections.
* **Daisy chaining.** A moved bucket keeps its previous owner as the second hop, so the
  connections that owner holds survive (for ``udp``, where new flows go to the second hop, the
  new server takes the second slot and the previous owner the first).
* **Layout.** A fresh table spreads each server's buckets evenly over the table (bit-reversed
  positions, rotated by a hash of ``seed``), so no server owns a long run of buckets.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import cast

import attrs

from lbkit import _kernels
from lbkit.errors import ArgumentTypeError, ConfigError, UnknownServer
from lbkit.forwarding._servers import (
    ServerId,
    WeightsInput,
    check_server,
    check_weight,
    check_weights,
)
from lbkit.forwarding.disruption import TableDiff, diff
from lbkit.forwarding.table import (
    MAX_BUCKET_BITS,
    MIN_BUCKET_BITS,
    NO_SERVER,
    PROTOCOLS,
    ForwardingTable,
    Protocol,
    check_bucket_count,
)
from lbkit.hashing import MAX_SEED, hash_key

__all__ = ["BalanceReport", "TableBuilder"]

_MAX_GENERATION = 2**32 - 1


@attrs.frozen
class BalanceReport:
    """What one :meth:`TableBuilder.balance` round did.

    Attributes:
        held: True when the round changed nothing on purpose (see ``reason``).
        reason: why it held or what it did, for logs.
        mean_load: the mean load of the servers that take traffic.
        overloaded: how many of them were at or above the ``overload`` level.
        factors: each active server's load-feedback factor after the round.
        diff: the change to the table (all zero when held).
    """

    held: bool
    reason: str
    mean_load: float
    overloaded: int
    factors: dict[ServerId, float]
    diff: TableDiff


class TableBuilder:
    """Builds and changes forwarding tables; the single writer of one table's history.

    Args:
        weights: server id to weight (a mapping, or ``(server, weight)`` pairs); weights are
            finite and >= 0, at least one positive. The order given is the servers' order.
        buckets: the bucket count, a power of two from ``2**4`` to ``2**24``. ``None`` picks
            the smallest power of two with at least ``min_buckets_per_server`` buckets per
            server, and doubles the table when servers are added beyond it.
        protocol: ``"tcp"``, ``"udp"`` or ``"udp-rr"`` (see :func:`~lbkit.forwarding.redirect`).
        min_buckets_per_server: how many buckets per server the automatic size guarantees
            (Unimog uses more than 100, so one bucket is under 1% of a server's traffic).
        seed: makes the initial layout differ between tables, deterministically.
        hash_seed: the murmur3 seed that tables hash keys with.

    Raises:
        ConfigError: invalid weights, sizes, protocol or seeds; more servers than buckets.
        ArgumentTypeError: an argument of the wrong type.

    Runtime complexity: O(buckets + servers log servers) to build; each change is
    O(buckets log buckets) at worst, in the sorting of the buckets that move.

    >>> builder = TableBuilder({"a": 1, "b": 1, "c": 2}, buckets=16)
    >>> builder.table.bucket_counts()
    {'a': 4, 'b': 4, 'c': 8}
    >>> change = builder.drain("c")
    >>> builder.table.bucket_counts(), change.broken
    ({'a': 8, 'b': 8, 'c': 0}, 0)
    """

    def __init__(
        self,
        weights: WeightsInput,
        *,
        buckets: int | None = None,
        protocol: Protocol = "tcp",
        min_buckets_per_server: int = 100,
        seed: int = 0,
        hash_seed: int = 0,
    ) -> None:
        checked = check_weights(weights)
        if protocol not in PROTOCOLS:
            raise ConfigError(f"protocol is {protocol!r}; it must be one of {PROTOCOLS}")
        _check_int_range(min_buckets_per_server, "min_buckets_per_server", 1, 2**MAX_BUCKET_BITS)
        _check_int_range(seed, "seed", 0, MAX_SEED)
        _check_int_range(hash_seed, "hash_seed", 0, MAX_SEED)
        self._protocol: Protocol = protocol
        self._min_buckets_per_server = min_buckets_per_server
        self._seed = seed
        self._hash_seed = hash_seed
        self._fixed_size = buckets is not None
        self._ids: list[ServerId] = list(checked)
        self._index: dict[ServerId, int] = {server: i for i, server in enumerate(self._ids)}
        self._weights: list[float] = list(checked.values())
        self._factors: list[float] = [1.0] * len(self._ids)
        self._drained: list[bool] = [False] * len(self._ids)
        self._removed: list[bool] = [False] * len(self._ids)
        if buckets is None:
            count = self._size_for(len(self._ids))
        else:
            count = check_bucket_count(buckets, "buckets")
            if len(self._ids) > count:
                raise ConfigError(
                    f"weights lists {len(self._ids)} servers but buckets is {count}; a table "
                    "needs at least one bucket per server"
                )
        self._generation = 0
        counts = _kernels.forwarding.apportion(
            self._effective_weights(), array("I", bytes(4 * len(self._ids))), count
        )
        self._first: array[int] = _kernels.forwarding.layout(counts, count, self._rotation(count))
        self._second: array[int] = array("I", [NO_SERVER]) * count
        self._modified: array[int] = array("I", bytes(4 * count))
        self._ranks_cache: tuple[int, array[int]] | None = None
        self._table: ForwardingTable | None = None
        # How far (in buckets) counts may be from their exact shares: 1 after every
        # apportionment; a resize that moves no flow scales it with the size instead.
        self._slack = 1.0

    @classmethod
    def resume(
        cls,
        table: ForwardingTable,
        *,
        weights: WeightsInput,
        drained: Iterable[ServerId] = (),
        auto_size: bool = False,
        min_buckets_per_server: int = 100,
        seed: int = 0,
    ) -> TableBuilder:
        """Continue a table's history in a new builder, as a restarted control plane must.

        A published table (:meth:`ForwardingTable.from_bytes`) carries its hops, their
        last-change generations, the generation, protocol and hash seed, but not the
        configuration behind them. Give it back: the configured ``weights`` of the servers that
        are still members, which of them are ``drained``, and the ``seed`` and sizing the
        original builder had. Listed servers missing from ``weights`` count as removed (kept
        while some bucket still remembers them). Load-feedback factors restart at 1.

        Nothing changes on resumption. If the table's counts are further from the given
        weights' shares than one bucket (factors were lost, or the weights are new), the next
        change re-apportions them; with the original configuration, a resumed builder makes
        exactly the tables the original would have made.

        Raises:
            UnknownServer: ``weights`` or ``drained`` names a server the table does not list
                (add new servers after resuming).
            ConfigError: invalid weights, or no server with weight > 0 left to take traffic.

        Runtime complexity: O(buckets + servers).

        >>> original = TableBuilder({"a": 1, "b": 2}, buckets=16)
        >>> _ = original.drain("b")
        >>> blob = original.table.to_bytes()
        >>> resumed = TableBuilder.resume(
        ...     ForwardingTable.from_bytes(blob), weights={"a": 1, "b": 2}, drained=["b"])
        >>> original.set_weight("b", 3) == resumed.set_weight("b", 3)
        True
        """
        if not isinstance(table, ForwardingTable):
            raise ArgumentTypeError(
                f"table is {type(table).__name__}; it must be a ForwardingTable"
            )
        checked = check_weights(weights)
        _check_int_range(min_buckets_per_server, "min_buckets_per_server", 1, 2**MAX_BUCKET_BITS)
        _check_int_range(seed, "seed", 0, MAX_SEED)
        for server in checked:
            table.index_of(server)
        drained_set = set(drained)
        for server in drained_set:
            if server not in checked:
                raise UnknownServer(f"drained names {server!r}, which is not in weights")
        if not any(weight > 0 and server not in drained_set for server, weight in checked.items()):
            raise ConfigError("no server left to take traffic: every weight is 0 or drained")
        builder = cls.__new__(cls)
        builder._protocol = table.protocol
        builder._min_buckets_per_server = min_buckets_per_server
        builder._seed = seed
        builder._hash_seed = table.hash_seed
        builder._fixed_size = not auto_size
        builder._ids = list(table.servers)
        builder._index = {server: i for i, server in enumerate(builder._ids)}
        builder._weights = [checked.get(server, 0.0) for server in builder._ids]
        builder._factors = [1.0] * len(builder._ids)
        builder._drained = [server in drained_set for server in builder._ids]
        builder._removed = [server not in checked for server in builder._ids]
        builder._generation = table.generation
        builder._first = array("I", table.first_hops)
        builder._second = array("I", table.second_hops)
        builder._modified = array("I", table.modified)
        builder._ranks_cache = None
        builder._table = None
        builder._slack = 1.0
        weights_now = builder._effective_weights()
        total = 0.0
        for weight in weights_now:
            total += weight
        tally = Counter(builder._owners())
        worst = max(
            abs(tally.get(i, 0) - len(builder._first) * weights_now[i] / total)
            for i in range(len(builder._ids))
        )
        if worst >= 1.0:
            builder._slack = worst + 1.0  # the next change re-apportions
        builder._forget_unreferenced()
        return builder

    # -- state ---------------------------------------------------------------------------

    @property
    def table(self) -> ForwardingTable:
        """The current table (the same object until the next change).

        Runtime complexity: O(buckets) after a change, O(1) otherwise.
        """
        if self._table is None:
            weights = self._effective_weights()
            self._table = ForwardingTable._trusted(
                tuple(self._ids),
                array("I", self._first),
                array("I", self._second),
                array("I", self._modified),
                protocol=self._protocol,
                generation=self._generation,
                hash_seed=self._hash_seed,
                weights=dict(zip(self._ids, weights, strict=True)),
            )
        return self._table

    @property
    def generation(self) -> int:
        """How many changes the builder has made; 0 for the first table."""
        return self._generation

    @property
    def bucket_count(self) -> int:
        """The current number of buckets."""
        return len(self._first)

    @property
    def protocol(self) -> Protocol:
        """The protocol the tables are built for."""
        return self._protocol

    @property
    def weights(self) -> dict[ServerId, float]:
        """The configured weight of every server in the builder (drained ones included,
        removed ones not)."""
        return {
            server: self._weights[i] for i, server in enumerate(self._ids) if not self._removed[i]
        }

    @property
    def drained(self) -> frozenset[ServerId]:
        """The servers that are drained (known, weight kept, no new connections)."""
        return frozenset(
            server
            for i, server in enumerate(self._ids)
            if self._drained[i] and not self._removed[i]
        )

    @property
    def factors(self) -> dict[ServerId, float]:
        """Each server's load-feedback factor (1.0 until :meth:`balance` changes it)."""
        return {
            server: self._factors[i] for i, server in enumerate(self._ids) if not self._removed[i]
        }

    # -- changes -------------------------------------------------------------------------

    def add(self, server: ServerId, weight: float) -> TableDiff:
        """Add a server with a weight; it takes its share of buckets from the others.

        With an automatic size, the table doubles first if the servers now need more
        buckets (:meth:`resize`, which moves no flow).

        Raises:
            ConfigError: ``server`` is already in the builder, the weight is invalid, or a
                fixed bucket count has no room for another server.

        Runtime complexity: O(buckets log buckets).

        >>> builder = TableBuilder({"a": 1}, buckets=16)
        >>> builder.add("b", 1).moved
        8
        """
        check_server(server)
        value = check_weight(weight, "weight")
        position = self._index.get(server)
        if position is not None and not self._removed[position]:
            raise ConfigError(
                f"server {server!r} is already in the builder; use set_weight to change it"
            )
        active = self._active_count() + 1
        if self._fixed_size and active > self.bucket_count:
            raise ConfigError(
                f"adding {server!r} makes {active} servers for {self.bucket_count} buckets; "
                "resize the table first"
            )
        if value == 0.0 and not any(self._effective_weights()):
            raise ConfigError("adding a server of weight 0 leaves no server with weight > 0")
        before = self.table
        if not self._fixed_size:
            target = self._size_for(active)
            if target > self.bucket_count:
                self._grow(target)
        if position is None:
            self._index[server] = len(self._ids)
            self._ids.append(server)
            self._weights.append(value)
            self._factors.append(1.0)
            self._drained.append(False)
            self._removed.append(False)
        else:
            # Still a second hop somewhere: it keeps its index, so those buckets mean it.
            self._weights[position] = value
            self._factors[position] = 1.0
            self._drained[position] = False
            self._removed[position] = False
        return self._commit(before)

    def remove(self, server: ServerId) -> TableDiff:
        """Remove a server: its buckets go to the others, and it stays as their second hop
        until those buckets change again, so its established connections survive a graceful
        shutdown.

        Raises:
            UnknownServer: ``server`` is not in the builder.
            ConfigError: no server with weight > 0 would remain.

        Runtime complexity: O(buckets log buckets).

        >>> builder = TableBuilder({"a": 1, "b": 1}, buckets=16)
        >>> change = builder.remove("b")
        >>> change.moved, change.broken, builder.table.second_hop_occupancy()
        (8, 0, 0.5)
        """
        position = self._known(server)
        self._require_weight_left(position)
        before = self.table
        self._removed[position] = True
        self._weights[position] = 0.0
        return self._commit(before)

    def drain(self, server: ServerId) -> TableDiff:
        """Stop sending new connections to a server without forgetting it.

        Its buckets go to the others and it stays as their second hop (for ``udp``, in the
        first slot, which UDP consults first), so no established connection breaks. Its weight
        is kept; :meth:`set_weight` brings it back.

        Raises:
            UnknownServer: ``server`` is not in the builder.
            ConfigError: no server with weight > 0 would remain.

        Runtime complexity: O(buckets log buckets).

        >>> builder = TableBuilder({"a": 1, "b": 3}, buckets=16)
        >>> builder.drain("b").broken
        0
        >>> builder.table.bucket_counts()
        {'a': 16, 'b': 0}
        """
        position = self._known(server)
        self._require_weight_left(position)
        before = self.table
        self._drained[position] = True
        return self._commit(before)

    def set_weight(self, server: ServerId, weight: float) -> TableDiff:
        """Change one server's weight (and un-drain it).

        Raises:
            UnknownServer: ``server`` is not in the builder.
            ConfigError: the weight is invalid, or no server with weight > 0 would remain.

        Runtime complexity: O(buckets log buckets).

        >>> builder = TableBuilder({"a": 1, "b": 1}, buckets=16)
        >>> builder.set_weight("b", 3).moved
        4
        """
        return self.set_weights({server: weight})

    def set_weights(self, weights: WeightsInput) -> TableDiff:
        """Change several servers' weights in one generation (and un-drain them).

        Raises:
            UnknownServer: a server that is not in the builder.
            ConfigError: an invalid weight, or no server with weight > 0 would remain.

        Runtime complexity: O(buckets log buckets).

        >>> builder = TableBuilder({"a": 1, "b": 1, "c": 2}, buckets=16)
        >>> builder.set_weights({"a": 2, "c": 1}).moved
        4
        """
        checked = check_weights(weights, "weights", allow_empty=True)
        positions = {self._known(server): value for server, value in checked.items()}
        if not any(
            positions.get(i, self._weights[i]) > 0.0
            and not self._removed[i]
            and (i in positions or not self._drained[i])
            for i in range(len(self._ids))
        ):
            raise ConfigError("these weights leave no server with weight > 0")
        before = self.table
        for position, value in positions.items():
            self._weights[position] = value
            self._drained[position] = False
        return self._commit(before)

    def resize(self, bucket_count: int, *, force: bool = False) -> TableDiff:
        """Change the number of buckets.

        Growing by a factor ``f`` gives bucket ``i + j * n`` the slots of bucket ``i``: flows
        are placed by the hash's low bits, so no flow moves and every server keeps exactly its
        fraction of the traffic. Counts are then within ``f`` buckets of the new, ``f`` times
        larger shares (the same precision as before); the next change re-apportions them.
        Shrinking moves no flow only if every group of buckets that merges agrees (changes
        after a doubling tend to keep the groups whole: ties go to buckets in layout order);
        otherwise it is refused unless ``force``, and the returned diff reports the disruption.

        Raises:
            ConfigError: an invalid size, more servers than buckets, or a disruptive shrink
                without ``force``.

        Runtime complexity: O(buckets).

        >>> builder = TableBuilder({"a": 1, "b": 3}, buckets=16)
        >>> builder.resize(64).moved
        0
        """
        count = check_bucket_count(bucket_count, "bucket_count")
        if self._active_count() > count:
            raise ConfigError(
                f"bucket_count is {count} but there are {self._active_count()} servers; a "
                "table needs at least one bucket per server"
            )
        if count == self.bucket_count:
            return diff(self.table, self.table)
        before = self.table
        if count > self.bucket_count:
            # Every flow keeps its hops and every server its fraction of the traffic, so
            # nothing is re-apportioned: counts stay within `slack` of the larger shares.
            self._slack *= count / self.bucket_count
            self._grow(count)
            return self._commit(before, rebalance=False)
        conflicts = self._merge_conflicts(count)
        if conflicts and not force:
            raise ConfigError(
                f"shrinking to {count} buckets would move flows in {conflicts} of them; "
                "pass force=True to accept that"
            )
        self._slack = max(1.0, self._slack * count / self.bucket_count)
        self._first = self._first[:count]
        self._second = self._second[:count]
        self._modified = self._modified[:count]
        self._ranks_cache = None
        return self._commit(before, rebalance=bool(conflicts))

    def expire_previous_hops(self, *, changed_before: int) -> TableDiff:
        """Forget the previous hop of every bucket that last changed before generation
        ``changed_before``: the connections it held are assumed to have ended.

        Beamer keeps a daisy chain only for as long as old connections live; afterwards the
        second slot is free, a removed server stops being listed, and a later change can put a
        previous hop there again without dropping one. New flows keep their server: for
        ``tcp`` the second hop is cleared; for ``udp`` the owner (the second hop) moves to the
        first slot. ``udp-rr`` buckets have nothing to expire.

        Raises:
            ConfigError: ``changed_before`` is negative or later than the next generation.
            ArgumentTypeError: ``changed_before`` is not an ``int``.

        Runtime complexity: O(buckets).

        >>> builder = TableBuilder({"a": 1, "b": 1}, buckets=16)
        >>> _ = builder.remove("b")
        >>> change = builder.expire_previous_hops(changed_before=builder.generation + 1)
        >>> change.moved, change.previous_hop_dropped, builder.table.servers
        (0, 8, ('a',))
        """
        _check_int_range(changed_before, "changed_before", 0, self._generation + 1)
        before = self.table
        for bucket in range(len(self._first)):
            second = self._second[bucket]
            if second != NO_SERVER and self._modified[bucket] < changed_before:
                if self._protocol == "udp":
                    self._first[bucket] = second
                self._second[bucket] = NO_SERVER
        return self._commit(before, rebalance=False)

    def balance(
        self,
        loads: Mapping[str, float] | Mapping[int, float] | Mapping[ServerId, float],
        *,
        gain: float = 0.5,
        dead_band: float = 0.05,
        max_step: float = 0.25,
        overload: float = 0.9,
        degraded_fraction: float = 0.5,
    ) -> BalanceReport:
        """One round of load feedback: shift buckets from servers above the mean load to
        servers below it, in proportion to how far off they are.

        Each server that takes traffic (weight > 0, not drained) reports a load, a utilisation
        where 1.0 is full. With ``mean`` the average load and ``deviation = (load - mean) /
        mean``, a server outside the dead band (``|deviation| > dead_band``) has its feedback
        factor multiplied by ``1 - gain * deviation``, limited to ``1 +- max_step``; buckets
        then follow the adjusted weights (``weight * factor``), swaps first. Repeated rounds
        converge on equal loads.

        **Data-centre-wide degradation.** When at least ``degraded_fraction`` of the servers
        are at or above ``overload`` at once, the cause is not the split of traffic (a surge,
        a shared dependency); shifting buckets would only chase the overload from server to
        server until everybody was drained, the oscillation Unimog describes. The round then
        holds the table as it is and says so.

        Raises:
            UnknownServer: a load for a server not in the builder.
            ConfigError: a missing load for an active server, a load that is not finite and
                >= 0, or an option out of its range (``0 < gain <= 1``, ``0 <= dead_band``,
                ``0 < max_step < 1``, ``0 < overload``, ``0 < degraded_fraction <= 1``).

        Runtime complexity: O(buckets log buckets).

        >>> builder = TableBuilder({"a": 1, "b": 1}, buckets=64)
        >>> report = builder.balance({"a": 0.8, "b": 0.4})
        >>> report.held, builder.table.bucket_counts()
        (False, {'a': 27, 'b': 37})
        >>> builder.balance({"a": 0.95, "b": 0.97}).reason
        'held: 2 of 2 servers are at or above the overload level 0.9'
        """
        _check_fraction(gain, "gain", low_open=True, high_closed=True)
        _check_float(dead_band, "dead_band", 0.0, math.inf)
        _check_fraction(max_step, "max_step", low_open=True, high_closed=False)
        _check_float(overload, "overload", 0.0, math.inf, low_open=True)
        _check_fraction(degraded_fraction, "degraded_fraction", low_open=True, high_closed=True)
        if not isinstance(loads, Mapping):
            raise ArgumentTypeError(
                f"loads is {type(loads).__name__}; pass a mapping of server id to load"
            )
        observed: dict[int, float] = {}
        given = cast(Mapping[ServerId, float], loads)
        for server, load in given.items():
            observed[self._known(server)] = _check_float(load, f"loads[{server!r}]", 0.0, math.inf)
        active = [i for i in range(len(self._ids)) if self._takes_traffic(i)]
        missing = [self._ids[i] for i in active if i not in observed]
        if missing:
            raise ConfigError(
                f"loads has no value for {missing[0]!r}; every server taking traffic needs one"
            )
        mean = 0.0
        for i in active:
            mean += observed[i]
        mean /= len(active)
        overloaded = sum(1 for i in active if observed[i] >= overload)
        if overloaded >= degraded_fraction * len(active):
            return self._held(
                f"held: {overloaded} of {len(active)} servers are at or above the overload "
                f"level {overload}",
                mean,
                overloaded,
            )
        if mean == 0.0:
            return self._held("held: no load to balance", mean, overloaded)
        adjusted = False
        factors = list(self._factors)
        for i in active:
            deviation = (observed[i] - mean) / mean
            if abs(deviation) > dead_band:
                step = min(max(-gain * deviation, -max_step), max_step)
                factors[i] *= 1.0 + step
                adjusted = True
        if not adjusted:
            return self._held("held: every server is within the dead band", mean, overloaded)
        before = self.table
        self._factors = factors
        change = self._commit(before)
        return BalanceReport(
            held=False,
            reason=f"moved {change.moved} buckets toward the mean load {mean:.3g}",
            mean_load=mean,
            overloaded=overloaded,
            factors=self._active_factors(),
            diff=change,
        )

    # -- invariants ----------------------------------------------------------------------

    def _check(self) -> None:
        """Assert every structural invariant (for tests; cheap enough to call after each step)."""
        count = len(self._first)
        assert count & (count - 1) == 0
        assert 2**MIN_BUCKET_BITS <= count <= 2**MAX_BUCKET_BITS
        assert len(self._second) == len(self._modified) == count
        servers = len(self._ids)
        assert len(self._weights) == len(self._factors) == len(self._drained) == servers
        assert len(self._removed) == servers == len(self._index)
        assert all(self._index[server] == i for i, server in enumerate(self._ids))
        assert all(hop < servers for hop in self._first)
        assert all(hop < servers or hop == NO_SERVER for hop in self._second)
        assert all(generation <= self._generation for generation in self._modified)
        if self._protocol == "udp-rr":
            assert self._second.count(NO_SERVER) == count
        assert all(
            first != second for first, second in zip(self._first, self._second, strict=True)
        ), "a bucket's second hop repeats its first"
        referenced = set(self._first) | set(self._second)
        for i in range(servers):
            if self._removed[i]:
                assert i in referenced, "a removed server is kept without being referenced"
                assert self._weights[i] == 0.0
        weights = self._effective_weights()
        total = 0.0
        for weight in weights:
            total += weight
        assert total > 0
        tally = Counter(self._owners())
        for i in range(servers):
            share = count * weights[i] / total
            held = tally.get(i, 0)
            if self._slack == 1.0:
                within = math.floor(share) <= held <= math.ceil(share)
            else:
                within = abs(held - share) < self._slack + 1e-9
            assert within, f"{self._ids[i]!r} has {held} buckets for a share of {share}"
        if self._fixed_size:
            assert self._active_count() <= count

    # -- internals -----------------------------------------------------------------------

    def _commit(self, before: ForwardingTable, *, rebalance: bool = True) -> TableDiff:
        if self._generation >= _MAX_GENERATION:
            # Buckets record their last change in 32 bits; past that, "least recently
            # modified" would lie.
            raise ConfigError(
                f"this builder has made {_MAX_GENERATION} changes, as many as buckets can "
                "record; start a new builder"
            )
        self._generation += 1
        if rebalance:
            self._rebalance()
            self._slack = 1.0
        self._forget_unreferenced()
        self._table = None
        return diff(before, self.table)

    def _rebalance(self) -> None:
        count = len(self._first)
        servers = len(self._ids)
        owners = self._owners()
        tally = Counter(owners)
        current = array("I", [tally.get(i, 0) for i in range(servers)])
        targets = _kernels.forwarding.apportion(self._effective_weights(), current, count)
        surplus = {i: current[i] - targets[i] for i in range(servers) if current[i] > targets[i]}
        deficit = {i: targets[i] - current[i] for i in range(servers) if targets[i] > current[i]}
        if not surplus:
            return
        ranks = self._ranks()
        modified = self._modified

        def oldest_first(bucket: int) -> tuple[int, int]:
            return (modified[bucket], ranks[bucket])

        if self._protocol != "udp-rr":
            # Swaps: the bucket's other hop is a server that must receive.
            swappable = [
                bucket
                for bucket in range(count)
                if owners[bucket] in surplus and self._other_hop(bucket) in deficit
            ]
            swappable.sort(key=oldest_first)
            for bucket in swappable:
                giver, taker = owners[bucket], self._other_hop(bucket)
                if surplus[giver] and deficit[taker]:
                    self._first[bucket], self._second[bucket] = (
                        self._second[bucket],
                        self._first[bucket],
                    )
                    modified[bucket] = self._generation
                    owners[bucket] = taker
                    surplus[giver] -= 1
                    deficit[taker] -= 1
        held: defaultdict[int, list[int]] = defaultdict(list)
        for bucket in range(count):
            if surplus.get(owners[bucket]):
                held[owners[bucket]].append(bucket)
        freed: list[int] = []
        for giver, buckets in held.items():
            buckets.sort(key=oldest_first)
            freed.extend(buckets[: surplus[giver]])
        # Freed buckets in layout order, dealt out in runs: each receiver gets a run of
        # consecutive positions, which bit reversal spreads evenly over the table.
        freed.sort(key=ranks.__getitem__)
        takers = [taker for taker in sorted(deficit) for _ in range(deficit[taker])]
        assert len(takers) == len(freed)
        for bucket, taker in zip(freed, takers, strict=True):
            self._move(bucket, owners[bucket], taker)

    def _move(self, bucket: int, owner: int, taker: int) -> None:
        if self._protocol == "tcp":
            self._second[bucket] = self._first[bucket]
            self._first[bucket] = taker
        elif self._protocol == "udp":
            # New UDP flows go to the second hop; the previous owner, which holds the
            # bucket's newest flows, moves to the first slot, where UDP looks first.
            self._first[bucket] = owner
            self._second[bucket] = taker
        else:
            self._first[bucket] = taker
        self._modified[bucket] = self._generation

    def _owners(self) -> array[int]:
        if self._protocol != "udp":
            return array("I", self._first)
        return array(
            "I",
            [
                second if second != NO_SERVER else first
                for first, second in zip(self._first, self._second, strict=True)
            ],
        )

    def _other_hop(self, bucket: int) -> int:
        """The hop that is not the owner: the second for tcp, the first for udp (or
        NO_SERVER when the bucket has a single hop)."""
        second = self._second[bucket]
        if second == NO_SERVER:
            return NO_SERVER
        return second if self._protocol == "tcp" else self._first[bucket]

    def _forget_unreferenced(self) -> None:
        """Drop removed servers that no bucket mentions any more, renumbering the rest."""
        gone = [i for i in range(len(self._ids)) if self._removed[i]]
        if not gone:
            return
        referenced = set(self._first) | set(self._second)
        drop = {i for i in gone if i not in referenced}
        if not drop:
            return
        keep = [i for i in range(len(self._ids)) if i not in drop]
        renumber = {old: new for new, old in enumerate(keep)}
        renumber[NO_SERVER] = NO_SERVER
        self._first = array("I", map(renumber.__getitem__, self._first))
        self._second = array("I", map(renumber.__getitem__, self._second))
        self._ids = [self._ids[i] for i in keep]
        self._weights = [self._weights[i] for i in keep]
        self._factors = [self._factors[i] for i in keep]
        self._drained = [self._drained[i] for i in keep]
        self._removed = [self._removed[i] for i in keep]
        self._index = {server: i for i, server in enumerate(self._ids)}

    def _grow(self, count: int) -> None:
        factor = count // len(self._first)
        self._first = self._first * factor
        self._second = self._second * factor
        self._modified = self._modified * factor
        self._ranks_cache = None

    def _merge_conflicts(self, count: int) -> int:
        """How many buckets of a table shrunk to ``count`` would merge disagreeing buckets."""
        conflicts = 0
        for bucket in range(count):
            hops = (self._first[bucket], self._second[bucket])
            for other in range(bucket + count, len(self._first), count):
                if (self._first[other], self._second[other]) != hops:
                    conflicts += 1
                    break
        return conflicts

    def _ranks(self) -> array[int]:
        """Each bucket's position in the layout sequence: its bit-reversed index, rotated
        like the initial layout. Ties in bucket choice are broken by it."""
        count = len(self._first)
        if self._ranks_cache is None or self._ranks_cache[0] != count:
            bits = count.bit_length() - 1
            rotation = self._rotation(count)
            reverse = [int(f"{value:08b}"[::-1], 2) for value in range(256)]
            ranks = array("I", bytes(4 * count))
            for bucket in range(count):
                flipped = (
                    reverse[bucket & 0xFF] << 24
                    | reverse[(bucket >> 8) & 0xFF] << 16
                    | reverse[(bucket >> 16) & 0xFF] << 8
                    | reverse[bucket >> 24]
                ) >> (32 - bits)
                ranks[bucket] = (flipped - rotation) % count
            self._ranks_cache = (count, ranks)
        return self._ranks_cache[1]

    def _rotation(self, count: int) -> int:
        return hash_key(b"lbkit.forwarding.layout", seed=self._seed) % count

    def _size_for(self, servers: int) -> int:
        wanted: int = max(servers * self._min_buckets_per_server, 1 << MIN_BUCKET_BITS)
        count = 1 << (wanted - 1).bit_length()
        if count > 2**MAX_BUCKET_BITS:
            raise ConfigError(
                f"{servers} servers at min_buckets_per_server={self._min_buckets_per_server} "
                f"need {wanted} buckets, more than the 2**{MAX_BUCKET_BITS} a table can have"
            )
        return count

    def _effective_weights(self) -> array[float]:
        """Configured weight times load-feedback factor; 0 for drained and removed servers."""
        return array(
            "d",
            [
                weight * factor if weight > 0.0 and not drained and not removed else 0.0
                for weight, factor, drained, removed in zip(
                    self._weights, self._factors, self._drained, self._removed, strict=True
                )
            ],
        )

    def _takes_traffic(self, position: int) -> bool:
        return (
            not self._removed[position]
            and not self._drained[position]
            and self._weights[position] > 0.0
        )

    def _active_count(self) -> int:
        return sum(1 for removed in self._removed if not removed)

    def _active_factors(self) -> dict[ServerId, float]:
        return {
            self._ids[i]: self._factors[i] for i in range(len(self._ids)) if self._takes_traffic(i)
        }

    def _known(self, server: object) -> int:
        try:
            position: int = self._index[server]  # type: ignore[index]
        except (KeyError, TypeError):
            raise UnknownServer(f"server {server!r} is not in the builder") from None
        if self._removed[position]:
            raise UnknownServer(f"server {server!r} was removed from the builder")
        return position

    def _require_weight_left(self, leaving: int) -> None:
        if not any(self._takes_traffic(i) for i in range(len(self._ids)) if i != leaving):
            raise ConfigError(
                f"{self._ids[leaving]!r} is the last server with weight > 0; it cannot leave"
            )

    def _held(self, reason: str, mean: float, overloaded: int) -> BalanceReport:
        table = self.table
        return BalanceReport(
            held=True,
            reason=reason,
            mean_load=mean,
            overloaded=overloaded,
            factors=self._active_factors(),
            diff=diff(table, table),
        )


def _check_int_range(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be an int")
    if not low <= value <= high:
        raise ConfigError(f"{name} is {value}; it must be in {low}..{high}")
    return value


def _check_float(
    value: object, name: str, low: float, high: float, *, low_open: bool = False
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentTypeError(f"{name} is {type(value).__name__}; it must be a number")
    number = float(value)
    too_low = number <= low if low_open else number < low
    if not math.isfinite(number) or too_low or number > high:
        bound = f"> {low:g}" if low_open else f">= {low:g}"
        raise ConfigError(f"{name} is {value!r}; it must be finite and {bound}")
    return number


def _check_fraction(value: object, name: str, *, low_open: bool, high_closed: bool) -> float:
    number = _check_float(value, name, 0.0, math.inf, low_open=low_open)
    if number > 1.0 or (number == 1.0 and not high_closed):
        low_rule = "> 0" if low_open else ">= 0"
        high_rule = "<= 1" if high_closed else "< 1"
        raise ConfigError(f"{name} is {value!r}; it must be {low_rule} and {high_rule}")
    return number
