"""lbkit.steering.accounting: outstanding requests, connections, latency and error EWMAs per
key, exact under many threads, and every rejected input.

RequestStats calls no kernel, so these tests do not take the ``impl`` fixture: there is one
path to test."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from lbkit.errors import ArgumentTypeError, ConfigError, InvalidArgument
from lbkit.steering.accounting import KeyStats, RequestStats
from lbkit.steering.ewma import Ewma


def run_threads(count: int, work: Callable[[int], None]) -> None:
    """Start ``count`` threads on ``work(thread_number)`` at once (a barrier) and join them,
    re-raising the first failure."""
    barrier = threading.Barrier(count)
    failures: list[BaseException] = []

    def body(number: int) -> None:
        try:
            barrier.wait()
            work(number)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=body, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


# --- counts and averages ----------------------------------------------------------------------


def test_begin_and_end_count_outstanding_requests() -> None:
    """begin adds one outstanding request, end removes one; totals count started, completed
    and failed requests."""
    stats = RequestStats()
    for _ in range(3):
        stats.begin("web-1")
    stats.begin("web-2")
    stats.end("web-1", now=0.0)
    stats.end("web-1", ok=False, now=1.0)
    assert (stats.outstanding("web-1"), stats.outstanding("web-2")) == (1, 1)
    assert stats.stats("web-1") == KeyStats("web-1", 1, 0, 3, 2, 1, None, stats.error_rate("web-1"))


def test_connections_are_counted_apart_from_requests() -> None:
    """connect/disconnect move the connection count and leave requests alone."""
    stats = RequestStats()
    stats.connect("db")
    stats.connect("db")
    stats.begin("db")
    stats.disconnect("db")
    assert (stats.connections("db"), stats.outstanding("db")) == (1, 1)


def test_latency_is_a_time_aware_ewma() -> None:
    """The latency follows an Ewma with the configured tau, fed by every end with a latency
    and left alone by an end without one."""
    stats = RequestStats(tau=5.0)
    reference = Ewma(tau=5.0)
    for now, latency in [(0.0, 0.2), (1.0, 0.4), (3.0, None), (7.5, 0.1)]:
        stats.begin("a")
        stats.end("a", latency=latency, now=now)
        if latency is not None:
            reference.update(latency, now=now)
    assert stats.latency("a") == reference.value


def test_peak_latency_replaces_at_once() -> None:
    """With peak=True a slower sample replaces the estimate; a faster one decays in."""
    stats = RequestStats(tau=10.0, peak=True)
    for now, latency in [(0.0, 0.1), (1.0, 0.5)]:
        stats.begin("a")
        stats.end("a", latency=latency, now=now)
    assert stats.latency("a") == 0.5
    stats.begin("a")
    stats.end("a", latency=0.1, now=11.0)
    weight = math.exp(-1.0)
    assert stats.latency("a") == pytest.approx(weight * 0.5 + (1 - weight) * 0.1, rel=1e-12)


def test_error_rate_is_an_ewma_of_failures() -> None:
    """Each end samples 1.0 (failed) or 0.0 (ok) into an EWMA with error_tau."""
    stats = RequestStats(tau=100.0, error_tau=2.0)
    reference = Ewma(tau=2.0)
    for now, ok in [(0.0, True), (1.0, False), (2.0, False), (6.0, True)]:
        stats.begin("a")
        stats.end("a", ok=ok, now=now)
        reference.update(0.0 if ok else 1.0, now=now)
    assert stats.error_rate("a") == reference.value
    assert 0.0 < reference.value < 1.0  # type: ignore[operator]
    assert (stats.tau, stats.error_tau, stats.peak) == (100.0, 2.0, False)
    assert RequestStats(tau=3.0).error_tau == 3.0


def test_unseen_keys_read_as_idle() -> None:
    """A key never seen has no outstanding requests, no connections and no averages, and is not
    listed."""
    stats = RequestStats()
    assert (stats.outstanding("x"), stats.connections("x")) == (0, 0)
    assert (stats.latency("x"), stats.error_rate("x")) == (None, None)
    assert stats.stats("x") == KeyStats("x", 0, 0, 0, 0, 0, None, None)
    assert stats.keys() == ()
    assert stats.snapshot() == ()


def test_snapshot_lists_keys_in_first_seen_order() -> None:
    """snapshot() returns one frozen record per key, in the order keys were first seen."""
    stats = RequestStats()
    stats.connect(3)
    stats.begin("b")
    stats.begin(3)
    stats.end("b", latency=0.25, now=2.0)
    records = stats.snapshot()
    assert [record.key for record in records] == [3, "b"]
    assert records[0] == KeyStats(3, 1, 1, 1, 0, 0, None, None)
    assert records[1] == KeyStats("b", 0, 0, 1, 1, 0, 0.25, 0.0)
    with pytest.raises(AttributeError):
        records[0].outstanding = 5  # type: ignore[misc]


def test_discard_forgets_only_idle_keys() -> None:
    """discard drops a key with nothing in flight, keeps a busy one, and reports which."""
    stats = RequestStats()
    stats.begin("a")
    stats.connect("b")
    stats.begin("c")
    stats.end("c", now=0.0)
    assert (stats.discard("a"), stats.discard("b"), stats.discard("c")) == (False, False, True)
    assert stats.discard("never") is False
    assert stats.keys() == ("a", "b")


def test_an_earlier_now_counts_as_the_latest_sample_time() -> None:
    """An end whose now precedes the key's latest sample (threads read clocks before the lock)
    is folded in at that latest time instead of being rejected."""
    stats = RequestStats(tau=10.0, peak=True)
    stats.begin("a")
    stats.begin("a")
    stats.end("a", latency=0.1, now=5.0)
    stats.end("a", latency=0.3, ok=False, now=4.0)
    assert stats.latency("a") == 0.3
    assert stats.stats("a").completed == 2


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["begin", "end", "connect", "disconnect"]),
            st.sampled_from(["a", "b", 1]),
            st.booleans(),
        ),
        max_size=60,
    )
)
def test_counts_match_a_naive_model(operations: list[tuple[str, Any, bool]]) -> None:
    """Any sequence of calls leaves the counts a plain dictionary model predicts; calls the
    model rejects raise and change nothing."""
    stats = RequestStats()
    outstanding: dict[Any, int] = {}
    connections: dict[Any, int] = {}
    errors: dict[Any, int] = {}
    for step, (operation, key, ok) in enumerate(operations):
        if operation == "begin":
            stats.begin(key)
            outstanding[key] = outstanding.get(key, 0) + 1
        elif operation == "connect":
            stats.connect(key)
            connections[key] = connections.get(key, 0) + 1
        elif operation == "end":
            if outstanding.get(key, 0) == 0:
                with pytest.raises(InvalidArgument):
                    stats.end(key, ok=ok, now=float(step))
            else:
                stats.end(key, ok=ok, now=float(step))
                outstanding[key] -= 1
                errors[key] = errors.get(key, 0) + (not ok)
        elif connections.get(key, 0) == 0:
            with pytest.raises(InvalidArgument):
                stats.disconnect(key)
        else:
            stats.disconnect(key)
            connections[key] -= 1
        stats._check()
    for key in ("a", "b", 1):
        assert stats.outstanding(key) == outstanding.get(key, 0)
        assert stats.connections(key) == connections.get(key, 0)
        assert stats.stats(key).errors == errors.get(key, 0)


class StatsMachine(RuleBasedStateMachine):
    """Random begin/end/connect/disconnect/discard steps against a model, checking the
    invariants and every count after each step."""

    def __init__(self) -> None:
        super().__init__()
        self.stats = RequestStats(tau=2.0)
        self.started: dict[str, int] = {}
        self.completed: dict[str, int] = {}
        self.connections: dict[str, int] = {}
        self.now = 0.0

    def busy(self, key: str) -> bool:
        return self.started.get(key, 0) > self.completed.get(key, 0) or bool(
            self.connections.get(key, 0)
        )

    @rule(key=st.sampled_from("abc"))
    def begin(self, key: str) -> None:
        self.stats.begin(key)
        self.started[key] = self.started.get(key, 0) + 1
        self.completed.setdefault(key, 0)
        self.connections.setdefault(key, 0)

    @precondition(lambda self: any(self.started[k] > self.completed[k] for k in self.started))
    @rule(data=st.data(), latency=st.floats(0.0, 5.0), dt=st.floats(-1.0, 3.0))
    def end(self, data: st.DataObject, latency: float, dt: float) -> None:
        key = data.draw(
            st.sampled_from(sorted(k for k in self.started if self.started[k] > self.completed[k]))
        )
        self.now += dt  # sometimes backwards: an earlier clock reading
        self.stats.end(key, latency=latency, now=self.now)
        self.completed[key] += 1

    @rule(key=st.sampled_from("abc"))
    def connect(self, key: str) -> None:
        self.stats.connect(key)
        self.connections[key] = self.connections.get(key, 0) + 1
        self.started.setdefault(key, 0)
        self.completed.setdefault(key, 0)

    @precondition(lambda self: any(self.connections.values()))
    @rule(data=st.data())
    def disconnect(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(k for k, n in self.connections.items() if n)))
        self.stats.disconnect(key)
        self.connections[key] -= 1

    @rule(key=st.sampled_from("abc"))
    def discard(self, key: str) -> None:
        known = key in self.started
        forgotten = self.stats.discard(key)
        assert forgotten == (known and not self.busy(key))
        if forgotten:
            del self.started[key], self.completed[key], self.connections[key]

    @invariant()
    def matches_model(self) -> None:
        self.stats._check()
        assert set(self.stats.keys()) == set(self.started)
        for key in self.started:
            record = self.stats.stats(key)
            assert record.started == self.started[key]
            assert record.completed == self.completed[key]
            assert record.outstanding == self.started[key] - self.completed[key]
            assert record.connections == self.connections[key]


TestStatsMachine = StatsMachine.TestCase


# --- threads -------------------------------------------------------------------------------


@pytest.mark.usefixtures("fast_switching")
def test_concurrent_begin_and_end_lose_no_update() -> None:
    """Eight threads hammering begin/end, connect/disconnect on shared keys leave exact
    totals: nothing outstanding, every request started and completed counted once."""
    stats = RequestStats()
    keys = ["a", "b", "c", "d"]
    rounds = 3000

    def work(number: int) -> None:
        for step in range(rounds):
            key = keys[(number + step) % len(keys)]
            stats.begin(key)
            stats.connect(key)
            stats.end(key, latency=0.001 * (step % 10), ok=step % 7 != 0, now=float(step))
            stats.disconnect(key)

    run_threads(8, work)
    stats._check()
    records = {record.key: record for record in stats.snapshot()}
    assert sum(record.started for record in records.values()) == 8 * rounds
    assert sum(record.completed for record in records.values()) == 8 * rounds
    failed_per_thread = sum(1 for step in range(rounds) if step % 7 == 0)
    assert sum(record.errors for record in records.values()) == 8 * failed_per_thread
    for key in keys:
        assert records[key].outstanding == 0
        assert records[key].connections == 0
        assert records[key].started == 8 * rounds // len(keys)


@pytest.mark.usefixtures("fast_switching")
def test_concurrent_begins_count_exactly() -> None:
    """Eight threads each beginning 5,000 requests on one key leave exactly 40,000
    outstanding (a lost update would leave fewer)."""
    stats = RequestStats()

    def work(number: int) -> None:
        for _ in range(5000):
            stats.begin("hot")

    run_threads(8, work)
    assert stats.outstanding("hot") == 40_000


@pytest.mark.usefixtures("fast_switching")
def test_concurrent_excess_ends_never_go_negative() -> None:
    """With 4,000 requests begun and eight threads each trying 1,000 ends, exactly 4,000 ends
    succeed, the others raise, and the count stops at 0."""
    stats = RequestStats()
    for _ in range(4000):
        stats.begin("a")
    succeeded = [0] * 8
    refused = [0] * 8

    def work(number: int) -> None:
        for step in range(1000):
            try:
                stats.end("a", now=float(step))
            except InvalidArgument:
                refused[number] += 1
            else:
                succeeded[number] += 1

    run_threads(8, work)
    assert sum(succeeded) == 4000
    assert sum(refused) == 4000
    assert stats.outstanding("a") == 0
    assert stats.stats("a").completed == 4000
    stats._check()


@pytest.mark.usefixtures("fast_switching")
def test_snapshots_are_consistent_under_concurrent_updates() -> None:
    """A snapshot taken while other threads update never shows a torn record: outstanding is
    always started minus completed, and never negative."""
    stats = RequestStats()
    stop = threading.Event()
    torn: list[KeyStats] = []

    def reader() -> None:
        while not stop.is_set():
            for record in stats.snapshot():
                if record.outstanding != record.started - record.completed or (
                    record.outstanding < 0
                ):
                    torn.append(record)

    watcher = threading.Thread(target=reader)
    watcher.start()
    try:

        def work(number: int) -> None:
            for step in range(2000):
                stats.begin(number % 3)
                stats.end(number % 3, now=float(step))

        run_threads(6, work)
    finally:
        stop.set()
        watcher.join()
    assert torn == []
    assert [record.outstanding for record in stats.snapshot()] == [0, 0, 0]


# --- errors ---------------------------------------------------------------------------------


def test_end_without_begin_is_an_error_naming_the_key() -> None:
    """An end with nothing outstanding raises InvalidArgument naming the key and changes
    nothing (the count never goes negative)."""
    stats = RequestStats()
    with pytest.raises(
        InvalidArgument,
        match=r"^end\('web-1'\) has no matching begin\('web-1'\); 'web-1' has no outstanding requests$",
    ):
        stats.end("web-1", now=0.0)
    stats.begin("web-1")
    stats.end("web-1", now=0.0)
    with pytest.raises(InvalidArgument, match=r"^end\('web-1'\) has no matching begin"):
        stats.end("web-1", now=1.0)
    assert stats.stats("web-1") == KeyStats("web-1", 0, 0, 1, 1, 0, None, 0.0)


def test_disconnect_without_connect_is_an_error_naming_the_key() -> None:
    """A disconnect with no open connection raises InvalidArgument naming the key."""
    stats = RequestStats()
    stats.begin(7)
    with pytest.raises(
        InvalidArgument,
        match=r"^disconnect\(7\) has no matching connect\(7\); 7 has no open connections$",
    ):
        stats.disconnect(7)
    assert stats.connections(7) == 0


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        (
            {"latency": -0.5, "now": 0.0},
            InvalidArgument,
            r"^latency is -0\.5; latencies must be finite and >= 0 seconds$",
        ),
        (
            {"latency": math.inf, "now": 0.0},
            InvalidArgument,
            r"^latency is inf; latencies must be finite and >= 0 seconds$",
        ),
        (
            {"latency": math.nan, "now": 0.0},
            InvalidArgument,
            r"^latency is nan; latencies must be finite and >= 0 seconds$",
        ),
        (
            {"latency": "1", "now": 0.0},
            ArgumentTypeError,
            r"^latency is str; it must be a number or None$",
        ),
        ({"ok": None, "now": 0.0}, ArgumentTypeError, r"^ok is NoneType; it must be a bool$"),
        ({"now": math.nan}, InvalidArgument, r"^now is nan; times must be finite$"),
        ({"now": "0"}, ArgumentTypeError, r"^now is str; it must be a number$"),
    ],
)
def test_end_rejects_bad_arguments_without_changing_anything(
    arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Bad latency, ok or now raise before anything is counted."""
    stats = RequestStats()
    stats.begin("a")
    with pytest.raises(error, match=message):
        stats.end("a", **arguments)
    assert stats.stats("a") == KeyStats("a", 1, 0, 1, 0, 0, None, None)


