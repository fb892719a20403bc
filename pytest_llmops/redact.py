"""The one scrubber: no credential in any file or line pytest-llmops writes.

Every writer goes through this module: the call cache, the results file and
saved baselines, JUnit properties and failure texts, the HTML and Markdown
reports, the GitHub step summary, the terminal summary, and the error
messages that become a case's reason. Two operations:

* ``scrub(params)`` for request parameters: drops every credential-named field
  (``api_key``, ``headers``, ``extra_headers``, ``authorization``, names
  ending in ``_key``/``_token``/``_secret``/``_password``...) at any depth,
  and redacts the strings left;
* ``redact(value)`` / ``redact_text(text)`` for records and report text: keeps
  every key and replaces what looks like a credential inside strings with
  ``[REDACTED]``:

  - the values of secret environment variables (``OPENAI_API_KEY``,
    ``*_TOKEN``, ...) and of secrets seen in requests (``remember``), wherever
    they appear (a provider may echo a key in its error message);
  - the credentials of a URL (``https://user:key@host`` -> ``https://[REDACTED]@host``);
  - secret query values (``?api-key=...``, ``&token=...``, ``&sig=...``);
  - ``Bearer``/``Basic`` credentials and ``sk-...`` style keys.

Secrets shorter than ``MIN_SECRET_LENGTH`` characters are not searched for:
a ``1`` or ``true`` is no credential, and replacing it would garble every text.

The plugin imports this module at start-up: standard library only.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = [
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "is_secret_name",
    "known_secrets",
    "redact",
    "redact_text",
    "redact_url",
    "remember",
    "remembered",
    "remember_request",
    "scrub",
]

#: What a secret is replaced with.
REDACTED = "[REDACTED]"
#: Shorter values are never treated as secrets (see the module docstring).
MIN_SECRET_LENGTH = 8

_SECRET_NAMES = frozenset(
    {
        "api_key",
        "apikey",
        "api-key",
        "authorization",
        "proxy-authorization",
        "headers",
        "extra_headers",
        "key",
        "secret",
        "password",
        "passwd",
        "token",
        "cookie",
        "set-cookie",
        "credentials",
    }
)
# Suffixes of credential names. "_token" but not "_tokens": max_tokens is a parameter.
_SECRET_SUFFIXES = ("_key", "-key", "_secret", "-secret", "_password", "_token", "-token")

# Query parameters whose value is a credential: api-key, key, access_token, sig (Azure SAS), code (Azure Functions)...
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&;](?:[\w.\-]*(?:key|token|secret|password|passwd|pwd|signature|credential|credentials|auth)"
    r"|sig|code)=)(?P<value>[^&#\s\"'<>]+)",
    re.IGNORECASE,
)
# The userinfo of a URL: scheme://user:password@ or scheme://token@ (anchored on "://": fast on long texts).
_USERINFO = re.compile(r"://[^/?#\s@\"'<>]+@")
# An Authorization credential in text. It must hold a digit, so "Basic knowledge" stays. The word
# boundary is a look-behind after the literal: a leading \b would make the search ~100x slower.
_AUTH_SCHEME = re.compile(
    r"(?P<scheme>Bearer|Basic)(?<![A-Za-z0-9_]Bearer)(?<![A-Za-z0-9_]Basic)\s+"
    r"(?=[A-Za-z0-9._~+/\-]*\d)[A-Za-z0-9._~+/\-]{8,}=*"
)
# Keys in the sk-... form (OpenAI, Anthropic and many gateways), not the end of "task-..." or "risk-...".
_SK_KEY = re.compile(r"sk-(?<![A-Za-z0-9_]sk-)[A-Za-z0-9_\-]{16,}")

# What the patterns above need: most strings hold none of these and skip the patterns (a results file has many).
_HINTS = ("://", "=", "Bearer", "Basic", "sk-")

_remembered: set[str] = set()
_remembered_sorted: tuple[str, ...] = ()
_lock = threading.Lock()


def is_secret_name(name: object) -> bool:
    """Whether a field, header or variable called ``name`` holds a credential."""
    lowered = str(name).lower()
    return lowered in _SECRET_NAMES or lowered.endswith(_SECRET_SUFFIXES)


def remember(*values: str | None) -> None:
    """Treat ``values`` as secrets from now on, in every text this process redacts."""
    global _remembered_sorted
    fresh = {v.strip() for v in values if isinstance(v, str) and len(v.strip()) >= MIN_SECRET_LENGTH}
    if fresh <= _remembered:
        return
    with _lock:
        _remembered.update(fresh)
        _remembered_sorted = tuple(sorted(_remembered, key=len, reverse=True))


def remembered() -> tuple[str, ...]:
    """The secrets seen in requests so far, longest first.

    Cheap: the model client redacts every call record with these (and the
    patterns), leaving the environment scan of ``known_secrets`` to the
    writers and to error messages.
    """
    return _remembered_sorted


def remember_request(*, api_key: str | None = None, api_base: str | None = None, params: Mapping[str, Any] | None = None) -> None:
    """Remember the credentials a request carries: its key, its URL's, its headers' secret values."""
    remember(api_key)
    if api_base:
        remember(*_url_secrets(api_base))
    for name in ("headers", "extra_headers"):
        headers = (params or {}).get(name)
        if isinstance(headers, Mapping):
            for header, value in headers.items():
                if is_secret_name(header) and isinstance(value, str):
                    # "Bearer sk-..." is remembered whole and as the bare token.
                    remember(value, value.split(None, 1)[-1])


def _url_secrets(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = [unquote(x) for x in (parts.username, parts.password) if x]
    found.extend(unquote(match["value"]) for match in _QUERY_SECRET.finditer("?" + parts.query) if parts.query)
    return found


# The last scan of the environment: (the raw environment it saw, the remembered secrets, the answer).
_known_memo: tuple[dict[Any, Any], tuple[str, ...], tuple[str, ...]] | None = None
# pytest sets this on every test phase; it names a test, never a credential.
_IGNORED_VARIABLES = ("PYTEST_CURRENT_TEST", b"PYTEST_CURRENT_TEST")


def _raw_environment() -> dict[Any, Any] | None:
    """A copy of the process environment as ``os.environ`` holds it, less pytest's per-phase variable."""
    raw = getattr(os.environ, "_data", None)
    if not isinstance(raw, dict):
        return None
    copy = dict(raw)
    for name in _IGNORED_VARIABLES:
        copy.pop(name, None)
    return copy


