"""The index on disk: generations (``generations.py``) switched through a pointer and a
manifest (``manifest.py``), document metadata in SQLite (``metadata.py``), sentence arrays
(``sentences.py``), vector indexes behind one interface (``vectors/``), and the read-only
view that queries use (``snapshot.py``)."""
