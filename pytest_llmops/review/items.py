"""The identity of a judged item: the case, the check and the texts the judge saw.

A human label belongs to one item. Its id hashes the test id, the score's
name and the judged texts, so a later run whose answer changed is a new item
and an old label does not carry over to it. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

#: The details key under which a judge score keeps the texts it judged (only with review on).
JUDGED_KEY = "judged"


def item_sha256(judged: Mapping[str, Any]) -> str:
    """A hash of the judged texts (input, output, context...), stable across runs."""
    return hashlib.sha256(json.dumps(dict(judged), sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def item_id(nodeid: str, score_name: str, judged: Mapping[str, Any]) -> str:
    """The review item's id: 16 hex digits of the case, the check and the judged texts."""
    text = f"{nodeid}\0{score_name}\0{item_sha256(judged)}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plain_texts(judged: Mapping[str, Any] | None) -> dict[str, Any]:
    """The judged texts as JSON values: retrieved chunks become their ``text``, other objects ``str()``."""

    def plain(value: Any) -> Any:
        if value is None or isinstance(value, (str, int, float, bool)):
            return value
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        text = getattr(value, "text", None)
        return text if isinstance(text, str) else str(value)

    return {key: plain(value) for key, value in (judged or {}).items()}