def known_secrets() -> list[str]:
    """The secret values searched for: secret environment variables' and remembered ones, longest first.

    The scan is redone only when the environment or the remembered secrets changed:
    a run calls this several times per case, and decoding every variable each time
    cost ~0.2 ms a call. Copying and comparing the raw environment dict is C-level
    work (``os.environ._data``; where that is missing the scan runs every time).
    """
    global _known_memo
    # Copied before the scan: a change made meanwhile makes the next call scan again.
    snapshot = _raw_environment()
    memo, remembered_now = _known_memo, _remembered_sorted
    if memo is not None and snapshot is not None and memo[1] is remembered_now and memo[0] == snapshot:
        return list(memo[2])
    values = {
        value.strip()
        for name, value in os.environ.items()
        if is_secret_name(name) and len(value.strip()) >= MIN_SECRET_LENGTH
    }
    found = tuple(sorted(values | set(remembered_now), key=len, reverse=True))
    if snapshot is not None:
        _known_memo = (snapshot, remembered_now, found)
    return list(found)


def redact_text(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with every credential in it replaced by ``[REDACTED]`` (see the module docstring)."""
    if not text:
        return text
    for secret in known_secrets() if secrets is None else secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    if not any(hint in text for hint in _HINTS):
        return text
    text = _USERINFO.sub(f"://{REDACTED}@", text)
    text = _QUERY_SECRET.sub(lambda m: m["head"] + REDACTED, text)
    text = _AUTH_SCHEME.sub(lambda m: f"{m['scheme']} {REDACTED}", text)
    return _SK_KEY.sub(REDACTED, text)


def redact_url(url: str | None, secrets: Iterable[str] | None = None) -> str | None:
    """A URL fit to be written: its credentials and secret query values redacted, the rest as it was."""
    return None if url is None else redact_text(url, secrets)


def redact(value: Any, secrets: Iterable[str] | None = None) -> Any:
    """A copy of ``value`` (JSON-like data) with every string redacted; keys and structure kept."""
    known = known_secrets() if secrets is None else list(secrets)
    return _redact(value, known)


def _redact(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return redact_text(value, secrets)
    if value is None or isinstance(value, (int, float)):
        return value  # the common case, before the slower Mapping check
    if isinstance(value, (dict, Mapping)):
        return {k: _redact(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact(v, secrets) for v in value]
    return value


def scrub(value: Any, secrets: Iterable[str] | None = None) -> Any:
    """A copy of request parameters with every credential-named field removed, at any depth,
    and the remaining strings redacted. Keeps ``max_tokens``, ``top_logprobs`` and the like."""
    known = known_secrets() if secrets is None else list(secrets)
    return _scrub(value, known)


def _scrub(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, Mapping):
        return {k: _scrub(v, secrets) for k, v in value.items() if not is_secret_name(k)}
    if isinstance(value, (list, tuple)):
        return [_scrub(v, secrets) for v in value]
    return _redact(value, secrets)
