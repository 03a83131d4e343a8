"""``python -m rag``: the command line."""

from __future__ import annotations

from rag.interfaces.cli import run

if __name__ == "__main__":
    run()
