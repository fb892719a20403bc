"""Scoring logged answers outside pytest: the same offline checks the eval cases use, over JSONL logs.

    from pytest_llmops.scoring import Check, score_records
    scored = score_records(records, [Check("pii", field="output"), Check("grounded", field="output",
                                                                          context_field="context")])

``llmops score logs.jsonl --checks checks.toml`` runs it from the command line, on this machine's
processes (``--engine local``) or on a Ray cluster (``--engine ray``). Everything here is picklable:
plain dataclasses and module-level functions.
"""

from pytest_llmops.scoring.checks import CHECKS, Check, ChecksError, load_checks
from pytest_llmops.scoring.records import score_record, score_records, summarize

__all__ = ["CHECKS", "Check", "ChecksError", "load_checks", "score_record", "score_records", "summarize"]
