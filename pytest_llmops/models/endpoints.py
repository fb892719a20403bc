"""Where a direct request goes and how it proves who sends it: URL and HTTP headers from an ``api_base``.

An ``api_base`` may carry more than a host and a path:

* a query string (Azure style, ``.../v1?api-version=2024-06-01&api-key=...``):
  the endpoint's path goes after the base's path and the query is kept;
* credentials (``https://user:password@gateway/v1``, a gateway behind basic
  auth): they leave the URL and go out as ``Authorization: Basic ...``. The
  provider key from the environment is then not sent (the URL's credentials
  are the explicit choice); a key configured for the model as well is an error
  (one ``Authorization`` header cannot carry both).

Per-request ``headers`` / ``extra_headers`` parameters are HTTP headers, as
litellm and the OpenAI SDK treat them, never part of the JSON body.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from pytest_llmops.models.backend import ProviderError
from pytest_llmops.redact import redact_url

#: Model prefixes whose requests go to an OpenAI-compatible ``api_base``, and the environment
#: variable that holds their key when none is configured (the names litellm reads).
KEY_VARIABLES = {"openai/": "OPENAI_API_KEY", "hosted_vllm/": "HOSTED_VLLM_API_KEY", "openai_compatible/": "OPENAI_API_KEY"}
#: Request parameters that are HTTP headers, not part of the JSON body.
HEADER_PARAMS = ("headers", "extra_headers")
_API_BASE_OPTIONS = "--llmops-api-base / --llmops-judge-api-base, or the llm_eval marker's api_base"


@dataclass(frozen=True)
class Endpoint:
    """The URL of one request and the headers that go with it (credentials included: never record this)."""

    url: str
    headers: dict[str, str] = field(repr=False)


def api_key_for(model: str, configured: str | None) -> str | None:
    """The key to send: the configured one, else the provider's usual environment variable."""
    if configured:
        return configured
    for prefix, variable in KEY_VARIABLES.items():
        if model.startswith(prefix):
            return os.environ.get(variable) or None
    return None


def endpoint(
    api_base: str | None, path: str, model: str, api_key: str | None, params: Mapping[str, Any] | None = None
) -> Endpoint:
    """The URL of ``path`` under ``api_base`` and the request's headers; a bad ``api_base`` is a ``ProviderError``
    (not retryable) that names the setting and shows the URL redacted."""
    if not api_base:
        raise ProviderError(
            f"{model}: the direct OpenAI-compatible backend needs an api_base ({_API_BASE_OPTIONS})", retryable=False
        )
    try:
        parts = urlsplit(api_base.strip())
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise _bad_base(model, api_base, str(exc)) from None
    if parts.scheme not in ("http", "https") or not host:
        raise _bad_base(model, api_base, "expected http(s)://host[:port]/path")
    headers: dict[str, str] = {}
    if parts.username is not None or parts.password is not None:
        if api_key:
            raise ProviderError(
                f"{model}: the api_base {redact_url(api_base)!r} carries credentials (user:password@) and an api_key "
                f"is configured as well; give one or the other, not both",
                retryable=False,
            )
        pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
    else:
        key = api_key_for(model, api_key)
        if key:
            headers["Authorization"] = f"Bearer {key}"
    headers.update(request_headers(params or {}, model))
    netloc = parts.netloc.rpartition("@")[2]
    url = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + path, parts.query, ""))
    return Endpoint(url, headers)


def request_headers(params: Mapping[str, Any], model: str) -> dict[str, str]:
    """The HTTP headers a request's ``headers`` / ``extra_headers`` parameters ask for (later ones win)."""
    headers: dict[str, str] = {}
    for name in HEADER_PARAMS:
        given = params.get(name)
        if given is None:
            continue
        if not isinstance(given, Mapping) or not all(isinstance(k, str) for k in given):
            raise ProviderError(
                f"{model}: {name}= must be a dict of header names to values, got {type(given).__name__}",
                retryable=False,
            )
        headers.update({key: str(value) for key, value in given.items()})
    return headers


def body_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The request parameters that belong in the JSON body (all but the headers)."""
    return {key: value for key, value in params.items() if key not in HEADER_PARAMS}


def _bad_base(model: str, api_base: str, problem: str) -> ProviderError:
    return ProviderError(
        f"{model}: the api_base {redact_url(api_base)!r} is not a usable URL ({problem}); fix {_API_BASE_OPTIONS}",
        retryable=False,
    )
