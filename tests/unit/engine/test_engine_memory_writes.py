"""The thread memory and the duplicate window change only through ``ClientState``'s own methods.

The two-generation state layout (``ClientState.to_parts``) writes only what changed since the
last merge: ``remember``, ``set_answered``, ``pop_answered``, ``set_chased`` and the ``touched``
set ``engine.threads`` takes record it. A write straight into ``state.answered[...]`` (or
``links``, ``chased_threads``, ``seen``, ``seen_order``) elsewhere would be lost for a client
with an old generation once it is stored and loaded again: this test names such a line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
MEMORY = {"answered", "links", "chased_threads", "seen", "seen_order"}
MUTATORS = {
    "add", "append", "appendleft", "clear", "discard", "extend", "pop", "popitem",
    "popleft", "remove", "setdefault", "update",
}  # fmt: skip
OWNER = ROOT / "engine" / "state.py"  # the methods that keep the young part


def _memory_attr(node: ast.AST) -> str | None:
    """``x.answered`` (any ``x``) -> "answered"; else None."""
    if isinstance(node, ast.Attribute) and node.attr in MEMORY:
        return node.attr
    return None


def direct_writes(source: str) -> list[tuple[int, str]]:
    """(line, what) of every write into a memory container through the attribute itself."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign | ast.Delete):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Subscript) and (name := _memory_attr(target.value)):
                found.append((node.lineno, f"{name}[...] written"))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in MUTATORS
            and (name := _memory_attr(node.func.value))
        ):
            found.append((node.lineno, f"{name}.{node.func.attr}()"))
    return found


def test_the_guard_sees_the_writes_it_is_for() -> None:
    sample = (
        "st.answered[t] = at\n"
        "del state.links[k]\n"
        "s.chased_threads.pop(t, None)\n"
        "s.seen.add(i)\n"
        "x = st.answered.get(t)\n"  # a read: fine
        "st.set_answered(t, at)\n"  # the method: fine
    )
    assert [line for line, _ in direct_writes(sample)] == [1, 2, 3, 4]


def test_no_module_writes_the_memory_past_the_state_methods() -> None:
    offenders = []
    for folder in ("engine", "streams", "shinrai", "sinks", "producers", "dashboard"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == OWNER:
                continue
            for line, what in direct_writes(path.read_text(encoding="utf-8")):
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert not offenders, "use ClientState's methods (two-generation layout):\n" + "\n".join(
        offenders
    )
