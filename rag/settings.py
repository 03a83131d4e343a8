"""One settings object for the whole tool.

Values come from the defaults below, then an optional YAML/JSON file (``RAG_SETTINGS`` or the
``file`` argument), then ``RAG_*`` environment variables. Every component takes the object
explicitly (``settings: Settings | None = None``); nothing reads the environment on its own.

Environment variables: the short names in ``ENV_ALIASES`` (e.g. ``RAG_INDEX_DIR``,
``RAG_LLM_URL``) and, for any field, ``RAG_<SECTION>__<FIELD>`` (e.g.
``RAG_CHUNKING__CHUNK_TOKENS=200``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rag.errors import ConfigError

__all__ = ["Settings", "load_settings"]

DEFAULT_MODEL = "all-MiniLM-L6-v2"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoaderSettings(_Section):
    max_file_mb: float = Field(50.0, gt=0, description="Files above this size are skipped.")
    max_pdf_pages: int = Field(2000, gt=0, description="PDFs with more pages are skipped.")
    max_chars: int = Field(20_000_000, gt=0, description="Longest cleaned text kept per document.")
    extensions: tuple[str, ...] = (".txt", ".md", ".markdown", ".pdf", ".html", ".htm", ".xml")


class ChunkingSettings(_Section):
    chunk_tokens: int = Field(200, ge=16, description="Target chunk size in model tokens.")
    overlap_tokens: int = Field(40, ge=0, description="Overlap between neighbouring chunks.")


class EmbeddingSettings(_Section):
    model: str = Field(DEFAULT_MODEL, description="sentence-transformers name or local path.")
    device: str = "cpu"
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    batch_size: int = Field(16, gt=0, description="chunks per forward pass when indexing. "
                            "In bfloat16 on 2 cores, 8-32 embedded ~18% more chunks/s than 64 "
                            "(smaller activations stay in cache).")
    threads: int = Field(0, ge=0, description="torch threads; 0 keeps torch's default.")
    query_threads: int = Field(1, ge=0, description="torch threads for embedding a question; "
                               "0 uses `threads`. One is fastest for one short text.")


class StoreSettings(_Section):
    index_type: Literal["auto", "flat", "hnsw", "ivf-sq8", "ivf-pq"] = Field(
        "auto", description="auto: exact search up to 200,000 chunks, ivf-sq8 above (measured "
        "by `python -m rag bench`: the smallest index meeting p50 <= 20 ms and recall@10 >= 0.95 "
        "at 1M vectors). flat/hnsw/ivf-sq8/ivf-pq force one type at any size from 1,000 "
        "chunks.")
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    ivf_nlist: int = 0  # 0 = about 4*sqrt(n)
    ivf_nprobe: int = 32
    keep_generations: int = 2
    backend: Literal["faiss", "milvus"] = Field(
        "faiss", description="faiss: embedded numpy/FAISS files in the index folder (default). "
        "milvus: chunk vectors and filterable metadata in Milvus (Milvus Lite or a cluster); "
        "needs `pip install 'trail-rag[milvus]'`.")
    milvus_uri: str | None = Field(
        None, description="A local path means embedded Milvus Lite (a folder-backed database "
        "file); http(s)://host:19530 means a Milvus server or cluster. Default: "
        "<index_dir>/milvus.db.")
    milvus_token: str | None = Field(None, description="Milvus token (or user:password); also "
                                     "MILVUS_TOKEN, or MILVUS_USER and MILVUS_PASSWORD.")
    milvus_timeout_s: float = Field(30.0, gt=0, description="Milvus call timeout.")
    milvus_prefix: str = Field("trailrag", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,40}$",
                               description="Collection name prefix; indexes sharing one Milvus "
                               "server need different prefixes.")
    milvus_index_type: Literal["AUTOINDEX", "FLAT", "IVF_FLAT", "IVF_SQ8", "HNSW", "DISKANN"] = (
        Field("AUTOINDEX", description="Milvus vector index type (Milvus Lite builds FLAT, "
              "IVF_FLAT and IVF_SQ8; HNSW and DISKANN need a server)."))
    sentence_vectors: Literal["stored", "recompute"] = Field(
        "stored", description="stored: pooled sentence vectors are saved with each generation "
        "(float16, ~0.75 KB per sentence). recompute: not saved; the answer composer re-embeds "
        "its candidate chunks per question (for corpora too large to keep them).")


class RetrievalSettings(_Section):
    k: int = Field(5, gt=0, le=100)
    candidates: int = Field(50, gt=0, description="Hits taken from each retriever before fusion.")
    fusion: Literal["convex", "rrf"] = "convex"
    rrf_k: int = 60
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    per_doc_cap: int = Field(3, ge=1, description="Most passages from one document in the top k.")
    mmr_lambda: float = Field(0.85, ge=0, le=1)
    expand_synonyms: bool = True


class AnswerSettings(_Section):
    model: Path | None = Field(None, description="Sentence-scorer JSON written by `python -m "
                               "rag.eval.training`; default: the packaged model.")
    max_sentences: int = Field(3, ge=1, le=5, description="Most cited sentences per answer.")
    max_words: int = Field(80, ge=10, description="Word budget of an extractive answer; the "
                           "first sentence is always kept.")
    passages_considered: int = Field(8, ge=1, description="Top passages whose sentences are "
                                     "answer candidates.")
    documents_considered: int = Field(3, ge=1, description="Top documents whose other "
                                      "sentences are candidates too.")
    whole_document_chunks: int = Field(12, ge=1, description="Documents up to this many chunks "
                                       "contribute every sentence; longer ones the chunks "
                                       "around their retrieved passages.")
    selection_pool: int = Field(40, ge=1, description="Best-scored sentences that selection "
                                "looks at after the first.")
    score_window: float = Field(3.0, ge=0, description="Added sentences score at most this "
                                "far (in model logits) below the first.")
    other_document_window: float = Field(1.0, ge=0, description="Sentences from another "
                                         "document than the first must score within this "
                                         "many logits of it.")
    cue_bonus: float = Field(1.0, ge=0, description="Logit bonus per answer cue a sentence "
                             "adds (a count after a rate ...).")
    framing_penalty: float = Field(2.0, ge=0, description="Logit penalty for a sentence that "
                                   "frames a study (\"asked whether ...\") rather than "
                                   "reporting what it found.")
    restatement_penalty: float = Field(1.0, ge=0, description="Logit penalty for a sentence "
                                       "that only restates the question (novelty below "
                                       "min_novelty).")
    min_novelty: float = Field(0.2, ge=0, le=1, description="Share of a sentence's words "
                               "beyond the question's (synonyms included) below which it "
                               "restates the question.")
    missing_cue_penalty: float = Field(1.0, ge=0, description="Logit penalty for a sentence "
                                       "that carries none of the answer cues the question "
                                       "asks for (no figure for 'how many', no mechanism "
                                       "for 'why').")
    word_bonus: float = Field(0.0, ge=0, description="Logit bonus per question word a "
                              "sentence adds.")
    same_document_bonus: float = Field(1.0, ge=0, description="Logit bonus for a sentence "
                                       "from the same document as the first one.")
    duplicate_overlap: float = Field(0.8, gt=0, le=1, description="Word overlap above which a "
                                     "sentence repeats one already chosen.")
    min_support: float = Field(0.40, description="Support score below which answers refuse.")
    clinical_first: bool = Field(False, description="Rank evidence from human studies "
                                 "(meta-analyses, trials, observational) first: see "
                                 "clinical_margin and clinical_bonus. RAG.ask(clinical_first=) "
                                 "overrides it per question.")
    clinical_margin: float = Field(0.3, ge=0, description="With clinical_first, a retrieved "
                                   "passage from a human study moves ahead of others scoring up "
                                   "to this share of the top passage's score above it (full "
                                   "for a meta-analysis, 0.6 of it for an observational study).")
    clinical_bonus: float = Field(2.0, ge=0, description="With clinical_first, logits added to "
                                  "sentences from human studies in selection (scaled by level "
                                  "as clinical_margin).")


class LLMSettings(_Section):
    url: str | None = None
    model: str | None = None
    api_key: str | None = None
    timeout_s: float = 30.0
    max_tokens: int = 400


class UISettings(_Section):
    host: str = "127.0.0.1"
    port: int = 7860
    auth: str | None = None  # "user:password" or a path to a file of such lines
    upload_dir: Path = Path("uploads")
    max_upload_mb: float = Field(50.0, gt=0, description="Largest upload, per file.")
    concurrency: int = Field(4, ge=1, description="Questions answered at once (the queue's "
                             "default_concurrency_limit; writes always run one at a time).")
    queue_size: int = Field(64, ge=1, description="Requests that may wait in the queue; more "
                            "are refused at once with 'queue is full'.")
    sessions: int = Field(256, ge=1, description="Sessions whose state the server keeps; every "
                          "HTTP API call is a session of its own, so this bounds memory.")


class FetchSettings(_Section):
    base_url: str = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils"
    api_key: str | None = None
    tool: str = "trail-rag"
    email: str | None = None
    batch_size: int = Field(100, gt=0, le=500, description="Records per efetch request.")
    timeout_s: float = Field(30.0, gt=0)
    retries: int = Field(5, ge=0, description="Retries after a 429/5xx, timeout or lost link.")
    backoff_s: float = Field(1.0, ge=0, description="First retry delay; doubles each retry.")


class Settings(_Section):
    """All settings. Build with :func:`load_settings` or ``Settings()`` for the defaults."""

    index_dir: Path = Path("index")
    docs_dir: Path = Path("seeds")
    loader: LoaderSettings = LoaderSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    store: StoreSettings = StoreSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    answer: AnswerSettings = AnswerSettings()
    llm: LLMSettings = LLMSettings()
    ui: UISettings = UISettings()
    fetch: FetchSettings = FetchSettings()

    def with_updates(self, **changes: Any) -> Settings:
        """Return a copy with dotted keys changed, e.g. ``with_updates(**{"llm.url": u})``."""
        data = self.model_dump()
        for dotted, value in changes.items():
            _set_dotted(data, dotted.replace("__", "."), value)
        return _validate(data)


ENV_ALIASES: dict[str, str] = {
    "RAG_INDEX_DIR": "index_dir",
    "RAG_DOCS_DIR": "docs_dir",
    "RAG_MODEL": "embedding.model",
    "RAG_DEVICE": "embedding.device",
    "RAG_DTYPE": "embedding.dtype",
    "RAG_INDEX_TYPE": "store.index_type",
    "RAG_BACKEND": "store.backend",
    "RAG_MILVUS_URI": "store.milvus_uri",
    "MILVUS_TOKEN": "store.milvus_token",
    "RAG_MAX_FILE_MB": "loader.max_file_mb",
    "RAG_LLM_URL": "llm.url",
    "RAG_LLM_MODEL": "llm.model",
    "RAG_LLM_API_KEY": "llm.api_key",
    "RAG_LLM_TIMEOUT": "llm.timeout_s",
    "RAG_HOST": "ui.host",
    "RAG_PORT": "ui.port",
    "RAG_AUTH": "ui.auth",
    "RAG_UPLOAD_DIR": "ui.upload_dir",
    "RAG_MAX_UPLOAD_MB": "ui.max_upload_mb",
    "NCBI_API_KEY": "fetch.api_key",
    "RAG_NCBI_EMAIL": "fetch.email",
    "RAG_NCBI_TOOL": "fetch.tool",
    "RAG_NCBI_URL": "fetch.base_url",
}


def load_settings(
    file: str | Path | None = None, *, env: Mapping[str, str] | None = None
) -> Settings:
    """Defaults, then ``file`` (or ``$RAG_SETTINGS``), then the environment."""
    env = os.environ if env is None else env
    data: dict[str, Any] = Settings().model_dump()
    file = file or env.get("RAG_SETTINGS")
    if file:
        _merge(data, _read_file(Path(file)))
    for name, value in env.items():
        if name in ENV_ALIASES:
            _set_dotted(data, ENV_ALIASES[name], value)
        elif name.startswith("RAG_") and "__" in name:
            _set_dotted(data, name[4:].lower().replace("__", "."), value)
    store = data["store"]
    if not store.get("milvus_token") and env.get("MILVUS_USER") and env.get("MILVUS_PASSWORD"):
        store["milvus_token"] = f"{env['MILVUS_USER']}:{env['MILVUS_PASSWORD']}"
    return _validate(data)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"settings file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"settings file {path}: expected a mapping at the top level")
    return data


def _merge(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            raise ConfigError(f"unknown setting {dotted!r}")
        node = child
    if leaf not in node:
        raise ConfigError(f"unknown setting {dotted!r}")
    node[leaf] = None if value == "" else value


def _validate(data: dict[str, Any]) -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc
