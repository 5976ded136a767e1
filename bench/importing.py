"""Importing archives: messages/s and peak memory of backfill's parse phase on real e-mail.

Run: ``.venv/bin/python -m bench.importing [--copies N] [--repeat 3] [--workers W]``.

The input is every shared e-mail sample (``../shared/data/email``: the Apache archives, then the
usrp-users messages as mbox records) concatenated into one mbox, ``--copies`` times over (a
bigger archive, same messages: peak memory should not follow its size). Each run is a fresh
process running ``shinrai.jobs.backfill.collect`` with format ``mbox`` (parse, fan-out, distinct
events: what ``backfill`` does before the engine) with a directory declaring every poster a
client and the vendors' domains staff. Reported: messages (stdlib mbox records) per wall
second, and peak RSS of the run and of its worker processes. Wall time on a shared machine
depends on its load, which is printed beside each figure: compare runs made back to back.

``--code DIR`` runs the children against another checkout (e.g. an export of the commit before
a change), so before and after are measured by the same script on the same machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import mailbox
import os
import re
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from email import message_from_bytes
from email.utils import parseaddr
from pathlib import Path
from typing import Any

SHARED_EMAIL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "email"
_ADDRESS = re.compile(r"[a-z0-9._%+'-]+@[a-z0-9-]+(\.[a-z0-9-]+)+")
STAFF = ("apache.org", "ettus.com", "ni.com", "emerson.com")  # the samples' PROVENANCE.md


def build_archive(out: Path, copies: int = 1) -> Path:
    """Write the shared samples, concatenated ``copies`` times, as one mbox at ``out``."""
    parts: list[bytes] = []
    for box in sorted((SHARED_EMAIL / "apache-ponymail").glob("*.mbox")):
        data = box.read_bytes()
        parts.append((data if data.endswith(b"\n") else data + b"\n") + b"\n")
    tar = SHARED_EMAIL / "usrp-users" / "usrp-users-2021Q1.raw-eml.tar.gz"
    with tarfile.open(tar) as archive:
        for member in sorted(archive.getmembers(), key=lambda m: m.name):
            handle = archive.extractfile(member) if member.isfile() else None
            if handle is None:
                continue
            data = re.sub(rb"(?m)^(>*From )", rb">\1", handle.read())  # mboxrd quoting
            parts.append(
                b"From usrp-users@lists.ettus.com Fri Jan  1 00:00:00 2021\n"
                + (data if data.endswith(b"\n") else data + b"\n")
                + b"\n"
            )
    with out.open("wb") as dst:
        for _ in range(copies):
            for part in parts:
                dst.write(part)
    return out


def message_count(path: Path) -> int:
    """Records of ``path`` as the stdlib's ``mailbox.mbox`` counts them."""
    box = mailbox.mbox(path, create=False)
    try:
        return len(box)
    finally:
        box.close()


def _directory(path: Path) -> Any:
    """Every From address outside the vendors' domains is a client."""
    from schemas.directory import Client, ClientDirectory, StaffDirectory

    posters: set[str] = set()
    with path.open("rb") as file:
        for line in file:
            if line[:5].lower() == b"from:":
                _, addr = parseaddr(str(message_from_bytes(line).get("From", "")))
                addr = addr.lower()
                if _ADDRESS.fullmatch(addr) and not addr.endswith(tuple("@" + d for d in STAFF)):
                    posters.add(addr)
    clients = tuple(
        Client(
            client_id="c" + hashlib.sha256(a.encode()).hexdigest()[:16],
            name=a,
            addresses=(a,),
            owner="owner@example.org",
        )
        for a in sorted(posters)
    )
    return ClientDirectory(clients=clients, staff=StaffDirectory(domains=STAFF))


def child(path: Path) -> dict[str, float]:
    """One measured run in this process: the parse phase of ``backfill``."""
    from producers.resolution import Resolver
    from shinrai.jobs.backfill import BackfillSummary, collect

    resolver = Resolver(_directory(path))
    summary = BackfillSummary()
    started = time.perf_counter()
    cpu = time.process_time()
    events = collect([path], "mbox", resolver, {}, summary)
    seconds = time.perf_counter() - started
    own = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "seconds": seconds,
        "main_cpu_seconds": time.process_time() - cpu,
        "worker_cpu_seconds": workers.ru_utime + workers.ru_stime,
        "results": summary.read,
        "events": len(events),
        "rejected": summary.rejected,
        "peak_rss_mb": own.ru_maxrss / 1024,
        "worker_peak_rss_mb": workers.ru_maxrss / 1024,
    }


def loadavg() -> str:
    """The 1-minute load average (other users of a shared machine)."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def run_once(path: Path, code: Path) -> dict[str, float]:
    """One fresh process measuring ``path`` with the checkout at ``code``."""
    # This file runs in the child by path (runpy), so ``code`` alone provides the project.
    script = (
        "import json, runpy, sys; from pathlib import Path; "
        f"child = runpy.run_path({str(Path(__file__).resolve())!r})['child']; "
        "print(json.dumps(child(Path(sys.argv[1]))))"
    )
    env = {**os.environ, "PYTHONPATH": str(code)}
    out = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        env=env,
        cwd=str(code),
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def measure(copies: int = 1, repeat: int = 3, code: Path | None = None) -> dict[str, float]:
    """Median (and range) of ``repeat`` runs on the samples concatenated ``copies`` times."""
    code = code or Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        path = build_archive(Path(tmp) / "samples.mbox", copies)
        messages = message_count(path)
        runs = []
        for _ in range(repeat):
            before = loadavg()
            run = run_once(path, code)
            run["rate"] = messages / run["seconds"]
            print(
                f"  {messages} msgs: {run['rate']:,.0f} msg/s, {run['seconds']:.2f} s, "
                f"rss {run['peak_rss_mb']:.0f} MB (workers {run['worker_peak_rss_mb']:.0f} MB), "
                f"cpu main {run['main_cpu_seconds']:.2f} s workers "
                f"{run['worker_cpu_seconds']:.2f} s, load {before}→{loadavg()}",
                flush=True,
            )
            runs.append(run)
        rates = [r["rate"] for r in runs]
        return {
            "import_messages": float(messages),
            "import_archive_mb": path.stat().st_size / 2**20,
            "import_messages_per_s": statistics.median(rates),
            "import_messages_per_s_min": min(rates),
            "import_messages_per_s_max": max(rates),
            "import_peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
            "import_worker_peak_rss_mb": statistics.median(r["worker_peak_rss_mb"] for r in runs),
            "import_results": runs[0]["results"],
            "import_events": runs[0]["events"],
            "import_rejected": runs[0]["rejected"],
        }


def main(argv: list[str] | None = None) -> int:
    """Print the measurement for each ``--copies`` value."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, nargs="+", default=[1])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--code", type=Path, default=None, help="checkout to measure")
    args = parser.parse_args(argv)
    for copies in args.copies:
        print(f"samples x{copies} ({args.code or 'this checkout'}):", flush=True)
        result = measure(copies, args.repeat, args.code)
        print(json.dumps({k: round(v, 1) for k, v in result.items()}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
