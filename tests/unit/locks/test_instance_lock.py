"""The instance lock: one holder per file across processes, named in the refusal, re-entrant
within a process, and gone with its process (even a SIGKILLed one)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shinrai.instance_lock import (
    InstanceLock,
    InstanceLocked,
    directory_lock,
    namespace_lock,
    read_holder,
)

pytestmark = pytest.mark.unit

HOLD = """
import sys, time
from pathlib import Path
from shinrai.instance_lock import InstanceLock
InstanceLock(Path(sys.argv[1]), "the test namespace").acquire(command="holder", port=4242)
print("held", flush=True)
time.sleep(60)
"""


def _holder(path: Path) -> subprocess.Popen[str]:
    """Another process holding the lock on ``path`` (prints ``held`` once it does)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def _end(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def test_a_second_process_is_refused_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "ns.lock"
    holder = _holder(path)
    try:
        with pytest.raises(InstanceLocked) as refused:
            InstanceLock(path, "the test namespace").acquire(command="second", port=1)
        message = str(refused.value)
        assert f"holder (pid {holder.pid}, port 4242)" in message
        assert "the test namespace" in message
        assert "\n" not in message
        assert refused.value.holder is not None
        assert refused.value.holder.pid == holder.pid
    finally:
        _end(holder)


def test_the_lock_dies_with_a_killed_holder(tmp_path: Path) -> None:
    path = tmp_path / "ns.lock"
    holder = _holder(path)
    os.kill(holder.pid, signal.SIGKILL)
    _end(holder)
    lock = InstanceLock(path, "the test namespace").acquire(command="next", port=None)
    try:
        recorded = read_holder(path)
        assert recorded is not None
        assert recorded.pid == os.getpid()
        assert recorded.command == "next"
        assert recorded.port is None
    finally:
        lock.release()


def test_reentrant_in_one_process_until_the_last_release(tmp_path: Path) -> None:
    path = tmp_path / "dir.lock"
    outer = InstanceLock(path, "x").acquire(command="demo", port=8088)
    inner = InstanceLock(path, "x").acquire(command="worker", port=9)
    inner.record_port(9464, "worker")  # not the first taker: the demo's record stays
    recorded = read_holder(path)
    assert recorded is not None
    assert (recorded.command, recorded.port) == ("demo", 8088)
    inner.release()
    assert outer.held
    assert read_holder(path) is not None
    outer.release()
    assert read_holder(path) is None  # emptied on the last release
    # Free again: another process takes it at once.
    probe = subprocess.run(
        [sys.executable, "-c", HOLD.replace("time.sleep(60)", ""), str(path)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    assert "held" in probe.stdout


def test_record_port_rewrites_the_record(tmp_path: Path) -> None:
    lock = InstanceLock(tmp_path / "w.lock", "x").acquire(command="shinrai worker", port=0)
    try:
        lock.record_port(40123, "shinrai worker")
        recorded = read_holder(tmp_path / "w.lock")
        assert recorded is not None
        assert recorded.port == 40123
    finally:
        lock.release()


def test_lock_files_lie_beside_directories_and_per_namespace(tmp_path: Path) -> None:
    data = tmp_path / "demo-worker"
    lock = directory_lock(data, "the worker data directory")
    assert lock.path == tmp_path / ".demo-worker.lock"  # survives emptying the directory
    assert str(data) in lock.what
    a = namespace_lock("127.0.0.1:19092", ".demo", lock_dir=tmp_path)
    b = namespace_lock("127.0.0.1:19093", ".demo", lock_dir=tmp_path)
    c = namespace_lock("127.0.0.1:19092", ".test", lock_dir=tmp_path)
    assert len({a.path, b.path, c.path}) == 3
    assert a.path.parent == tmp_path
    assert "/" not in a.path.name[:-5]


def test_an_unreadable_record_still_refuses(tmp_path: Path) -> None:
    path = tmp_path / "ns.lock"
    holder = _holder(path)
    try:
        path.write_text("not json")
        time.sleep(0.05)
        with pytest.raises(InstanceLocked, match="another process is already running"):
            InstanceLock(path, "the test namespace").acquire(command="second")
    finally:
        _end(holder)
