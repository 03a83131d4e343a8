"""Progress bars for the command line and the web app's startup: tqdm, on stderr.

One :class:`ProgressBar` takes both shapes of progress callback the library calls:
``bar(done, total)`` for :meth:`rag.RAG.add` (chunks embedded) and
``bar.phase(name, done, total)`` for :func:`rag.sources.pubmed.fetch_pubmed` (records, then
full texts). A bar starts once a total is known, so a run with nothing to do prints none.

>>> with ProgressBar() as bar:                                      # doctest: +SKIP
...     report = rag.add(["seeds/"], progress=bar)
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

__all__ = ["ProgressBar"]

UNITS = {"embedding": "chunk", "records": "record", "full text": "article"}


class ProgressBar:
    """One tqdm bar at a time, one per phase; ``shown=False`` makes every call a no-op."""

    def __init__(self, *, shown: bool = True) -> None:
        self._shown = shown
        self._bar: Any = None
        self._phase = ""

    def __call__(self, done: int, total: int) -> None:
        """Chunks embedded so far: the ``progress`` argument of :meth:`rag.RAG.add`."""
        self.phase("embedding", done, total)

    def phase(self, name: str, done: int, total: int) -> None:
        """``done`` of ``total`` in phase ``name``; a new phase closes the previous bar."""
        if not self._shown or total == 0:
            return
        if self._bar is None or name != self._phase:
            self.close()
            self._bar = _start_bar(name, total)
            self._phase = name
        self._bar.n = done
        self._bar.refresh()

    def close(self) -> None:
        """End the current bar (its line stays on screen); the next call starts a new one."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def _start_bar(phase: str, total: int) -> Any:
    from tqdm import tqdm  # only when a bar is shown: keeps `python -m rag --help` fast

    return tqdm(total=total, desc=phase, unit=UNITS.get(phase, "it"), file=sys.stderr)
