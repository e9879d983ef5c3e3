"""The package's shape as a user meets it: what ``import csapp`` loads, every
exported name resolving, one meaning per name, and the old names that moved
still importable with a ``DeprecationWarning``."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import warnings

import pytest

import csapp
import csapp.aio
import csapp.cli
import csapp.servers
import csapp.sockets
from csapp._moved import MOVED


def modules_after(code: str) -> list[str]:
    """The ``csapp`` modules a fresh interpreter holds after running ``code``."""
    names = "sorted(m for m in sys.modules if m.startswith('csapp'))"
    probe = f"{code}\nimport json, sys\nprint(json.dumps({names}))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    loaded: list[str] = json.loads(out.splitlines()[-1])
    return loaded


def test_import_csapp_loads_the_rio_layer_not_the_servers() -> None:
    loaded = modules_after("import csapp")
    assert "csapp._rio" in loaded and "csapp.socketfile" in loaded
    assert not [m for m in loaded if m.startswith(("csapp.servers", "csapp.aio", "csapp.cli"))]


def test_a_server_name_loads_the_servers_on_first_use() -> None:
    loaded = modules_after("import csapp\nassert callable(csapp.serve_event)")
    assert "csapp.servers" in loaded and "csapp.servers.event" in loaded


def test_every_exported_name_resolves() -> None:
    for name in csapp.__all__:
        assert getattr(csapp, name) is not None, name
    assert set(csapp.__all__) <= set(dir(csapp))
    assert csapp.serve_asyncio is csapp.servers.serve_asyncio
    assert set(csapp.servers.__all__) == csapp._SERVER_NAMES  # every server name, lazily
    assert csapp.SERVERS["asyncio"] is csapp.serve_asyncio
    with pytest.raises(AttributeError, match="no attribute 'serve_nothing'"):
        csapp.serve_nothing  # noqa: B018


def test_names_with_one_meaning() -> None:
    # csapp.echo is the function (its module is csapp.echo_service); the
    # asyncio server mode is csapp.servers.coroutines, not another "aio".
    assert callable(csapp.echo) and csapp.echo.__module__ == "csapp.echo_service"
    assert callable(csapp.aio.echo) and csapp.aio.echo.__module__ == "csapp.aio.echo_service"
    assert csapp.serve_asyncio.__module__ == "csapp.servers"
    coroutines = importlib.import_module("csapp.servers.coroutines")
    assert hasattr(coroutines, "serve_asyncio")
    assert csapp.cli.main.__module__ == "csapp.cli.commands"
    assert not hasattr(csapp.sockets, "__all__") or "getaddrinfo" not in csapp.sockets.__all__


def test_the_twins_of_both_layers_are_chosen_the_same_way() -> None:
    for layer in (csapp, csapp.aio):
        assert set(layer.IMPLEMENTATIONS) <= {"c", "python"}
        assert "python" in layer.IMPLEMENTATIONS
        assert layer.IMPLEMENTATION in layer.IMPLEMENTATIONS
    python_buffer = csapp.aio.IMPLEMENTATIONS["python"]
    assert python_buffer.__name__ == "csapp.aio._buffer_py"
    assert csapp.IMPLEMENTATIONS["python"].__name__ == "csapp._rio_py"


def test_old_names_still_work_and_warn() -> None:
    with pytest.warns(DeprecationWarning, match="csapp.sockets.address_info"):
        old_lookup = csapp.sockets.getaddrinfo  # type: ignore[attr-defined]
    assert old_lookup is csapp.sockets.address_info
    with pytest.warns(DeprecationWarning, match=r"IMPLEMENTATIONS\[name\].StreamBuffer"):
        buffers = csapp.aio.BUFFERS  # type: ignore[attr-defined]
    assert buffers == {
        name: module.StreamBuffer for name, module in csapp.aio.IMPLEMENTATIONS.items()
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the current names do not warn
        assert csapp.sockets.address_info is not None
        assert csapp.aio.IMPLEMENTATIONS


@pytest.mark.parametrize("old,new", sorted(MOVED.items()))
def test_a_moved_module_imports_by_its_old_name(old: str, new: str) -> None:
    """The old name gives the new module itself, with a warning that names the
    importing line; the new name alone never warns."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module = importlib.import_module(new)
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated: it moved to {new}") as seen:
        assert __import__(old, fromlist=["__name__"]) is module  # as an import statement
    assert seen[0].filename == __file__
    assert module.__spec__.name == new  # the alias left the module as it was
    assert sys.modules[old] is module


def test_the_command_line_is_a_package_apart() -> None:
    loaded = modules_after("import csapp.cli")
    assert {"csapp.cli.commands", "csapp.cli.demo", "csapp.cli.hostinfo"} <= set(loaded)
    assert callable(csapp.cli.main)
    library = [
        name
        for name in modules_after("import csapp, csapp.aio, csapp.servers")
        if name.startswith("csapp.cli")
    ]
    assert not library, "the library imports the command line"


def test_a_missing_name_is_an_attribute_error() -> None:
    for module in (csapp.sockets, csapp.aio):
        with pytest.raises(AttributeError):
            module.no_such_name  # noqa: B018
