"""Every Python example in the docs runs: the ```python blocks of README.md,
docs/GUIDE.md and docs/CONTRACT.md are executed, and their ```pycon blocks
are checked as doctests (each ``>>>`` line's output must match), so a renamed
function breaks a test, not a reader. Run over both implementations.
"""

from __future__ import annotations

import doctest
import re
from pathlib import Path
from types import ModuleType
from typing import Dict, List, Tuple

import pytest

import csapp
import csapp.aio
import csapp.aio.reader

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "docs" / "GUIDE.md", ROOT / "docs" / "CONTRACT.md"]
FENCE = re.compile(r"^```(python|pycon)[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def blocks() -> List[Tuple[str, str, str]]:
    """(id, language, code) of every Python block of the docs that exist."""
    found = []
    for path in DOCS:
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{path.name}:{line}", match.group(1), match.group(2)))
    return found


BLOCKS = blocks()


def test_the_docs_have_examples() -> None:
    assert any(name.startswith("README.md") for name, _, _ in BLOCKS)
    assert any(name.startswith("GUIDE.md") for name, _, _ in BLOCKS)


@pytest.mark.parametrize("name,language,code", BLOCKS, ids=[b[0] for b in BLOCKS])
def test_example_runs(
    rio: ModuleType, monkeypatch: pytest.MonkeyPatch, name: str, language: str, code: str
) -> None:
    # The example's csapp uses the implementation under test.
    for attr in (
        "Rio",
        "rio_readn",
        "rio_readinto",
        "rio_writen",
        "rio_readinitb",
        "rio_readlineb",
        "rio_readnb",
    ):
        monkeypatch.setattr(csapp, attr, getattr(rio, attr))
    twin = "c" if rio is csapp.IMPLEMENTATIONS.get("c") else "python"
    if twin in csapp.aio.IMPLEMENTATIONS:
        monkeypatch.setattr(
            csapp.aio.reader, "StreamBuffer", csapp.aio.IMPLEMENTATIONS[twin].StreamBuffer
        )
    namespace: Dict[str, object] = {"__name__": "__docs__"}
    if language == "python":
        exec(compile(code, name, "exec"), namespace)
        return
    parser = doctest.DocTestParser()
    test = parser.get_doctest(code, namespace, name, name, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    failures: List[str] = []
    runner.run(test, out=failures.append)
    assert runner.failures == 0, "".join(failures)
