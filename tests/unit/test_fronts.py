"""Each sub-package's front (its __init__.py) exports objects, never one of its modules by
accident: a module named like one of its functions would hide the function."""

import importlib
import pkgutil
import types

import pytest

FRONTS = [
    "areas.files",
    "areas.index",
    "areas.pull",
    "areas.stager",
    "areas.watch",
    "areas.serve",
    "peers.wire",
    "peers.identity",
    "peers.daemon",
    "peers.client",
    "realize_site.lib",
]


@pytest.mark.parametrize("name", FRONTS)
def test_a_front_exports_what_it_lists_and_no_module(name):
    front = importlib.import_module(name)
    for exported in front.__all__:
        assert not isinstance(getattr(front, exported), types.ModuleType), exported


@pytest.mark.parametrize("name", FRONTS)
def test_no_module_defines_a_name_of_its_own(name):
    """`from package import x` must mean one thing: module x, or the function x."""
    front = importlib.import_module(name)
    for info in pkgutil.iter_modules(front.__path__):
        module = importlib.import_module(f"{name}.{info.name}")
        assert getattr(module, info.name, None) is None, f"{name}.{info.name}.{info.name}"
