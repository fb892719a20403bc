"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests.

``LLMTestServer`` speaks enough of the OpenAI API (chat completions, streamed
or not, with logprobs; embeddings; the model list) for litellm's ``openai/``
models, the ``openai`` SDK and raw HTTP clients, and plays a reward model on
vLLM's ``/classify``, ``/score`` and ``/pooling`` routes (see ``reward_script``). Replies are deterministic in
the request, can be scripted per prompt, and faults (rate limits, 5xx, hangs,
broken bodies, dropped connections, answers that stop half-way) can be injected, so retry, timeout and
"unmeasured" paths are tested against real sockets instead of mocks.

The plugin imports this module at start-up through the fixture module, so it
uses the standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Fault", "LLMTestServer", "ReceivedRequest"]

#: A scripted reply: text, a dict sent as JSON text, or a function of the request body.
Reply = str | Mapping[str, Any] | Callable[[dict[str, Any]], "str | Mapping[str, Any]"]
#: A scripted reward: a function of (prompt, answer) giving a number, a list of class
#: probabilities, or a dict sent as the whole JSON answer (to play a malformed one).
RewardFunction = Callable[[str, str], "float | Sequence[float] | Mapping[str, Any]"]

_CHAT_PATH = "/v1/chat/completions"
_EMBEDDINGS_PATH = "/v1/embeddings"
_MODELS_PATH = "/v1/models"
#: vLLM serves its pooling-model routes at the root, beside /v1.
_REWARD_PATHS = ("/classify", "/score", "/pooling")
_ROUTES = {_CHAT_PATH: "POST", _EMBEDDINGS_PATH: "POST", _MODELS_PATH: "GET", **dict.fromkeys(_REWARD_PATHS, "POST")}
_FAULTABLE = frozenset({_CHAT_PATH, _EMBEDDINGS_PATH, *_REWARD_PATHS})

# OpenAI's error "type" for the common statuses, so SDKs map them as they would in production.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}

# A token is a run of non-space characters with the whitespace before it; trailing
# whitespace joins the last token, so "".join(tokens) == text always holds.
_TOKEN_RE = re.compile(r"\s*\S+(?:\s+\Z)?|\s+\Z")
_WORD_RE = re.compile(r"\w+")
_FAULT_KINDS = frozenset({"error", "hang", "malformed_json", "empty_body", "drop_connection", "ends_early", "drop_midway"})
#: Faults that let the normal answer start and then cut it short.
_CUT_KINDS = frozenset({"ends_early", "drop_midway"})
_ECHO_WORDS = 12
_MAX_TOP_LOGPROBS = 20


def _tokenize(text: str) -> list[str]:
    """Split text into the server's deterministic tokens (words with leading space)."""
    return _TOKEN_RE.findall(text)


