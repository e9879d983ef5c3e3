"""Modules that moved, still importable by their old names with a
``DeprecationWarning``: ``import csapp.sweep`` gives ``csapp.cli.sweep``
itself (the same module object, so patching one patches the other).

The finder sits at the end of ``sys.meta_path``: it is asked only about
names no real file answers, and only for the names below.
"""

from __future__ import annotations

import sys
import warnings
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, cast

if TYPE_CHECKING:
    from importlib.abc import Loader

MOVED: Dict[str, str] = {
    "csapp.copying": "csapp.cli.copying",
    "csapp.demo": "csapp.cli.demo",
    "csapp.hostinfo": "csapp.cli.hostinfo",
    "csapp.sweep": "csapp.cli.sweep",
    "csapp.servers.aio": "csapp.servers.coroutines",
}


class MovedModuleFinder:
    """A meta path finder for ``MOVED``'s old names."""

    @staticmethod
    def find_spec(fullname: str, path: Optional[Sequence[str]] = None, target: Any = None) -> Any:
        new = MOVED.get(fullname)
        if new is None:
            return None
        from importlib.machinery import ModuleSpec

        return ModuleSpec(fullname, cast("Loader", _AliasLoader(new)))


class _AliasLoader:
    """Loads an old name as the module of its new one."""

    def __init__(self, new: str) -> None:
        self.new = new
        self.spec: Any = None

    def create_module(self, spec: Any) -> Any:
        import importlib

        # stacklevel 2: the importing line (warnings skips importlib's own frames).
        warnings.warn(
            f"{spec.name} is deprecated: it moved to {self.new}", DeprecationWarning, stacklevel=2
        )
        module = importlib.import_module(self.new)
        self.spec = module.__spec__
        return module

    def exec_module(self, module: Any) -> None:
        # The import system stamped the alias spec on the real module: undo it.
        module.__spec__ = self.spec


def install() -> None:
    """Put the finder at the end of ``sys.meta_path`` (once)."""
    if not any(isinstance(f, type) and f is MovedModuleFinder for f in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder)
