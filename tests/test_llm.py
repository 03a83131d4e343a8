"""The optional LLM path, against a stub OpenAI-compatible server on 127.0.0.1.

The stub is a real HTTP server in a thread. Each test tells it how to reply (a function of the
request it receives, a delay, a status code) and then reads back the requests it got. One test
replaces the network with ``httpx.MockTransport`` through ``RAG.open(..., llm_transport=...)``.
The index is built with the fake embedder (``open_fake_rag``): these tests check the client and
how a reply is checked against the passages, not what the real model understands.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from answer_support import OFF_TOPIC, ask_checked, build_index
from appserver import free_port

from rag import RAG, Answer, Settings
from rag.answer.extractive import NO_EVIDENCE
from rag.answer.llm import SYSTEM_PROMPT
from rag.embed.fake import HashEmbedder

QUESTION = "How does a SMAC mimetic overcome XIAP in AML blasts?"
Reply = Callable[[dict[str, Any]], str]


@dataclass
class StubLLM:
    """What the stub does on the next requests, and what it has received."""

    base_url: str
    reply: Reply | None = None
    status: int = 200
    delay_s: float = 0.0
    raw_body: bytes | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)

    def reset(self) -> None:
        self.reply, self.status, self.delay_s, self.raw_body = None, 200, 0.0, None
        self.requests.clear()


def _handler(stub: StubLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            stub.requests.append({"path": self.path, "headers": dict(self.headers),
                                  "body": body})
            time.sleep(stub.delay_s)
            if stub.raw_body is not None:
                payload = stub.raw_body
            elif stub.status != 200:
                payload = json.dumps({"error": {"message": "stub failure"}}).encode()
            else:
                content = stub.reply(body) if stub.reply else ""
                payload = json.dumps({
                    "id": "stub-1", "object": "chat.completion", "model": body.get("model"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                }).encode()
            try:
                self.send_response(stub.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the timeout test)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def stub_server() -> Iterator[StubLLM]:
    stub = StubLLM(base_url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    server.daemon_threads = True
    stub.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield stub
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def stub(stub_server: StubLLM) -> Iterator[StubLLM]:
    stub_server.reset()
    yield stub_server
    stub_server.reset()


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, open_fake_rag: Callable[..., RAG]) -> RAG:
    return build_index(tmp_path_factory, open_fake_rag, "llm")


@pytest.fixture
def llm_rag(index: RAG, stub: StubLLM, open_fake_rag: Callable[..., RAG]) -> RAG:
    settings = Settings().with_updates(**{"llm.url": stub.base_url, "llm.model": "stub",
                                          "llm.timeout_s": 0.5})
    return open_fake_rag(index.index_dir, settings)


def numbered_passages(body: dict[str, Any]) -> dict[int, str]:
    """The ``[n] text`` passages of the prompt the stub received."""
    user = body["messages"][-1]["content"]
    block = user.split("Passages:\n\n", 1)[1].rsplit("\n\nQuestion: ", 1)[0]
    return {int(n): text for n, text in re.findall(r"\[(\d+)\] (.*?)(?=\n\n\[\d+\] |\Z)",
                                                      block, re.S)}


def passage_number(body: dict[str, Any], word: str) -> int:
    return next(n for n, text in numbered_passages(body).items() if word in text)


def good_reply(body: dict[str, Any]) -> str:
    n = passage_number(body, "birinapant")
    return (f"The SMAC mimetic birinapant degraded cIAP1 and antagonised XIAP in AML blasts "
            f"[{n}]. Blasts from acute myeloid leukemia overexpress XIAP, which inhibits "
            f"caspase-3 and caspase-9 [{n}].")


def mixed_reply(body: dict[str, Any]) -> str:
    n = passage_number(body, "birinapant")
    return (f"The SMAC mimetic birinapant degraded cIAP1 and antagonised XIAP in AML blasts "
            f"[{n}]. Birinapant cures every leukemia after a single injection [99]. "
            f"The moon landing was filmed in a desert studio in Nevada [{n}]. "
            f"This sentence cites no passage at all.")


def unsupported_reply(body: dict[str, Any]) -> str:
    return ("Birinapant cures every leukemia after a single injection [99]. "
            "The moon landing was filmed in a desert studio in Nevada [1].")


def extractive(rag: RAG) -> Answer:
    return ask_checked(rag, QUESTION)


# -- (a) a good reply ------------------------------------------------------------------------


def test_good_reply_becomes_the_answer_with_exact_citations(llm_rag: RAG,
                                                            stub: StubLLM) -> None:
    stub.reply = good_reply
    answer = ask_checked(llm_rag, QUESTION, mode="llm")
    assert answer.mode == "llm" and answer.supported and answer.notes == ()
    assert answer.text == (
        "The SMAC mimetic birinapant degraded cIAP1 and antagonised XIAP in AML blasts [1]. "
        "Blasts from acute myeloid leukemia overexpress XIAP, which inhibits caspase-3 and "
        "caspase-9 [2]."
    )
    first, second = answer.citations
    assert first.doc_id == second.doc_id == "aml-smac-xiap"
    assert first.snippet == ("The bivalent SMAC mimetic birinapant degraded cIAP1 and "
                             "antagonised XIAP in these blasts.")
    assert second.snippet.startswith("Leukemic blasts from patients with acute myeloid")
    assert answer.passages and answer.passages[0].doc_id == "aml-smac-xiap"
    assert set(answer.timings_ms) == {"retrieve", "answer", "total"}
    assert answer.to_dict()["mode"] == "llm"


def test_a_transport_given_to_open_replaces_the_network(index: RAG,
                                                       fake_embedder: HashEmbedder) -> None:
    received: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        received.append(request)
        content = good_reply(json.loads(request.content))
        return httpx.Response(200, json={"choices": [{"message": {"role": "assistant",
                                                                  "content": content}}]})

    # .invalid never resolves: an answer from the LLM can only have come through the transport
    settings = Settings().with_updates(**{"llm.url": "http://llm.invalid/v1",
                                          "llm.model": "mock", "llm.api_key": "sk-mock"})
    rag = RAG.open(index.index_dir, settings=settings, embedder=fake_embedder,
                   llm_transport=httpx.MockTransport(handle))
    answer = ask_checked(rag, QUESTION, mode="llm")
    assert answer.mode == "llm" and answer.supported and answer.notes == ()
    assert answer.text == (
        "The SMAC mimetic birinapant degraded cIAP1 and antagonised XIAP in AML blasts [1]. "
        "Blasts from acute myeloid leukemia overexpress XIAP, which inhibits caspase-3 and "
        "caspase-9 [2]."
    )
    (request,) = received
    assert request.method == "POST"
    assert str(request.url) == "http://llm.invalid/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer sk-mock"
    assert json.loads(request.content)["model"] == "mock"


def test_markers_inside_and_grouped_are_rewritten(llm_rag: RAG, stub: StubLLM) -> None:
    def reply(body: dict[str, Any]) -> str:
        n = passage_number(body, "birinapant")
        other = 1 if n != 1 else 2
        return (f"The SMAC mimetic birinapant [{n}] degraded cIAP1 and antagonised XIAP in "
                f"AML blasts [{other}, {n}] .")

    stub.reply = reply
    answer = ask_checked(llm_rag, QUESTION, mode="llm")
    assert answer.mode == "llm" and answer.notes == ()
    assert answer.text == ("The SMAC mimetic birinapant degraded cIAP1 and antagonised XIAP "
                           "in AML blasts [1].")
    assert answer.citations[0].doc_id == "aml-smac-xiap"


def test_request_holds_model_numbered_passages_and_question(llm_rag: RAG,
                                                            stub: StubLLM) -> None:
    stub.reply = good_reply
    ask_checked(llm_rag, QUESTION, mode="llm")
    assert len(stub.requests) == 1
    request = stub.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert "authorization" not in {k.lower() for k in request["headers"]}
    body = request["body"]
    assert body["model"] == "stub"
    assert body["temperature"] == 0 and body["stream"] is False
    assert body["max_tokens"] == llm_rag.settings.llm.max_tokens
    system, user = body["messages"]
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    assert user["role"] == "user"
    assert user["content"].endswith(f"Question: {QUESTION}")
    passages = numbered_passages(body)
    considered = llm_rag.settings.answer.passages_considered
    assert sorted(passages) == list(range(1, considered + 1))
    # The prompt holds the retrieved chunks, best first, in full.
    expected = [p.text for p in llm_rag.search(QUESTION, k=considered)]
    assert list(passages.values()) == expected


def test_api_key_is_sent_as_bearer_token(index: RAG, stub: StubLLM,
                                         open_fake_rag: Callable[..., RAG]) -> None:
    stub.reply = good_reply
    settings = Settings().with_updates(**{"llm.url": f"{stub.base_url}/chat/completions",
                                          "llm.model": "stub", "llm.api_key": "sk-test",
                                          "llm.timeout_s": 0.5})
    answer = ask_checked(open_fake_rag(index.index_dir, settings), QUESTION, mode="llm")
    assert answer.mode == "llm"
    assert stub.requests[0]["path"] == "/v1/chat/completions"
    assert stub.requests[0]["headers"]["Authorization"] == "Bearer sk-test"


# -- (b) a reply that cites nothing real -----------------------------------------------------


def test_unsupported_sentences_are_dropped_with_a_note(llm_rag: RAG, stub: StubLLM) -> None:
    stub.reply = mixed_reply
    answer = ask_checked(llm_rag, QUESTION, mode="llm")
    assert answer.mode == "llm"
    assert answer.text == ("The SMAC mimetic birinapant degraded cIAP1 and antagonised XIAP "
                           "in AML blasts [1].")
    assert len(answer.citations) == 1 and answer.citations[0].doc_id == "aml-smac-xiap"
    assert answer.notes == ("3 unsupported LLM sentence(s) dropped",)
    assert "[99]" not in answer.text and "moon" not in answer.text


def test_nothing_supported_falls_back_to_extractive(llm_rag: RAG, stub: StubLLM) -> None:
    stub.reply = unsupported_reply
    answer = ask_checked(llm_rag, QUESTION, mode="llm")
    plain = extractive(llm_rag)
    assert answer.mode == "extractive"
    assert answer.text == plain.text and answer.citations == plain.citations
    assert len(answer.notes) == 1
    assert "no sentence of the LLM reply was supported" in answer.notes[0]


def test_no_evidence_reply_falls_back_to_extractive(llm_rag: RAG, stub: StubLLM) -> None:
    stub.reply = lambda body: "NO EVIDENCE."
    answer = ask_checked(llm_rag, QUESTION, mode="llm")
    assert answer.mode == "extractive" and answer.text == extractive(llm_rag).text
    assert answer.notes == ("the LLM found no answer in the passages; showing the extractive "
                            "answer",)


# -- (c) (d) failures of the endpoint --------------------------------------------------------


def _assert_fell_back(rag: RAG, answer: Answer, fragment: str) -> None:
    assert answer.mode == "extractive" and answer.supported
    assert answer.text == extractive(rag).text
    assert len(answer.notes) == 1
    note = answer.notes[0]
    assert note.startswith("LLM endpoint failed") and note.endswith("showing the extractive "
                                                                     "answer")
    assert fragment in note


def test_timeout_falls_back_with_a_note(llm_rag: RAG, stub: StubLLM) -> None:
    stub.reply, stub.delay_s = good_reply, 3.0
    started = time.perf_counter()
    answer = ask_checked(llm_rag, QUESTION, mode="llm")
    assert time.perf_counter() - started < 2.5  # it gave up after 0.5 s, not 3 s
    _assert_fell_back(llm_rag, answer, "timed out after 0.5 s")
    assert len(stub.requests) == 1


@pytest.mark.parametrize("status", [500, 503, 401])
def test_http_error_falls_back_with_a_note(llm_rag: RAG, stub: StubLLM, status: int) -> None:
    stub.status = status
    answer = ask_checked(llm_rag, QUESTION, mode="llm")
    _assert_fell_back(llm_rag, answer, f"HTTP {status}")


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        pytest.param(b"<html>not json</html>", "not an OpenAI-style chat completion",
                     id="not-json"),
        pytest.param(b'{"choices": []}', "not an OpenAI-style chat completion", id="no-choices"),
        pytest.param(json.dumps({"choices": [{"message": {"content": "  "}}]}).encode(),
                     "empty reply", id="empty-content"),
    ],
)
def test_malformed_reply_falls_back_with_a_note(llm_rag: RAG, stub: StubLLM, raw: bytes,
                                                fragment: str) -> None:
    stub.raw_body = raw
    answer = ask_checked(llm_rag, QUESTION, mode="llm")
    _assert_fell_back(llm_rag, answer, fragment)


def test_unreachable_endpoint_falls_back_with_a_note(index: RAG,
                                                     open_fake_rag: Callable[..., RAG]) -> None:
    port = free_port()  # a port that nothing listens on
    settings = Settings().with_updates(**{"llm.url": f"http://127.0.0.1:{port}/v1",
                                          "llm.model": "stub", "llm.timeout_s": 0.5})
    rag = open_fake_rag(index.index_dir, settings)
    answer = ask_checked(rag, QUESTION, mode="llm")
    _assert_fell_back(rag, answer, f"cannot reach http://127.0.0.1:{port}/v1/chat/completions")


# -- (e) no endpoint, and questions the library cannot answer --------------------------------


@pytest.mark.parametrize(
    "updates",
    [
        pytest.param({}, id="nothing-configured"),
        pytest.param({"llm.url": "http://127.0.0.1:9/v1"}, id="url-without-model"),
        pytest.param({"llm.model": "stub"}, id="model-without-url"),
    ],
)
def test_no_endpoint_configured_gives_extractive_with_a_note(
        index: RAG, open_fake_rag: Callable[..., RAG], updates: dict[str, str]) -> None:
    rag = open_fake_rag(index.index_dir, Settings().with_updates(**updates))
    answer = ask_checked(rag, QUESTION, mode="llm")
    assert answer.mode == "extractive" and answer.supported
    assert answer.text == extractive(rag).text
    assert len(answer.notes) == 1 and "no LLM endpoint configured" in answer.notes[0]
    assert "RAG_LLM_URL" in answer.notes[0]


def test_off_topic_question_is_refused_without_calling_the_llm(llm_rag: RAG,
                                                               stub: StubLLM) -> None:
    stub.reply = good_reply
    answer = ask_checked(llm_rag, OFF_TOPIC[0], mode="llm")
    assert not answer.supported and answer.text == NO_EVIDENCE and answer.citations == ()
    assert answer.passages
    assert stub.requests == []


def test_extractive_mode_never_calls_the_llm(llm_rag: RAG, stub: StubLLM) -> None:
    stub.reply = good_reply
    answer = ask_checked(llm_rag, QUESTION)
    assert answer.mode == "extractive" and answer.notes == ()
    assert stub.requests == []