@dataclass(frozen=True)
class Fault:
    """A failure the server produces instead of a normal answer.

    Build one with the constructors (``Fault.rate_limit()``, ``Fault.hang()``...)
    and hand it to ``LLMTestServer.inject``.
    """

    kind: str
    code: int = 200
    message: str = ""
    retry_after: float | None = None
    seconds: float | None = None
    #: For the faults that cut an answer short: how many text chunks of a stream go out first.
    chunks: int = 0

    def __post_init__(self) -> None:
        if self.kind not in _FAULT_KINDS:
            raise ValueError(f"Fault(kind={self.kind!r}): build faults with the constructors, e.g. Fault.rate_limit()")

    @classmethod
    def rate_limit(cls, retry_after: float | None = 1.0, message: str = "Rate limit reached for requests") -> Fault:
        """429 with an OpenAI error body and, unless ``retry_after`` is None, a ``Retry-After`` header."""
        return cls("error", 429, message, _check_delay("retry_after", retry_after))

    @classmethod
    def server_error(cls, message: str = "The server had an error while processing your request") -> Fault:
        """500 with an OpenAI error body."""
        return cls("error", 500, message)

    @classmethod
    def unavailable(cls, retry_after: float | None = None, message: str = "The engine is currently overloaded") -> Fault:
        """503 with an OpenAI error body and an optional ``Retry-After`` header."""
        return cls("error", 503, message, _check_delay("retry_after", retry_after))

    @classmethod
    def status(cls, code: int, message: str = "", *, retry_after: float | None = None) -> Fault:
        """Any error status (400, 401, 404, 422, 5xx...) with an OpenAI error body."""
        if not isinstance(code, int) or not 400 <= code <= 599:
            raise ValueError(f"Fault.status(code={code!r}): code must be an HTTP error status between 400 and 599")
        return cls("error", code, message or f"Injected error {code}", _check_delay("retry_after", retry_after))

    @classmethod
    def hang(cls, seconds: float | None = None) -> Fault:
        """Never answer (until the server stops), or wait ``seconds`` and then answer normally."""
        if seconds is not None and (not isinstance(seconds, (int, float)) or not seconds > 0):
            raise ValueError(f"Fault.hang(seconds={seconds!r}): seconds must be a positive number or None (forever)")
        return cls("hang", seconds=None if seconds is None else float(seconds))

    @classmethod
    def malformed_json(cls) -> Fault:
        """200 with a JSON content type and a body that is not valid JSON."""
        return cls("malformed_json")

    @classmethod
    def empty_body(cls) -> Fault:
        """200 with ``Content-Length: 0``."""
        return cls("empty_body")

    @classmethod
    def drop_connection(cls) -> Fault:
        """Close the connection without sending any response."""
        return cls("drop_connection")

    @classmethod
    def ends_early(cls, chunks: int = 1) -> Fault:
        """The answer stops half-way, cleanly framed: nothing at the transport level says so.

        A streamed reply sends its first ``chunks`` text chunks and then ends the
        response properly (last chunk of the chunked encoding), with no
        ``finish_reason`` and no ``data: [DONE]``. A plain reply sends the first
        half of its JSON body with a ``Content-Length`` that matches the cut body.
        """
        return cls("ends_early", chunks=_check_chunks("ends_early", chunks))

    @classmethod
    def drop_midway(cls, chunks: int = 1) -> Fault:
        """The connection drops in the middle of the answer.

        A streamed reply sends its first ``chunks`` text chunks and then closes
        the connection without ending the chunked body. A plain reply announces
        the full ``Content-Length``, sends half the body and closes the connection.
        """
        return cls("drop_midway", chunks=_check_chunks("drop_midway", chunks))


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the server received it.

    ``headers`` has lower-case names; ``body`` is the parsed JSON body, or None
    when there was no body or it was not valid JSON. ``query`` is the URL's
    query string without the ``?`` (``""`` when there was none); ``path`` never
    includes it.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    query: str = ""


@dataclass
class _Rule:
    pattern: re.Pattern[str] | None
    reply: Reply
    remaining: int | None
    logprobs: tuple[dict[str, float], ...] | None


@dataclass
class _Injected:
    fault: Fault
    remaining: int | None
    match: re.Pattern[str] | None


class _ScriptError(Exception):
    """A scripted reply could not be turned into a response (a bug in the test's script)."""


def _check_delay(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}={value!r}: expected a number of seconds >= 0")
    return float(value)


def _check_chunks(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"Fault.{name}(chunks={value!r}): expected an int >= 0")
    return value


def _compile(pattern: str | re.Pattern[str] | None, what: str) -> re.Pattern[str] | None:
    if pattern is None or isinstance(pattern, re.Pattern):
        return pattern
    if isinstance(pattern, str):
        try:
            return re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{what}: invalid regular expression {pattern!r}: {exc}") from None
    raise TypeError(f"{what}: expected a str, a compiled re.Pattern or None, got {type(pattern).__name__}")


def _check_times(times: int | None, what: str) -> int | None:
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise ValueError(f"{what}: times={times!r} must be a positive int, or None for no limit")
    return times


def _check_logprobs(logprobs: Sequence[Mapping[str, float]] | None) -> tuple[dict[str, float], ...] | None:
    if logprobs is None:
        return None
    if isinstance(logprobs, (str, bytes, Mapping)) or not isinstance(logprobs, Sequence):
        raise TypeError("script(logprobs=...): expected a list with one {token: logprob} dict per reply token")
    table = []
    for position, dist in enumerate(logprobs):
        if not isinstance(dist, Mapping) or not dist:
            raise TypeError(f"script(logprobs=...)[{position}]: expected a non-empty {{token: logprob}} dict")
        clean = {}
        for token, lp in dist.items():
            if not isinstance(token, str) or isinstance(lp, bool) or not isinstance(lp, (int, float)):
                raise TypeError(f"script(logprobs=...)[{position}]: {token!r}: {lp!r} must map str to float")
            if not math.isfinite(lp) or lp > 0:
                raise ValueError(f"script(logprobs=...)[{position}][{token!r}] = {lp!r}: a logprob must be finite and <= 0")
            clean[token] = float(lp)
        mass = sum(math.exp(lp) for lp in clean.values())
        if mass > 1.0 + 1e-6:
            raise ValueError(
                f"script(logprobs=...)[{position}]: the probabilities add up to {mass:.4f} > 1; "
                "give log-probabilities (math.log(p)), not probabilities"
            )
        table.append(clean)
    return tuple(table)


