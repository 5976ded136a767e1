"""The secured broker (SASL/PLAIN and mutual-TLS listeners), started once per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .secure_broker import SecureBroker, run_secure_broker


@pytest.fixture(scope="session")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    """A second local broker from the same jars; a failed start fails the tests (never skips)."""
    yield from run_secure_broker(tmp_path_factory.mktemp("secure-kafka"))
