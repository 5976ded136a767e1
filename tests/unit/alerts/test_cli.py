"""``shinrai alerts schema`` and ``shinrai alerts verify``."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from shinrai.cli import main
from sinks.alerts.payload import payload_json_schema
from sinks.alerts.signing import sign

pytestmark = pytest.mark.unit

ENV = {"SHINRAI_ALERTS__SIGNING_SECRET": "cli-secret"}


def test_schema_prints_the_payload_schema() -> None:
    result = CliRunner().invoke(main, ["alerts", "schema"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == payload_json_schema()


def test_verify_accepts_a_good_signature_and_rejects_a_tampered_body() -> None:
    body = b'{"payload_version":1}'
    ts = int(time.time())
    args = ["alerts", "verify", "--timestamp", str(ts), "--signature", sign("cli-secret", ts, body)]
    ok = CliRunner().invoke(main, [*args, "-"], input=body, env=ENV)
    assert (ok.exit_code, ok.stdout.strip()) == (0, "valid")
    bad = CliRunner().invoke(main, [*args, "-"], input=body + b" ", env=ENV)
    assert bad.exit_code == 1
    assert "signature mismatch" in bad.stderr
