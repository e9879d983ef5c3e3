"""pytest plugin (``-p pytest_only_c``): run only the compiled implementation.

Deselects every test parametrized with ``rio="python"`` (the ``rio`` fixture
of tests/conftest.py), so a slow tool (valgrind) spends its time on
``csapp._rio_c``. Tests without the ``rio`` parameter are kept. With
``CSAPP_ONLY_C_STRICT=1`` those are dropped too.
"""

from __future__ import annotations

import os
from typing import List

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    strict = os.environ.get("CSAPP_ONLY_C_STRICT", "") not in ("", "0")
    keep: List[pytest.Item] = []
    drop: List[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        impl = callspec.params.get("rio") if callspec is not None else None
        if impl == "c" or (impl is None and not strict):
            keep.append(item)
        else:
            drop.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
