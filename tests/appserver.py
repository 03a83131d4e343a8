"""Start the real web app (``python app.py``) in a subprocess for the UI and browser tests,
and talk to it through Gradio's plain HTTP API (``call_api``, ``upload_file``).

The notes are small Markdown files written on the fly; one carries an HTML/script payload in
its title and body, to check that the UI shows document text as text, and one is a clinical
trial, so that the evidence timeline has a study on it. For :data:`CLINICAL_FIRST_QUESTION` a
preclinical note leads the answer, with the trial close behind (within the default
``answer.clinical_margin``), so "clinical evidence first" visibly changes the lead citation.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
PAYLOAD_TITLE = "Payload note <script>alert(1)</script> <img src=x onerror=alert(2)>"
PAYLOAD_SCRIPT = "<script>alert(1)</script>"

NOTES: dict[str, str] = {
    "cflip-cll.md": """---
id: cflip-cll
title: "c-FLIP blocks TRAIL-induced apoptosis in primary CLL cells"
authors: ["Ada Example", "Ben Sample"]
journal: "Leukemia Test Reports"
year: 2004
pmid: "12345678"
doi: "10.1000/ltr.2004.17"
diseases: ["chronic lymphocytic leukemia"]
agents: ["TRAIL"]
evidence: preclinical in vitro
---
## Findings
Primary CLL cells resisted TRAIL because high c-FLIP levels blocked caspase-8 activation at \
the death-inducing signaling complex. Silencing c-FLIP restored TRAIL-induced apoptosis in \
the primary CLL cells within six hours. Normal B cells from healthy donors expressed less \
c-FLIP than the leukemic cells did.
""",
    "bortezomib-myeloma.md": """---
id: bortezomib-myeloma
title: "Bortezomib raises DR5 and restores TRAIL sensitivity in myeloma"
authors: ["Cara Placeholder"]
journal: "Myeloma Test Journal"
year: 2012
pmid: "23456789"
doi: "10.1000/mtj.2012.5"
diseases: ["multiple myeloma"]
agents: ["bortezomib", "TRAIL"]
evidence: preclinical in vitro
---
## Findings
Bortezomib increased DR5 expression on the surface of myeloma cell lines within a day. The \
proteasome inhibitor bortezomib restored TRAIL-induced apoptosis in myeloma cells that had \
resisted TRAIL alone. The combination of bortezomib and TRAIL spared normal plasma cells in \
these experiments.
""",
    "payload.md": f"""---
id: payload-note
title: "{PAYLOAD_TITLE}"
year: 2020
diseases: ["mantle cell lymphoma"]
agents: ["TRAIL"]
evidence: preclinical in vitro
---
## Findings
The zorblatin marker {PAYLOAD_SCRIPT} predicts TRAIL sensitivity in mantle cell lymphoma \
samples. Zorblatin-high mantle cell lymphoma cells showed strong caspase-8 cleavage after \
TRAIL <img src=x onerror=alert(2)> exposure in every sample. Template text ${{alert(3)}} \
and `code` stay plain text in the zorblatin samples.
""",
    "dulanermin-fl.md": """---
id: dulanermin-fl-trial
title: "Dulanermin with rituximab in relapsed follicular lymphoma: a phase 1b/2 trial"
authors: ["Dana Trialist", "Eli Investigator"]
journal: "Lymphoma Trials Test Journal"
year: 2011
volume: "12"
pages: "101-109"
pmid: "21000001"
doi: "10.1000/lttj.2011.3"
diseases: ["follicular lymphoma"]
agents: ["dulanermin", "rituximab"]
evidence: clinical phase 2
---
## Findings
Forty patients with relapsed follicular lymphoma received dulanermin with rituximab in this \
open-label trial. The combination produced objective responses in 24 of the 40 patients, and \
dulanermin added no dose-limiting toxicity to rituximab.
""",
    "rituximab-fl-cells.md": """---
id: rituximab-fl-cells
title: "Rituximab sensitizes follicular lymphoma cell lines to TRAIL"
year: 2009
diseases: ["follicular lymphoma"]
evidence: preclinical in vitro
---
## Findings
Rituximab increased TRAIL-induced apoptosis in follicular lymphoma cell lines within a day. \
Follicular lymphoma cells treated with rituximab showed strong caspase-8 activation after \
TRAIL in these experiments.
""",
}
CLINICAL_NOTE_ID = "dulanermin-fl-trial"
# Without clinical first the preclinical note leads (the best-retrieved passage); with it, the
# trial (scored about 0.9 of the top) moves ahead. No agent tag: the map keeps its cells.
CLINICAL_FIRST_QUESTION = "What does rituximab do in follicular lymphoma?"
PRECLINICAL_LEAD_ID = "rituximab-fl-cells"

UPLOAD_NOTE = """---
id: quorvane-note
title: "Quorvane, an experimental DR4-selective agonist"
year: 2023
pmid: "34567890"
diseases: ["acute myeloid leukemia"]
agents: ["quorvane"]
evidence: preclinical in vivo
---
## Findings
Quorvane is an experimental DR4-selective TRAIL receptor agonist tested in acute myeloid \
leukemia xenografts. Quorvane shrank the leukemia xenografts in mice by half within two weeks.
"""


def write_notes(folder: Path, notes: Mapping[str, str] = NOTES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in notes.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class App:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    upload_dir: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def run_app(tmp: Path, env: Mapping[str, str], *extra: str,
            timeout: float = 240.0) -> Iterator[App]:
    """``python app.py`` on a free port over notes in ``tmp/docs``; killed on exit."""
    docs = tmp / "docs"
    if not docs.exists():
        write_notes(docs)
    port = free_port()
    log = tmp / f"app-{port}.log"
    upload_dir = tmp / "uploads"
    cmd = [sys.executable, str(PROJECT_ROOT / "app.py"), "--port", str(port),
           "--index", str(tmp / "index"), "--docs", str(docs), "--upload-dir", str(upload_dir),
           *extra]
    with log.open("wb") as sink:
        process = subprocess.Popen(cmd, cwd=tmp, env=dict(env), stdout=sink,
                                   stderr=subprocess.STDOUT)
    app = App(f"http://127.0.0.1:{port}/", process, log, upload_dir)
    try:
        _wait_until_up(app, timeout)
        yield app
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(app: App, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.process.poll() is not None:
            raise RuntimeError(f"app.py exited with {app.process.returncode}:\n{app.output()}")
        try:
            if "ready in" in app.output() and httpx.get(app.url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"app.py did not answer within {timeout:.0f} s:\n{app.output()}")


class ApiError(Exception):
    """An endpoint answered with an error event; the message is what the user would see."""


def call_api(url: str, api_name: str, *data: Any, timeout: float = 120.0,
             http: httpx.Client | None = None) -> Any:
    """Call a named endpoint the way any HTTP client can: POST the inputs, then read the
    result from the event stream. Raises ApiError with the app's message on an error event."""
    client: Any = http or httpx
    posted = client.post(f"{url}gradio_api/call/{api_name}", json={"data": list(data)},
                         timeout=timeout)
    posted.raise_for_status()
    event_id = posted.json()["event_id"]
    stream = client.get(f"{url}gradio_api/call/{api_name}/{event_id}", timeout=timeout)
    stream.raise_for_status()
    return parse_event_stream(stream.text)


def parse_event_stream(text: str) -> Any:
    event = ""
    for line in text.splitlines():
        if line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("data:") and event in ("complete", "error"):
            payload = json.loads(line.removeprefix("data:").strip() or "null")
            if event == "error":
                if isinstance(payload, dict) and "error" in payload:  # gr.Error's message
                    payload = payload["error"]
                raise ApiError(payload if isinstance(payload, str) else json.dumps(payload))
            return payload[0]
    raise ApiError(f"no result in the event stream: {text[:300]!r}")


def upload_file(url: str, path: Path, *, timeout: float = 60.0) -> httpx.Response:
    """Send one file to Gradio's upload route (as a browser does); the JSON body of a 200
    answer is the list of server-side paths."""
    with path.open("rb") as handle:
        return httpx.post(f"{url}gradio_api/upload",
                          files=[("files", (path.name, handle, "application/octet-stream"))],
                          timeout=timeout)


def file_data(server_path: str, orig_name: str) -> dict[str, Any]:
    """The FileData a browser sends for an uploaded file: the name is whatever the user's file
    was called, so a hostile client can put anything there."""
    return {"path": server_path, "orig_name": orig_name, "meta": {"_type": "gradio.FileData"}}
