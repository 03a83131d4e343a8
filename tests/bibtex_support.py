"""Reading BibTeX back for the export tests (``test_export``, ``test_browser``): one parser,
so that the file a browser downloads is checked the same way as the exporter's own output."""

from __future__ import annotations

from typing import Any


def _decoder() -> Any:
    """pylatexenc's LaTeX-to-text with the two text-mode brace macros it lacks."""
    from pylatexenc.latex2text import (
        LatexNodes2Text,
        MacroTextSpec,
        get_default_latex_context_db,
    )

    db = get_default_latex_context_db()
    db.add_context_category("braces", prepend=True, macros=[
        MacroTextSpec("textbraceleft", "{"), MacroTextSpec("textbraceright", "}")])
    return LatexNodes2Text(latex_context=db)


def parse_bibtex(text: str, *, decode: bool = True) -> dict[str, dict[str, str]]:
    """Entries by key, each field as text (LaTeX decoded unless ``decode`` is false). Fails
    the test if a block does not parse or an entry is not an ``@article``."""
    import bibtexparser
    from bibtexparser.middlewares import LatexDecodingMiddleware

    middleware = [LatexDecodingMiddleware(decoder=_decoder())] if decode else []
    lib = bibtexparser.parse_string(text, append_middleware=middleware)
    assert not lib.failed_blocks, [b.error for b in lib.failed_blocks]
    assert all(e.entry_type == "article" for e in lib.entries)
    return {e.key: {k: str(f.value) for k, f in e.fields_dict.items()} for e in lib.entries}