def _reply_text(reply: str | Mapping[str, Any]) -> str:
    if isinstance(reply, str):
        return reply
    if isinstance(reply, Mapping):
        return json.dumps(dict(reply))
    raise _ScriptError(f"a scripted reply function returned {type(reply).__name__}; return a str or a dict")


def _check_chosen(tokens: Sequence[str], table: Sequence[Mapping[str, float]]) -> None:
    if len(table) > len(tokens):
        raise _ScriptError(f"logprobs has {len(table)} entries but the reply has only {len(tokens)} tokens {list(tokens)!r}")
    for position, dist in enumerate(table):
        if tokens[position] not in dist:
            raise _ScriptError(
                f"logprobs[{position}] has no entry for the reply's token {tokens[position]!r} "
                f"(tokens are words with their leading whitespace: {list(tokens)!r})"
            )


def _content_text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _messages_text(messages: Any) -> str:
    if not isinstance(messages, list):
        return ""
    return "\n".join(_content_text(m.get("content")) for m in messages if isinstance(m, dict))


def _request_text(path: str, body: Mapping[str, Any]) -> str:
    """The text that scripts and fault ``match`` patterns are searched in."""
    if path == _CHAT_PATH or "messages" in body:
        return _messages_text(body.get("messages"))
    if path == "/score":
        return "\n".join(str(body.get(k, "")) for k in ("text_1", "text_2"))
    inp = body.get("input")
    if isinstance(inp, list):
        return "\n".join(t for t in inp if isinstance(t, str))
    return inp if isinstance(inp, str) else ""


def _digest(value: Any) -> str:
    data = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def _default_reply(messages: list[Any]) -> str:
    """"Reply <hash>: <echo of the last user message>": same messages, same reply."""
    last_user = next((m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), None)
    words = _content_text(last_user.get("content")).split() if last_user else []
    echo = " ".join(words[:_ECHO_WORDS]) + (" ..." if len(words) > _ECHO_WORDS else "")
    return f"Reply {_digest(messages)[:8]}: {echo}".rstrip()


def _default_reward(prompt: str, answer: str) -> float:
    """Share of the answer's words that occur in the prompt: an answer on topic scores higher."""
    words = [w.lower() for w in _WORD_RE.findall(answer)]
    if not words:
        return 0.0
    asked = {w.lower() for w in _WORD_RE.findall(prompt)}
    return sum(w in asked for w in words) / len(words)


def _reward_texts(path: str, body: Mapping[str, Any]) -> tuple[str, str] | str:
    """(prompt, answer) of a reward request, or what is wrong with the request."""
    if path == "/score":
        first, second = body.get("text_1"), body.get("text_2")
        if not isinstance(first, str) or not isinstance(second, str):
            return "'text_1' and 'text_2' must be strings (lists are not supported here)"
        return first, second
    messages = body.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        return "'messages' must be a list of {role, content} objects (plain 'input' is not supported here)"
    prompt = "\n".join(_content_text(m.get("content")) for m in messages if m.get("role") != "assistant")
    answers = [m for m in messages if m.get("role") == "assistant"]
    return prompt, _content_text(answers[-1].get("content")) if answers else ""


def _hash_vector(seed: str, dim: int) -> list[float]:
    """``dim`` floats in [-1, 1) from SHA-256 of ``seed`` in counter mode."""
    values: list[float] = []
    counter = 0
    while len(values) < dim:
        block = hashlib.sha256(f"{counter}\x00{seed}".encode("utf-8")).digest()
        values.extend(x / 2**31 - 1.0 for x in struct.unpack("<8I", block))
        counter += 1
    return values[:dim]


def _normalize(values: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values] if norm > 0 else values


def _embed(text: str, dim: int) -> list[float]:
    """A unit vector: a bag of hashed words plus a smaller whole-text part.

    Texts that share words point the same way (so similarity checks behave
    sensibly), and any two different texts still get different vectors.
    """
    bag = [0.0] * dim
    for word in _WORD_RE.findall(text.lower()):
        for i, v in enumerate(_hash_vector("w:" + word, dim)):
            bag[i] += v
    whole = _normalize(_hash_vector("t:" + text, dim))
    if any(bag):
        bag = _normalize(bag)
        return _normalize([b + 0.25 * w for b, w in zip(bag, whole)])
    return whole


