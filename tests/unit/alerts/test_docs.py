"""The receiver examples in docs/alerts.md are code that must keep working."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from sinks.alerts.signing import sign
from tests.shared_data import REPO_ROOT

pytestmark = pytest.mark.unit

DOC = REPO_ROOT / "docs" / "alerts.md"


def python_blocks() -> list[str]:
    """Every ```python block of docs/alerts.md, in order."""
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_stdlib_verifier_in_the_docs_agrees_with_the_helper() -> None:
    (snippet,) = [b for b in python_blocks() if "def valid(" in b]
    namespace: dict[str, Any] = {}
    exec(compile(snippet, str(DOC), "exec"), namespace)
    valid: Callable[..., bool] = namespace["valid"]
    now = str(int(time.time()))
    body = b'{"payload_version":1}'
    header = sign(b"s3cret", int(now), body)
    assert valid(b"s3cret", now, body, header)
    assert valid(b"s3cret", now, body, f"v1=00, {header}")
    assert not valid(b"s3cret", now, body + b" ", header)
    assert not valid(b"other", now, body, header)
    assert not valid(b"s3cret", str(int(now) - 301), body, sign(b"s3cret", int(now) - 301, body))


def test_documented_test_vector_matches() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert sign("whsec_test", 1_700_000_000, b'{"a":1}') in text
