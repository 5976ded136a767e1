"""A regular (non-editable) wheel is a complete Shinrai, and its import names are its own.

The wheel is built with pip from a clean copy of the tree and installed with its dependencies
into a fresh venv (no system site-packages), pinned to the versions of the environment running
the tests, so the check is about packaging, not about a dependency released yesterday. The
installed ``shinrai`` runs from a folder outside the tree with no ``PYTHONPATH``: whatever it needs
at run time (SQL, JSON Schemas, the broker's pom) must come from the wheel.

Speed and offline runs: pip's own cache stays empty here (the registry's answers are not
cacheable), so the build requirements and the dependency wheels are kept in a wheelhouse,
``~/.cache/shinrai/test-wheelhouse`` (about 300 MB). Build and install first try it alone
(``--no-index``); only when something is missing are the missing files downloaded into it.
Installing without byte-compiling (``--no-compile``) took a third of the time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from importlib import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner

from schemas.base import decode, encode
from schemas.facts import Fact, FactKind
from schemas.jsonschema import expected_files
from shinrai.cli import main
from shinrai.local_kafka import pinned_version
from shinrai.settings import user_cache_dir
from tests.shared_data import REPO_ROOT
from tests.unit.engine.builders import IN, OUT, at, email

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

DIST = "shinrai"
# Never copied into the build tree: VCS data, environments, caches, build output, local data.
_SKIP_NAMES = {
    ".git", ".venv", ".data", "build", "dist", "__pycache__", ".mypy_cache", ".ruff_cache",
    ".pytest_cache", ".cache", ".run", "artifacts", "results",
}  # fmt: skip


def _ignore(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if n in _SKIP_NAMES or n.endswith((".egg-info", ".pyc"))}


def _package_roots() -> list[str]:
    """The top-level import packages pyproject declares (``name`` entries of the find include)."""
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted(name for name in include if "." not in name and "*" not in name)


@dataclass(frozen=True)
class Installed:
    """The built wheel and the venv it is installed in."""

    wheel: Path
    source: Path  # the clean copy the wheel was built from
    venv: Path
    build_s: float
    install_s: float

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def shinrai(self) -> Path:
        return self.venv / "bin" / "shinrai"


def _run(
    cmd: list[str | Path], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


# Run by the venv's python: where each package is imported from, and the shipped JSON Schemas.
_PROBE = """
import importlib, json, sys
import schemas.jsonschema as js
files = {name: importlib.import_module(name).__file__ for name in sys.argv[1:]}
print(json.dumps({"files": files, "schemas": js.shipped_files()}))
"""


def _offline_first(
    cmd: list[str | Path], wheelhouse: Path, fetch: list[str | Path], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """Run pip ``cmd`` from the wheelhouse alone; if that fails, download ``fetch`` into it, retry."""
    offline = [*cmd, "--no-index", "--find-links", wheelhouse]
    done = _run(offline, cwd=cwd)
    if done.returncode == 0:
        return done
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", wheelhouse]
    fetched = _run([*pip, *fetch], cwd=cwd)
    assert fetched.returncode == 0, fetched.stdout[-3000:] + fetched.stderr[-3000:]
    return _run(offline, cwd=cwd)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """Build the wheel with pip and install it (with its dependencies) into a fresh venv."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    shutil.copytree(REPO_ROOT, source, ignore=_ignore)
    wheelhouse = user_cache_dir("test-wheelhouse")
    wheelhouse.mkdir(parents=True, exist_ok=True)
    build_requires = tomllib.loads((source / "pyproject.toml").read_text(encoding="utf-8"))[
        "build-system"
    ]["requires"]
    started = time.monotonic()
    built = _offline_first(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", root / "dist", source],
        wheelhouse,
        build_requires,
        cwd=root,
    )
    build_s = time.monotonic() - started
    assert built.returncode == 0, built.stdout + built.stderr
    # A packaging problem (deprecated metadata, data files outside a package) is a warning first.
    assert not re.search(r"\w+Warning\b", built.stdout + built.stderr), built.stdout + built.stderr
    (wheel,) = (root / "dist").glob("shinrai-*.whl")

    venv = root / "venv"
    constraints = root / "constraints.txt"
    pins = sorted(
        f"{d.metadata['Name']}=={d.version}"
        for d in metadata.distributions()
        if d.metadata["Name"] and d.metadata["Name"].lower() != DIST
    )
    constraints.write_text("\n".join(pins) + "\n", encoding="utf-8")
    started = time.monotonic()
    made = _run([sys.executable, "-m", "venv", venv])
    assert made.returncode == 0, made.stderr
    done = _offline_first(
        [venv / "bin" / "python", "-m", "pip", "install", "--no-compile", "-c", constraints, wheel],
        wheelhouse,
        ["-c", constraints, wheel],
        cwd=root,
    )
    (wheelhouse / wheel.name).unlink(missing_ok=True)  # `pip download` copies the wheel itself
    install_s = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # Seen in the test output with -s or -rP: the cost of this check on the machine at hand.
    print(f"wheel build {build_s:.1f}s, venv + install {install_s:.1f}s")
    yield Installed(wheel, source, venv, build_s, install_s)
    shutil.rmtree(venv, ignore_errors=True)  # about 1 GB (chdb, pyarrow): not left in /tmp


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without anything that could point back into the checkout."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"} and not k.startswith("SHINRAI_")
    }
    env["XDG_CACHE_HOME"] = str(tmp / "xdg-cache")
    env.update(extra)
    return env


