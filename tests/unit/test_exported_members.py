"""``jobpipe.__all__`` lists exactly the public names the package defines (as httpx checks)."""

from __future__ import annotations

import types

import jobpipe
import jobpipe.devstack

INCLUDED_PRIVATE_MEMBERS = {"__version__"}


def public_members(module: types.ModuleType) -> set[str]:
    """Names a user can import: not private, not a submodule, defined by jobpipe."""
    out = set()
    for name, value in vars(module).items():
        if name.startswith("_") and name not in INCLUDED_PRIVATE_MEMBERS:
            continue
        if isinstance(value, types.ModuleType):
            continue
        origin = getattr(value, "__module__", module.__name__)
        if isinstance(origin, str) and not origin.startswith("jobpipe"):
            continue  # imported helpers such as importlib.metadata.version
        out.add(name)
    return out


def test_all_imports_are_exported() -> None:
    assert set(jobpipe.__all__) == public_members(jobpipe)
    assert len(jobpipe.__all__) == len(set(jobpipe.__all__))


def test_every_exported_name_resolves() -> None:
    for module in (jobpipe, jobpipe.devstack):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_devstack_exports_match_its_public_names() -> None:
    assert set(jobpipe.devstack.__all__) == public_members(jobpipe.devstack)
