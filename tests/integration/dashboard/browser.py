"""Headless Chromium (Debian's package) for the dashboard tests: DOM dumps and screenshots.

Screenshots go to ``.artifacts/screenshots/`` at the repository root (git-ignored; the folder
for CI to keep as a build artifact). Without chromium the tests fail in CI (CI=true) and skip elsewhere,
naming the install script.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path

from tests.shared_data import require

REPO = Path(__file__).resolve().parents[3]
SCREENSHOTS = REPO / ".artifacts" / "screenshots"


def chromium() -> str:
    """The chromium binary (fails in CI, skips elsewhere when it is missing)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    require(path is not None, "chromium is not installed; run deploy/ci/install-chromium.sh")
    assert path is not None
    return path


def run(
    args: list[str], profile: Path, *, lang: str | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run headless chromium with ``args`` and a fresh profile in ``profile``."""
    base = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
    ]
    if lang is not None:
        base.append(f"--accept-lang={lang}")
    return subprocess.run([*base, *args], capture_output=True, timeout=120, check=False)


def dump(url: str, profile: Path, *, lang: str | None = None) -> str:
    """The DOM of ``url`` after its scripts ran."""
    done = run(["--virtual-time-budget=3000", "--dump-dom", url], profile, lang=lang)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout.decode()


def screenshot(
    url: str,
    name: str,
    profile: Path,
    *,
    height: int = 1800,
    lang: str | None = None,
    min_bytes: int = 20_000,
) -> Path:
    """A PNG of ``url`` saved as ``.artifacts/screenshots/<name>.png``; checked to be a page."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{name}.png"
    shot.unlink(missing_ok=True)
    done = run(
        ["--hide-scrollbars", f"--window-size=1400,{height}", f"--screenshot={shot}", url],
        profile,
        lang=lang,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > min_bytes  # a rendered page, not a blank one
    return shot


class Metrics(HTMLParser):
    """Collects (metric, client) → [values] from data-metric / data-value attributes, the
    ``data-*`` attributes of every element (``elements``), scripts and external references."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[tuple[str, str | None], list[str]] = defaultdict(list)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.scripts = 0
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.elements.append((tag, a))
        if "data-metric" in a:
            self.values[(a["data-metric"] or "", a.get("data-client"))].append(
                a.get("data-value") or ""
            )
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            value = a.get(key)
            if value and value.startswith(("http:", "https:", "//")):
                self.external.append(value)


def parse(dom: str) -> Metrics:
    """The parsed DOM."""
    page = Metrics()
    page.feed(dom)
    return page
