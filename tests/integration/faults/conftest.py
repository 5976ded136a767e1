"""Fault tests reuse the pipeline tests' fixtures: private topics, a signed loopback receiver."""

from tests.integration.pipeline.conftest import pipeline, receiver
from tests.integration.pipeline.test_oracle import processes

__all__ = ["pipeline", "processes", "receiver"]
