"""Secure defaults of the web app: loopback unless told otherwise, a warning when exposed
without a login, never a share link, bounded uploads and sessions, and pinned dependencies.

(Serving no file outside Gradio's own upload cache is checked in ``test_ui.py``; upload size
and type limits, case by case, in ``test_hostile_inputs.py``.)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from importlib.metadata import version

import httpx
import pytest
from appserver import PROJECT_ROOT, App, run_app, write_notes

from rag import RAG
from rag.settings import UISettings

psutil = pytest.importorskip("psutil", reason="needs the bench extra (psutil)")

pytestmark = pytest.mark.slow

WARNING = "without a login; anyone who can reach this machine"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory,
           open_rag: Callable[..., RAG]) -> Callable[..., Iterator[App]]:
    """``served(env, *flags)``: the app over a prebuilt index (no indexing at startup)."""
    index_src = tmp_path_factory.mktemp("security-index")
    open_rag(index_src / "index").add([write_notes(index_src / "docs")])

    def _serve(env: dict[str, str], *flags: str) -> Iterator[App]:
        tmp = tmp_path_factory.mktemp("security")
        (tmp / "index").symlink_to(index_src / "index")
        (tmp / "docs").symlink_to(index_src / "docs")
        return run_app(tmp, env, "--no-build", *flags)

    return _serve


def _listening(pid: int) -> set[str]:
    return {c.laddr.ip for c in psutil.Process(pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN}


def test_defaults_are_loopback_and_bounded() -> None:
    ui = UISettings()
    assert ui.host == "127.0.0.1" and ui.auth is None
    assert ui.max_upload_mb <= 50 and ui.queue_size <= 100 and ui.sessions <= 1000


def test_binds_to_loopback_by_default(served: Callable[..., Iterator[App]],
                                      subprocess_env: dict[str, str]) -> None:
    with served(subprocess_env) as app:
        assert _listening(app.process.pid) == {"127.0.0.1"}
        config = httpx.get(f"{app.url}config").json()
        out = app.output()
    assert config["max_file_size"] == 50 * 1024 * 1024
    assert "at http://127.0.0.1:" in out and WARNING not in out


def test_warns_when_exposed_without_login_and_never_shares(
        served: Callable[..., Iterator[App]], subprocess_env: dict[str, str]) -> None:
    # bound to every address, but only ever spoken to on 127.0.0.1
    env = {**subprocess_env, "GRADIO_SHARE": "True"}  # an environment asking for a share link
    with served(env, "--host", "0.0.0.0") as app:
        assert _listening(app.process.pid) == {"0.0.0.0"}
        out = app.output()
    assert f"warning: serving on 0.0.0.0 {WARNING}" in out
    assert "RAG_AUTH=user:password" in out
    assert not re.search(r"gradio\.live|share link|public URL", out, re.I)


def test_no_warning_when_exposed_with_a_login(served: Callable[..., Iterator[App]],
                                              subprocess_env: dict[str, str]) -> None:
    with served(subprocess_env, "--host", "0.0.0.0", "--auth", "reader:s3cret") as app:
        out = app.output()
    assert WARNING not in out


def test_dependencies_are_pinned_past_known_advisories() -> None:
    project = (PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"gradio>=6.16,<7"' in project and '"pypdf>=6.15"' in project
    assert _version_tuple(version("gradio")) >= (6, 16)
    assert _version_tuple(version("pypdf")) >= (6, 15)


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])


def test_pip_audit_runs_in_ci() -> None:
    ci = (PROJECT_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "pip-audit --skip-editable" in ci and ".ci/audit_summary.py" in ci