def test_unhashable_keys_are_rejected() -> None:
    """Keys must be hashable, in every method."""
    stats = RequestStats()
    bad: Any = [1]
    message = r"^key is list; keys must be hashable$"
    calls: list[Callable[[], object]] = [
        lambda: stats.begin(bad),
        lambda: stats.end(bad, now=0.0),
        lambda: stats.connect(bad),
        lambda: stats.disconnect(bad),
        lambda: stats.outstanding(bad),
        lambda: stats.stats(bad),
        lambda: stats.discard(bad),
    ]
    for call in calls:
        with pytest.raises(ArgumentTypeError, match=message):
            call()


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"tau": 0.0}, ConfigError, r"^tau is 0\.0; it must be finite and > 0 seconds$"),
        ({"tau": math.inf}, ConfigError, r"^tau is inf; it must be finite and > 0 seconds$"),
        (
            {"error_tau": -1.0},
            ConfigError,
            r"^error_tau is -1\.0; it must be finite and > 0 seconds$",
        ),
        ({"tau": "10"}, ArgumentTypeError, r"^tau is str; it must be a number$"),
        ({"peak": 1}, ArgumentTypeError, r"^peak is int; it must be a bool$"),
    ],
)
def test_bad_options_are_rejected(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    """tau and error_tau must be finite and > 0, peak a bool."""
    with pytest.raises(error, match=message):
        RequestStats(**options)
