"""Shared set-up of the producer tests."""

from __future__ import annotations

import warnings


def quiet_kafka_import() -> None:
    """Import kafka-python once with its import-time DeprecationWarning silenced.

    kafka-python 3.0.12 calls ``importlib.resources.read_text`` (deprecated) while defining its
    protocol classes at import time; with warnings-as-errors the first import would fail. Once
    imported, later imports are cached and raise nothing. (The lasting fix is an
    ``ignore::DeprecationWarning:kafka.*`` entry in pyproject's filterwarnings.)
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import kafka  # noqa: F401


quiet_kafka_import()
