"""What the two example-proxy test modules share: examples/proxy loaded by path (it is not a
package), the room's manual clock, and the constants of their scenarios. Not a test module."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "proxy"
#: A minute's start (2023-11-15T12:00:00Z): the room's clock starts one second into it.
NOON = 1_700_049_600.0
COOKIE = "__lbkit_wr"  # the default name; over plain HTTP it carries no __Host- prefix


def load_example(name: str, filename: str) -> ModuleType:
    """A module of examples/proxy by path, loaded once per test process."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLE / filename)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


example = load_example("lbkit_example_proxy", "lbkit_proxy.py")


class ManualClock:
    """The waiting room's clock: stands still until the test moves it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
