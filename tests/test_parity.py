"""The pure/fast contract: every compiled module mirrors a reference module, name for name,
signature for signature (DESIGN.md §3.3)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path
from types import ModuleType

import pytest

import lbkit._fast
import lbkit._pure
from lbkit import _kernels


def public_functions(module: ModuleType) -> dict[str, object]:
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("_")
        and callable(value)
        and not inspect.isclass(value)
        and getattr(value, "__module__", module.__name__) == module.__name__
    }


def shape(function: object) -> list[tuple[str, object, object]]:
    """Parameter names, kinds and defaults: what a caller can observe of a signature."""
    signature = inspect.signature(function)  # type: ignore[arg-type]
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


def test_every_pure_module_is_a_registered_kernel() -> None:
    """_kernels.KERNELS lists exactly the modules of lbkit._pure."""
    pure = {info.name for info in pkgutil.iter_modules(lbkit._pure.__path__)}
    assert pure == {f"_{name}" for name in _kernels.KERNELS}


def test_every_pyx_has_a_pure_twin() -> None:
    """A .pyx exists only beside a _pure module of the same name (and the other way round)."""
    pyx = {path.stem for path in Path(lbkit._fast.__path__[0]).glob("*.pyx")}
    pure = {info.name for info in pkgutil.iter_modules(lbkit._pure.__path__)}
    assert pyx == pure


@pytest.mark.parametrize("name", _kernels.KERNELS)
def test_compiled_module_mirrors_pure(name: str, fast_kernels: dict[str, ModuleType]) -> None:
    """Same public functions, same parameter names, kinds and defaults, same first doc line."""
    pure = public_functions(importlib.import_module(f"lbkit._pure._{name}"))
    fast = public_functions(fast_kernels[name])
    assert sorted(fast) == sorted(pure)
    for function in pure:
        assert shape(fast[function]) == shape(pure[function]), function
        # Cython's embedsignature puts the C signature first; the summary line follows it.
        summary = (inspect.getdoc(pure[function]) or "").splitlines()[0]
        assert summary in (inspect.getdoc(fast[function]) or "").splitlines(), function


def public_classes(module: ModuleType) -> dict[str, type]:
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("_")
        and inspect.isclass(value)
        and value.__module__ == module.__name__
    }


def public_constants(module: ModuleType) -> dict[str, object]:
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("_") and isinstance(value, (int, float, str, bytes))
    }


@pytest.mark.parametrize("name", _kernels.KERNELS)
def test_compiled_classes_and_constants_mirror_pure(
    name: str, fast_kernels: dict[str, ModuleType]
) -> None:
    """Same public classes with the same public methods, and equal module constants."""
    pure_module = importlib.import_module(f"lbkit._pure._{name}")
    fast_module = fast_kernels[name]
    pure, fast = public_classes(pure_module), public_classes(fast_module)
    assert sorted(fast) == sorted(pure)
    for class_name, pure_class in pure.items():
        methods = {
            m for m in dir(pure_class) if not m.startswith("_") and callable(getattr(pure_class, m))
        }
        fast_methods = {m for m in dir(fast[class_name]) if not m.startswith("_")}
        assert fast_methods == methods, class_name
    assert public_constants(fast_module) == public_constants(pure_module)
