"""Docs are part of the feature: every public name documents itself with a doctested example
and its complexity, and the examples pass on both kernel paths."""

from __future__ import annotations

import doctest
import inspect
from types import ModuleType
from typing import Any

import pytest

import lbkit
import lbkit.errors
import lbkit.forwarding
import lbkit.forwarding.builder
import lbkit.forwarding.disruption
import lbkit.forwarding.maglev
import lbkit.forwarding.redirector
import lbkit.forwarding.table
import lbkit.hashing
import lbkit.health
import lbkit.health.events
import lbkit.health.group
import lbkit.health.hysteresis
import lbkit.health.pools
import lbkit.health.results
import lbkit.steering
import lbkit.steering.accounting
import lbkit.steering.affinity
import lbkit.steering.balancer
import lbkit.steering.ewma
import lbkit.steering.keys
import lbkit.steering.model
import lbkit.steering.pickers
import lbkit.steering.policies
import lbkit.steering.request
import lbkit.steering.rules
import lbkit.steering.simulate
import lbkit.subsetting
import lbkit.subsetting.baselines
import lbkit.subsetting.indices
import lbkit.subsetting.loops
import lbkit.subsetting.metrics
import lbkit.subsetting.ring
import lbkit.subsetting.vdc
import lbkit.waitingroom
import lbkit.waitingroom.allocator
import lbkit.waitingroom.config
import lbkit.waitingroom.cookies
import lbkit.waitingroom.distribution
import lbkit.waitingroom.estimate
import lbkit.waitingroom.redis_store
import lbkit.waitingroom.room
import lbkit.waitingroom.simulation
import lbkit.waitingroom.store

PUBLIC_MODULES = [
    lbkit,
    lbkit.errors,
    lbkit.hashing,
    lbkit.health,
    lbkit.health.results,
    lbkit.health.group,
    lbkit.forwarding.table,
    lbkit.forwarding.builder,
    lbkit.forwarding.disruption,
    lbkit.forwarding.redirector,
    lbkit.forwarding.maglev,
    lbkit.subsetting,
    lbkit.subsetting.vdc,
    lbkit.subsetting.indices,
    lbkit.subsetting.loops,
    lbkit.subsetting.ring,
    lbkit.subsetting.baselines,
    lbkit.subsetting.metrics,
    lbkit.health.events,
    lbkit.health.hysteresis,
    lbkit.health.pools,
    lbkit.steering,
    lbkit.steering.model,
    lbkit.steering.request,
    lbkit.steering.keys,
    lbkit.steering.ewma,
    lbkit.steering.policies,
    lbkit.steering.pickers,
    lbkit.steering.accounting,
    lbkit.steering.affinity,
    lbkit.steering.rules,
    lbkit.steering.balancer,
    lbkit.steering.simulate,
    lbkit.waitingroom,
    lbkit.waitingroom.config,
    lbkit.waitingroom.allocator,
    lbkit.waitingroom.distribution,
    lbkit.waitingroom.cookies,
    lbkit.waitingroom.estimate,
    lbkit.waitingroom.store,
    lbkit.waitingroom.redis_store,
    lbkit.waitingroom.room,
    lbkit.waitingroom.simulation,
]


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda module: module.__name__)
def test_doctests_pass(module: ModuleType, impl: Any) -> None:
    """Every >>> example in the module and its public names runs and prints what it shows."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = finder.find(module, module.__name__, globs=vars(module).copy())
    assert tests, f"{module.__name__} has no examples"
    for test in tests:
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda module: module.__name__)
def test_public_functions_show_an_example_and_their_complexity(module: ModuleType) -> None:
    """Each public function's docstring has a doctest and a 'Runtime complexity:' line."""
    for name in getattr(module, "__all__", []):
        value = getattr(module, name)
        if inspect.isfunction(value) and value.__module__ == module.__name__:
            doc = inspect.getdoc(value) or ""
            assert ">>>" in doc, f"{module.__name__}.{name} has no example"
            assert "Runtime complexity:" in doc, f"{module.__name__}.{name} states no complexity"
        elif inspect.isclass(value):
            assert inspect.getdoc(value), f"{module.__name__}.{name} has no docstring"
