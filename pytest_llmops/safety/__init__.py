"""Safety detectors: PII and secrets, leaks of secrets and system prompts, toxicity, prompt injection.

Pattern-based parts (``find_pii``, ``redact``, ``find_leaks``) use the
standard library only. The toxicity and injection models are small linear
models trained by ``scripts/train_safety.py`` on public data and shipped as
weights (``models/``, each with a model card); they need numpy and load on
first use. Judge-backed variants live in ``pytest_llmops.safety.judge``.

Names are imported lazily, so ``import pytest_llmops.safety`` costs nothing.
"""

from __future__ import annotations


from pytest_llmops._lazy import lazy_exports

_EXPORTS = {
    "Finding": "findings",
    "Detection": "findings",
    "find_pii": "pii",
    "redact": "pii",
    "ENTITY_TYPES": "pii",
    "DEFAULT_TYPES": "pii",
    "Leak": "leak",
    "find_leaks": "leak",
    "detect_toxicity": "toxicity",
    "toxicity_scores": "toxicity",
    "detect_injection": "injection",
    "make_canary": "checks",
    "pii_check": "checks",
    "leak_check": "checks",
    "toxicity_check": "checks",
    "injection_check": "checks",
    "injection_followed_check": "checks",
    "judge_toxicity": "judge",
    "judge_bias": "judge",
    "judge_pii": "judge",
    "judge_injection_followed": "judge",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