def _write_events(path: Path) -> None:
    """Four clients write at 10:00 UTC; the even ones get an answer 20 minutes later."""
    start = at("2026-03-03T10:00")
    lines: list[bytes] = []
    for c in range(4):
        t = start + timedelta(minutes=c)
        lines.append(encode(email(f"in{c}", t, IN, client=f"c{c}", thread=f"t{c}")))
        if c % 2 == 0:
            reply = email(f"out{c}", t + timedelta(minutes=20), OUT, client=f"c{c}", thread=f"t{c}")
            lines.append(encode(reply))
    path.write_bytes(b"\n".join(lines) + b"\n")


def test_installed_wheel_migrates_queries_and_replays(installed: Installed, tmp_path: Path) -> None:
    work = tmp_path / "work"  # outside the source tree: nothing can be read from the checkout
    work.mkdir()
    env = _env(tmp_path)

    # Every package is imported from the venv, and the JSON Schemas ship with it.
    probe = _run([installed.python, "-c", _PROBE, *_package_roots()], cwd=work, env=env)
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    for name, file in found["files"].items():
        assert Path(file).is_relative_to(installed.venv), f"{name} imported from {file}"
    assert found["schemas"] == expected_files()

    # Migrations: with no URL set, the embedded data goes under the working directory.
    migrations = sorted(p.name for p in (REPO_ROOT / "sinks/clickhouse/sql/migrations").iterdir())
    first = _run([installed.shinrai, "db", "migrate"], cwd=work, env=env)
    assert first.returncode == 0, first.stderr
    applied = [line.split()[1] for line in first.stdout.splitlines() if line.startswith("applied")]
    assert [f"{name}.sql" for name in applied] == migrations
    assert (work / ".data" / "chdb").is_dir()
    chdb_env = _env(tmp_path, SHINRAI_CLICKHOUSE__URL=f"chdb://{work / '.data' / 'chdb'}")
    second = _run([installed.shinrai, "db", "migrate"], cwd=work, env=chdb_env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("up to date"), second.stdout

    # Named queries: each shipped one is known, and one runs against the migrated schema.
    unknown = _run([installed.shinrai, "db", "query", "no_such_query"], cwd=work, env=chdb_env)
    assert unknown.returncode != 0
    queries = sorted(p.stem for p in (REPO_ROOT / "sinks/clickhouse/sql/queries").iterdir())
    assert f"known: {', '.join(queries)}" in unknown.stderr, unknown.stderr
    attainment = _run(
        [installed.shinrai, "db", "query", "client_attainment",
         "-p", "since=2026-03-01", "-p", "until=2026-04-01"],
        cwd=work, env=chdb_env,
    )  # fmt: skip
    assert attainment.returncode == 0, attainment.stderr
    assert attainment.stdout == ""  # no facts stored yet, but the query ran

    # Replay: the installed engine gives byte for byte the facts of the source tree.
    events = work / "events.jsonl"
    _write_events(events)
    until = "2026-03-04T10:00:00+00:00"
    replay = _run(
        [installed.shinrai, "replay", "events.jsonl", "-o", "facts.jsonl", "--until", until],
        cwd=work, env=env,
    )  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    facts = [decode(Fact, line) for line in (work / "facts.jsonl").read_bytes().splitlines()]
    kinds = [f.kind for f in facts]
    assert kinds.count(FactKind.OBLIGATION_OPENED) == 4
    assert kinds.count(FactKind.FULFILLED) == 2
    assert kinds.count(FactKind.BREACHED) == 2
    here = CliRunner().invoke(
        main, ["replay", str(events), "-o", str(tmp_path / "here.jsonl"), "--until", until]
    )
    assert here.exit_code == 0, here.output
    assert (tmp_path / "here.jsonl").read_bytes() == (work / "facts.jsonl").read_bytes()


def test_installed_local_kafka_reads_its_shipped_files(
    installed: Installed, tmp_path: Path
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = tmp_path / "kafka"
    env = _env(tmp_path, SHINRAI_LOCAL_KAFKA__DATA_DIR=str(data))
    status = _run(
        [installed.shinrai, "kafka", "status", "--port", str(port)], cwd=tmp_path, env=env
    )
    assert status.returncode == 1, status.stdout + status.stderr  # not answering: exit 1
    assert f"version={pinned_version()} address=127.0.0.1:{port} pid=None" in status.stdout
    assert f"log={data / 'run' / str(port) / 'kafka.log'}" in status.stdout


def test_wheel_holds_exactly_the_packages_and_their_import_names_are_ours(
    installed: Installed,
) -> None:
    roots = _package_roots()
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = wheel.namelist()
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/RECORD"))
        record = wheel.read(f"{info}/RECORD").decode().splitlines()
        top_level = set(wheel.read(f"{info}/top_level.txt").decode().split())
    files = {line.rsplit(",", 2)[0] for line in record if line}
    shipped = {f for f in files if not f.startswith(info + "/")}
    record_tops = {f.split("/")[0].removesuffix(".py") for f in shipped}
    assert record_tops == top_level == set(roots)

    # Every file of those packages (code, subpackages, package data) and nothing else: no
    # tests/, bench/ or deploy/, and no package missing from the find configuration.
    source = {
        p.relative_to(installed.source).as_posix()
        for root in roots
        for p in (installed.source / root).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert shipped == source

    # No other distribution, in the wheel's venv or in the environment running the tests,
    # provides one of these import names.
    probe = _run(
        [installed.python, "-c",
         "import json, importlib.metadata as m; print(json.dumps(m.packages_distributions()))"],
        env=_env(installed.venv.parent),
        cwd=installed.venv.parent,  # not the checkout: its editable-install egg-info would count
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    in_venv: dict[str, list[str]] = json.loads(probe.stdout)
    here = metadata.packages_distributions()
    for name in sorted(top_level):
        assert in_venv.get(name) == [DIST], f"{name}: provided by {in_venv.get(name)}"
        # Set, not list: an editable install is seen twice (its dist-info and the checkout's
        # egg-info); what matters is that no other distribution provides the name.
        assert set(here.get(name, [DIST])) == {DIST}, f"{name}: also provided by {here[name]}"