def _error_body(code: int, message: str) -> dict[str, Any]:
    error_type = _ERROR_TYPES.get(code, "server_error" if code >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": error_type, "param": None, "code": None}}


def _format_seconds(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() must not wait for handlers that hang
    request_queue_size = 128  # the default 5 refuses connections under concurrent load

    def __init__(self, address: tuple[str, int], app: LLMTestServer) -> None:
        self.app = app
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn, a DNS lookup that can stall offline.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        # Without TCP_NODELAY each response waits ~40 ms on the client's delayed ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.app._opened(sock)
        return sock, address

    def shutdown_request(self, request: Any) -> None:
        self.app._closed(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Connections cut by a client timeout or by stop() are expected here.
        if isinstance(sys.exc_info()[1], OSError):
            return
        self.app._record_error(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every response is framed by Content-Length or chunks
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # keep test output clean

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    # -- request flow -------------------------------------------------------

    def _serve(self, method: str) -> None:
        app = self.server.app
        url = urlsplit(self.path)
        path = url.path
        self._query = url.query
        self._response_started = False
        self._landed = False
        self._cut: Fault | None = None  # set by the faults that cut the normal answer short
        app._begin(path)
        try:
            self._dispatch(app, method, path)
        except OSError:
            self.close_connection = True
        except _ScriptError as exc:
            app._record_error(f"{method} {path}: script error: {exc}")
            self._fail(500, f"LLMTestServer script error: {exc}")
        except Exception:  # a bug in the server must surface in the test, not kill the thread silently
            app._record_error(traceback.format_exc())
            self._fail(500, "LLMTestServer internal error; see LLMTestServer.errors")
        finally:
            self._land()

    def _land(self) -> None:
        """Leave ``in_flight``; called just before the last bytes go out, so a client
        that has its response never sees the request still counted in flight."""
        if not self._landed:
            self._landed = True
            self.server.app._end()

    def _fail(self, code: int, message: str) -> None:
        if self._response_started:
            self._drop()
        else:
            try:
                self._send_json(code, _error_body(code, message))
            except OSError:
                self.close_connection = True

    def _dispatch(self, app: LLMTestServer, method: str, path: str) -> None:
        try:
            raw = self._read_body()
        except ValueError as exc:
            self._send_json(400, _error_body(400, f"Unreadable request body: {exc}"))
            self.close_connection = True
            return
        body: Any = None
        problem = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError as exc:
                problem = f"The request body is not valid JSON: {exc}"
        app._record_received(
            ReceivedRequest(method, path, {k.lower(): v for k, v in self.headers.items()}, body, self._query)
        )

        fault = None
        if path in _FAULTABLE and method == "POST" and isinstance(body, dict):
            fault = app._take_fault(_request_text(path, body))
        if fault is not None and fault.kind == "hang":
            if app._stopping.wait(fault.seconds):
                self._drop()
                return
            fault = None  # a timed hang answers normally afterwards
        elif self._pause(app, app.latency):
            self._drop()
            return
        if fault is not None and fault.kind in _CUT_KINDS:
            self._cut = fault  # the answer is made as usual, then cut short as it is written
        elif fault is not None:
            self._send_fault(fault)
            return

        expected = _ROUTES.get(path)
        if expected is None:
            known = ", ".join(sorted(_ROUTES))
            self._send_json(404, _error_body(404, f"Unknown path {path!r}; the test server serves {known}"))
        elif method != expected:
            self._send_json(405, _error_body(405, f"{path} takes {expected}, not {method}"), {"Allow": expected})
        elif method == "GET":
            self._send_json(200, app._models_response())
        elif problem is not None:
            self._send_json(400, _error_body(400, problem))
        elif not isinstance(body, dict):
            self._send_json(400, _error_body(400, "The request body must be a JSON object"))
        elif path == _CHAT_PATH:
            self._chat(app, body)
        elif path in _REWARD_PATHS:
            self._reward(app, path, body)
        else:
            self._embeddings(app, body)

    @staticmethod
    def _pause(app: LLMTestServer, seconds: float) -> bool:
        """Sleep ``seconds``; True if the server is stopping (the caller then drops the connection)."""
        return app._stopping.wait(seconds) if seconds > 0 else app._stopping.is_set()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        size = int(length)
        if size < 0:
            raise ValueError(f"negative Content-Length {size}")
        return self.rfile.read(size)

    # -- endpoints ----------------------------------------------------------

    def _chat(self, app: LLMTestServer, body: dict[str, Any]) -> None:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            self._send_json(400, _error_body(400, "'messages' must be a non-empty list of {role, content} objects"))
            return
        top_n = body.get("top_logprobs") or 0
        if isinstance(top_n, bool) or not isinstance(top_n, int) or not 0 <= top_n <= _MAX_TOP_LOGPROBS:
            self._send_json(400, _error_body(400, f"'top_logprobs' must be an int from 0 to {_MAX_TOP_LOGPROBS}"))
            return
        model = body.get("model") or app.model
        reply, table = app._reply_for(body, messages)
        tokens = _tokenize(reply)
        if table is not None:
            _check_chosen(tokens, table)
        finish = "stop"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit < len(tokens):
            tokens, finish = tokens[:limit], "length"
        prompt_tokens = sum(len(_tokenize(_content_text(m.get("content")))) for m in messages if isinstance(m, dict))
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(tokens),
            "total_tokens": prompt_tokens + len(tokens),
        }
        entries = _logprob_entries(tokens, table, top_n) if body.get("logprobs") else None
        completion_id = f"chatcmpl-{app._next_id()}-{_digest(messages)[:12]}"
        created = int(time.time())
        if body.get("stream"):
            options = body.get("stream_options")
            include_usage = app.report_usage and isinstance(options, dict) and bool(options.get("include_usage"))
            self._stream(app, completion_id, created, model, tokens, entries, finish, usage if include_usage else None)
            return
        answer: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "system_fingerprint": "pytest-llmops-test-server",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(tokens)},
                    "logprobs": None if entries is None else {"content": entries},
                    "finish_reason": finish,
                }
            ],
        }
        if app.report_usage:
            answer["usage"] = usage
        self._send_json(200, answer)

    def _stream(
        self,
        app: LLMTestServer,
        completion_id: str,
        created: int,
        model: str,
        tokens: list[str],
        entries: list[dict[str, Any]] | None,
        finish: str,
        usage: dict[str, int] | None,
    ) -> None:
        self._response_started = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        base = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}
        pieces = tokens or [""]  # the first chunk carries the role even for an empty reply
        for i, token in enumerate(pieces):
            if self._cut is not None and i == self._cut.chunks:
                self._end_cut_stream()
                return
            if self._pause(app, app.ttft if i == 0 else app.chunk_delay):
                self._drop()
                return
            delta = {"role": "assistant", "content": token} if i == 0 else {"content": token}
            logprobs = {"content": [entries[i]]} if entries and i < len(entries) else None
            self._event({**base, "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": None}]})
        if self._cut is not None:  # it asked for more chunks than the reply has: cut before the finish
            self._end_cut_stream()
            return
        self._event({**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}]})
        if usage is not None:
            self._event({**base, "choices": [], "usage": usage})
        self._land()
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _embeddings(self, app: LLMTestServer, body: dict[str, Any]) -> None:
        inp = body.get("input")
        if isinstance(inp, str):
            texts = [inp]
        elif isinstance(inp, list) and inp and all(isinstance(t, str) for t in inp):
            texts = inp
        else:
            message = "'input' must be a string or a non-empty list of strings (token arrays are not supported here)"
            self._send_json(400, _error_body(400, message))
            return
        dim = body.get("dimensions") or app.embedding_dim
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            self._send_json(400, _error_body(400, f"'dimensions' must be a positive int, got {dim!r}"))
            return
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            self._send_json(400, _error_body(400, f"'encoding_format' must be 'float' or 'base64', got {encoding!r}"))
            return
        data = []
        for index, text in enumerate(texts):
            vector: Any = _embed(text, dim)
            if encoding == "base64":  # what the openai SDK asks for by default: little-endian float32
                vector = base64.b64encode(struct.pack(f"<{dim}f", *vector)).decode("ascii")
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(len(_tokenize(t)) for t in texts)
        answer: dict[str, Any] = {"object": "list", "data": data, "model": body.get("model") or app.model}
        if app.report_usage:
            answer["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
        self._send_json(200, answer)

    def _reward(self, app: LLMTestServer, path: str, body: dict[str, Any]) -> None:
        """Answer like vLLM's pooling routes, with the scripted reward of (prompt, answer)."""
        texts = _reward_texts(path, body)
        if isinstance(texts, str):
            self._send_json(400, _error_body(400, texts))
            return
        prompt, answer = texts
        function = app._reward_function or _default_reward
        try:
            given = function(prompt, answer)
        except Exception as exc:
            raise _ScriptError(f"the reward function raised {exc!r}") from exc
        if isinstance(given, Mapping):
            self._send_json(200, dict(given))  # scripted as the whole answer
            return
        values = [given] if isinstance(given, (int, float)) else list(given)
        if path == "/classify":
            row: dict[str, Any] = {"index": 0, "label": f"LABEL_{values.index(max(values))}", "probs": values,
                                   "num_classes": len(values)}
        elif path == "/score":
            row = {"index": 0, "object": "score", "score": values[0]}
        else:
            row = {"index": 0, "object": "pooling", "data": values}
        tokens = len(_tokenize(prompt)) + len(_tokenize(answer))
        self._send_json(200, {
            "id": f"{path.strip('/')}-{app._next_id()}", "object": "list", "created": int(time.time()),
            "model": body.get("model") or app.model, "data": [row],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0},
        })

    # -- writing ------------------------------------------------------------

    def _send_fault(self, fault: Fault) -> None:
        if fault.kind == "error":
            headers = {} if fault.retry_after is None else {"Retry-After": _format_seconds(fault.retry_after)}
            self._send_json(fault.code, _error_body(fault.code, fault.message), headers)
        elif fault.kind == "malformed_json":
            self._send_bytes(200, b'{"id": "chatcmpl-malformed", "object": "chat.completion", "choices": [{"ind')
        elif fault.kind == "empty_body":
            self._send_bytes(200, b"")
        else:  # drop_connection (Fault checks its kind when built)
            self._drop()

    def _send_json(self, code: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send_bytes(code, json.dumps(payload).encode("utf-8"), headers)

    def _send_bytes(self, code: int, data: bytes, headers: Mapping[str, str] | None = None) -> None:
        cut = self._cut if code == 200 else None
        announced = len(data)
        if cut is not None:
            data = data[: len(data) // 2]
            if cut.kind == "ends_early":
                announced = len(data)  # framed as complete: only the JSON shows the cut
        self._response_started = True
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(announced))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self._land()
        self.end_headers()
        if data:
            self.wfile.write(data)
        if cut is not None and cut.kind == "drop_midway":
            self.wfile.flush()
            self._drop()

    def _event(self, payload: Any) -> None:
        self._chunk(b"data: " + json.dumps(payload).encode("utf-8") + b"\n\n")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _end_cut_stream(self) -> None:
        """End a stream cut short by a fault: cleanly framed (``ends_early``) or by a dropped connection."""
        assert self._cut is not None
        if self._cut.kind == "ends_early":
            self._land()
            self._chunk(b"")  # the chunked body ends properly, with no finish_reason and no [DONE]
        else:
            self.wfile.flush()
            self._drop()

    def _drop(self) -> None:
        """Close the connection without (the rest of) a response."""
        self.close_connection = True
        self._land()
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _logprob_entries(
    tokens: Sequence[str], table: Sequence[Mapping[str, float]] | None, top_n: int
) -> list[dict[str, Any]]:
    """OpenAI's ``logprobs.content``: scripted distributions, else logprob 0.0 (certainty)."""
    entries = []
    for position, token in enumerate(tokens):
        if table is not None and position < len(table):
            dist = table[position]
            ranked = sorted(dist.items(), key=lambda item: (-item[1], item[0]))
            chosen = dist[token]
        else:
            ranked, chosen = [(token, 0.0)], 0.0
        entries.append(
            {
                "token": token,
                "logprob": chosen,
                "bytes": list(token.encode("utf-8")),
                "top_logprobs": [
                    {"token": alt, "logprob": lp, "bytes": list(alt.encode("utf-8"))} for alt, lp in ranked[:top_n]
                ],
            }
        )
    return entries


class LLMTestServer:
    """An OpenAI-compatible HTTP server on 127.0.0.1, for tests.

    ``url`` (ending in ``/v1``) is the ``api_base`` for litellm ``openai/<name>``
    models and the ``base_url`` of the openai SDK. ``latency``, ``ttft`` and
    ``chunk_delay`` are seconds and may be changed while the server runs.
    """

    def __init__(
        self,
        latency: float = 0.0,
        embedding_dim: int = 16,
        *,
        ttft: float = 0.0,
        chunk_delay: float = 0.0,
        model: str = "test-model",
        port: int = 0,
    ) -> None:
        if isinstance(embedding_dim, bool) or not isinstance(embedding_dim, int) or embedding_dim < 1:
            raise ValueError(f"LLMTestServer(embedding_dim={embedding_dim!r}): expected a positive int")
        self.latency = latency
        self.ttft = ttft
        self.chunk_delay = chunk_delay
        self.embedding_dim = embedding_dim
        self.model = model
        #: Whether answers say how many tokens they used; False plays a provider that reports no usage.
        self.report_usage = True
        self._port = port
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._rules: list[_Rule] = []
        self._reward_function: RewardFunction | None = None
        self._faults: list[_Injected] = []
        self._sockets: set[socket.socket] = set()
        self._ids = 0
        self._in_flight = 0
        self._reset_counters_locked()

    # -- settings -------------------------------------------------------------

    @property
    def latency(self) -> float:
        """Seconds slept before answering each request (hangs excepted)."""
        return self._latency

    @latency.setter
    def latency(self, value: float) -> None:
        self._latency = _check_delay("latency", value) or 0.0

    @property
    def ttft(self) -> float:
        """Seconds a streamed reply waits before its first chunk (after ``latency``)."""
        return self._ttft

    @ttft.setter
    def ttft(self, value: float) -> None:
        self._ttft = _check_delay("ttft", value) or 0.0

    @property
    def chunk_delay(self) -> float:
        """Seconds between the chunks of a streamed reply."""
        return self._chunk_delay

    @chunk_delay.setter
    def chunk_delay(self, value: float) -> None:
        self._chunk_delay = _check_delay("chunk_delay", value) or 0.0

    # -- life cycle -------------------------------------------------------------

    def start(self) -> LLMTestServer:
        """Bind 127.0.0.1 (a free port unless ``port`` was given) and serve in a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError(f"LLMTestServer is already running at {self.root}")
        self._stopping = threading.Event()
        httpd = _HTTPServer(("127.0.0.1", self._port), self)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits up to one poll interval
            name=f"LLMTestServer-{httpd.server_port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hanging and idle connections are closed at once. Safe to call twice."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()  # wakes handlers waiting on a hang, latency or stream delay
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            open_sockets = list(self._sockets)
        for sock in open_sockets:  # idle keep-alive connections would otherwise linger
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> LLMTestServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._httpd is not None

    @property
    def port(self) -> int:
        """The bound port."""
        if self._httpd is None:
            raise RuntimeError("LLMTestServer is not running; call start() or use it as a context manager")
        return self._httpd.server_port

    @property
    def root(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: the api_base for litellm ``openai/`` models."""
        return self.root + "/v1"

    def __repr__(self) -> str:
        where = self.url if self.running else "stopped"
        return f"<LLMTestServer {where} requests={self.requests} in_flight={self.in_flight}>"

    # -- behaviour --------------------------------------------------------------

    def script(
        self,
        pattern: str | re.Pattern[str] | None,
        reply: Reply,
        *,
        times: int | None = None,
        logprobs: Sequence[Mapping[str, float]] | None = None,
    ) -> None:
        """Answer chat requests whose text matches ``pattern`` with ``reply``.

        Rules are tried in the order they were added; ``pattern`` is searched
        (``re.search``) in the text of all messages joined by newlines, and None
        matches everything. The first matching rule with uses left answers.
        A dict reply is sent as JSON text; a callable gets the request body and
        returns a str or dict. ``logprobs`` gives one ``{token: logprob}`` dict
        per reply token (tokens are words with their leading whitespace), e.g.
        ``[{"4": math.log(0.7), "5": math.log(0.2), "3": math.log(0.1)}]``.
        """
        compiled = _compile(pattern, "script(pattern=...)")
        if not (isinstance(reply, (str, Mapping)) or callable(reply)):
            raise TypeError(f"script(reply=...): expected a str, a dict or a callable, got {type(reply).__name__}")
        table = _check_logprobs(logprobs)
        if table is not None and not callable(reply):
            try:
                _check_chosen(_tokenize(_reply_text(reply)), table)
            except _ScriptError as exc:
                raise ValueError(f"script(logprobs=...): {exc}") from None
        rule = _Rule(compiled, reply, _check_times(times, "script()"), table)
        with self._lock:
            self._rules.append(rule)

    def reward_script(self, function: RewardFunction | None) -> None:
        """Play a reward model: ``function(prompt, answer)`` answers ``/classify``, ``/score`` and ``/pooling``.

        It returns a number (the one class's probability, the score, the pooled value),
        a list (class probabilities; the pooled vector) or a dict sent as the whole JSON
        answer. ``None`` goes back to the default: the share of the answer's words found
        in the prompt. The prompt is the non-assistant messages' text (``text_1`` for
        ``/score``), the answer the last assistant message (``text_2``).
        """
        if function is not None and not callable(function):
            raise TypeError(f"reward_script(function=...): expected a callable or None, got {type(function).__name__}")
        with self._lock:
            self._reward_function = function

    def clear_script(self) -> None:
        """Forget all scripted replies; answers go back to the deterministic default."""
        with self._lock:
            self._rules.clear()

    def inject(self, fault: Fault, *, times: int | None = 1, match: str | re.Pattern[str] | None = None) -> None:
        """Answer the next ``times`` matching chat/embeddings/reward requests with ``fault``.

        Faults are used in the order they were injected, before any normal
        answer; ``match`` is searched in the request's text (messages or
        embedding input). ``times=None`` keeps the fault for good.
        """
        if not isinstance(fault, Fault):
            raise TypeError(f"inject(fault=...): expected a Fault (e.g. Fault.rate_limit()), got {type(fault).__name__}")
        entry = _Injected(fault, _check_times(times, "inject()"), _compile(match, "inject(match=...)"))
        with self._lock:
            self._faults.append(entry)

    def clear_faults(self) -> None:
        """Drop all injected faults that have not been used up."""
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> int | None:
        """How many injected fault uses are left (None if one is unlimited)."""
        with self._lock:
            if any(f.remaining is None for f in self._faults):
                return None
            return sum(f.remaining or 0 for f in self._faults)

    # -- counters ---------------------------------------------------------------

    @property
    def requests(self) -> int:
        """Requests handled since start or the last ``reset_counters()``, faults included."""
        with self._lock:
            return self._requests

    @property
    def requests_by_path(self) -> dict[str, int]:
        """Requests per URL path, e.g. ``{"/v1/chat/completions": 3}``."""
        with self._lock:
            return dict(self._by_path)

    @property
    def in_flight(self) -> int:
        """Requests being handled right now."""
        with self._lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """The most requests handled at the same time."""
        with self._lock:
            return self._max_in_flight

    @property
    def idle_s(self) -> float:
        """Seconds with no request in flight between the first request and the last answer.

        A client that keeps its pipeline full leaves this near 0; gaps between
        batches of requests show up here (time before the first request and
        after the last one is not counted).
        """
        with self._lock:
            return self._idle

    @property
    def connections(self) -> int:
        """TCP connections accepted (fewer than ``requests`` when clients keep connections alive)."""
        with self._lock:
            return self._connections

    @property
    def received(self) -> list[ReceivedRequest]:
        """Every request received, in arrival order."""
        with self._lock:
            return list(self._received)

    @property
    def errors(self) -> list[str]:
        """Errors inside the server (e.g. a script function that raised); empty when all is well."""
        with self._lock:
            return list(self._errors)

    def reset_counters(self) -> None:
        """Zero the counters and forget received requests and errors (scripts and faults stay)."""
        with self._lock:
            self._reset_counters_locked()

    def _reset_counters_locked(self) -> None:
        self._requests = 0
        self._by_path: dict[str, int] = {}
        self._max_in_flight = self._in_flight
        self._idle = 0.0
        self._idle_since: float | None = None
        self._connections = 0
        self._received: list[ReceivedRequest] = []
        self._errors: list[str] = []

    # -- used by the handler threads ------------------------------------------

    def _begin(self, path: str) -> None:
        with self._lock:
            self._requests += 1
            self._by_path[path] = self._by_path.get(path, 0) + 1
            if self._in_flight == 0 and self._idle_since is not None:
                self._idle += time.monotonic() - self._idle_since
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def _end(self) -> None:
        with self._lock:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle_since = time.monotonic()

    def _opened(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)
            self._connections += 1

    def _closed(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def _record_received(self, request: ReceivedRequest) -> None:
        with self._lock:
            self._received.append(request)

    def _record_error(self, text: str) -> None:
        with self._lock:
            self._errors.append(text)

    def _next_id(self) -> int:
        with self._lock:
            self._ids += 1
            return self._ids

    def _take_fault(self, text: str) -> Fault | None:
        with self._lock:
            for entry in self._faults:
                if entry.match is None or entry.match.search(text):
                    if entry.remaining is not None:
                        entry.remaining -= 1
                        if entry.remaining == 0:
                            self._faults.remove(entry)
                    return entry.fault
        return None

    def _reply_for(self, body: dict[str, Any], messages: list[Any]) -> tuple[str, tuple[dict[str, float], ...] | None]:
        text = _messages_text(messages)
        with self._lock:
            rule = next(
                (r for r in self._rules if r.remaining != 0 and (r.pattern is None or r.pattern.search(text))),
                None,
            )
            if rule is not None and rule.remaining is not None:
                rule.remaining -= 1
        if rule is None:
            return _default_reply(messages), None
        reply = rule.reply
        if callable(reply) and not isinstance(reply, Mapping):
            try:
                reply = reply(body)
            except Exception as exc:
                raise _ScriptError(f"the reply function for pattern {rule.pattern!r} raised {exc!r}") from exc
        return _reply_text(reply), rule.logprobs

    def _models_response(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": self.model, "object": "model", "created": 0, "owned_by": "pytest-llmops"}],
        }
