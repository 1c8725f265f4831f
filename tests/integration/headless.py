"""A page of the built book as headless Chromium sees it, with networking off (no Python driver:
the ``chromium`` command line dumps the DOM after the page's scripts ran, logs the console to
stderr and every request to a NetLog file)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

#: The Debian package's command; `.ci/run` installs it when missing.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageVisit:
    """What one page did in the browser."""

    dom: str  # the document after its scripts ran
    console: list[str] = field(default_factory=list)  # console messages (logs, warnings, errors)
    requests: list[str] = field(default_factory=list)  # URLs the page itself asked for

    @property
    def errors(self) -> list[str]:
        """Uncaught exceptions and failed loads (the console lines a reader's browser reports as errors)."""
        return [m for m in self.console if re.search(r"Uncaught|Failed to load|net::ERR_|Error:", m)]

    @property
    def external_requests(self) -> list[str]:
        return [url for url in self.requests if not url.startswith(("file:", "data:", "blob:", "about:"))]

    def text(self) -> str:
        """The visible text: no scripts, styles or tags."""
        body = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", self.dom)
        return re.sub(r"<[^>]+>", " ", body)


def visit(page: Path, *, budget_ms: int = 10000, timeout_s: int = 120) -> PageVisit:
    """Open ``page`` (a local HTML file) in headless Chromium with every host unresolvable and a
    dead proxy, let its scripts run for ``budget_ms`` of virtual time, and report what it did."""
    if CHROMIUM is None:
        raise FileNotFoundError("chromium is not installed (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="atlaskit-browser-") as tmp:
        netlog = Path(tmp) / "net.json"
        command = [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
            "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
            "--enable-unsafe-swiftshader", "--use-angle=swiftshader",  # WebGL (3-D plotly) without a GPU
            "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",  # networking off
            f"--user-data-dir={Path(tmp) / 'profile'}", f"--virtual-time-budget={budget_ms}",
            "--enable-logging=stderr", "--v=0", f"--log-net-log={netlog}", "--window-size=1280,2000",
            "--dump-dom", page.resolve().as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                              env={**os.environ, "TZ": "UTC"})
        console = [m.group(1) for m in re.finditer(r"CONSOLE[^\]]*\] (.*)", done.stderr)]
        requests = []
        if netlog.exists():
            try:
                events = json.loads(netlog.read_text()).get("events", [])
            except ValueError:  # a log cut short at exit: read what is there
                events = [json.loads(line.rstrip(",")) for line in netlog.read_text().splitlines()
                          if line.startswith('{"params"') and line.rstrip(",").endswith("}")]
            # the page's own requests have a (file:, opaque) "null" initiator; the browser's
            # housekeeping (update checks and the like) has none
            requests = sorted({e["params"]["url"] for e in events
                               if isinstance(e.get("params"), dict) and "url" in e["params"]
                               and e["params"].get("initiator") not in (None, "not an origin")})
        return PageVisit(done.stdout, console, requests)
