"""``llmops results merge``: the results files of ``--llmops-shard`` runs made into one run.

The shards must be of one suite run one way: the same schema, case set,
settings, model and prompts. Each case must come from exactly one shard, and
every shard 1..n must be there. Corpus scores (BLEU, chrF, TER) are computed
again from the pooled pairs of every shard, as the unsharded run computes
them, never averaged; the deferred gates are then evaluated on all the cases.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_llmops.results.models import RunResult, ScoreResult, read_results

#: Settings that may differ between shards: where each wrote its files, and the shard itself.
_PER_SHARD_SETTINGS = frozenset({"shard", "results", "html", "markdown", "history", "sources", "progress", "cache_path"})


class MergeError(ValueError):
    """The shards cannot be merged; the message names the file and the fix."""


def settings_hash(run: RunResult) -> str:
    """Hash of the settings that can change a result (not the files a shard wrote)."""
    kept = {k: v for k, v in run.settings.items() if k not in _PER_SHARD_SETTINGS}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _prompt_hashes(run: RunResult) -> dict[tuple[str, str], str]:
    return {(p.name, p.version): p.hash for case in run.cases for p in case.prompts}


def _models(run: RunResult) -> set[str]:
    return {call.model for case in run.cases for call in case.calls if call.role == "llm"}


def read_shards(paths: Sequence[Path]) -> list[tuple[Path, RunResult]]:
    """Read and check the shard files: one suite, every shard once, every case once."""
    if not paths:
        raise MergeError("no shard files given; e.g. llmops results merge shard-*.json -o results.json")
    shards: list[tuple[Path, RunResult]] = []
    for path in paths:
        try:
            run = read_results(Path(path))
        except FileNotFoundError:
            raise MergeError(f"{path}: no such file") from None
        except (OSError, ValueError) as exc:
            raise MergeError(f"{path}: cannot read it: {exc}") from None
        if run.shard is None:
            raise MergeError(f"{path}: not a shard's results (it was not run with --llmops-shard=i/n)")
        shards.append((Path(path), run))
    first_path, first = shards[0]
    assert first.shard is not None
    by_index: dict[int, Path] = {}
    prompts = _prompt_hashes(first)
    for path, run in shards:
        shard = run.shard
        assert shard is not None
        checks = [
            ("shard count", shard.count, first.shard.count),
            ("case set (hash of every collected case id: the shards collected different tests)",
             shard.case_ids_hash, first.shard.case_ids_hash),
            ("settings hash", settings_hash(run), settings_hash(first)),
            ("model", run.settings.get("model"), first.settings.get("model")),
            ("duration file the split was balanced by", shard.durations_hash, first.shard.durations_hash),
            ("deferred gates", sorted(shard.gates), sorted(first.shard.gates)),
        ]
        for what, mine, theirs in checks:
            if mine != theirs:
                raise MergeError(
                    f"{path}: its {what} is {mine!r}, {first_path} has {theirs!r}; merge only the shards of one run "
                    "of one suite, with the same settings"
                )
        models = _models(run) - _models(first)
        if models and _models(first):
            raise MergeError(f"{path}: its calls went to model(s) {sorted(models)}, not in {first_path}")
        for key, digest in _prompt_hashes(run).items():
            if prompts.setdefault(key, digest) != digest:
                raise MergeError(
                    f"{path}: prompt {key[0]!r} version {key[1]!r} has hash {digest}, another shard used "
                    f"{prompts[key]}; the prompt changed between shards, run them on one commit"
                )
        if shard.index in by_index:
            raise MergeError(f"{path}: duplicated shard {shard.index}/{shard.count}, also in {by_index[shard.index]}")
        by_index[shard.index] = path
    missing = sorted(set(range(1, first.shard.count + 1)) - set(by_index))
    if missing:
        raise MergeError(
            f"missing shard(s) {', '.join(f'{i}/{first.shard.count}' for i in missing)}: got {len(shards)} "
            f"file(s) ({', '.join(str(p) for p, _ in shards)}); pass every shard's results file"
        )
    seen: dict[str, Path] = {}
    for path, run in shards:
        for case in run.cases:
            if case.nodeid in seen:
                raise MergeError(f"{path}: duplicated case {case.nodeid}, also in {seen[case.nodeid]}")
            seen[case.nodeid] = path
        assert run.shard is not None
        lost = sorted(set(run.shard.selected) - {case.nodeid for case in run.cases})
        if lost:
            raise MergeError(f"{path}: missing case(s) {', '.join(lost[:5])}: selected but no result (interrupted?)")
    if len(seen) != first.shard.cases_total:
        raise MergeError(
            f"the shards hold {len(seen)} cases, the suite has {first.shard.cases_total}: some case ran in no shard"
        )
    return sorted(shards, key=lambda item: item[1].shard.index)  # type: ignore[union-attr]


def _corpus_scores(shards: Sequence[tuple[Path, RunResult]]) -> list[ScoreResult]:
    states = [run.corpus_state for _, run in shards if run.corpus_state]
    if not states:
        return []
    from pytest_llmops.metrics._corpus import CorpusRegistry

    registry = CorpusRegistry()
    for state in states:
        registry.merge(state)
    return [ScoreResult.model_validate(score.to_dict()) for score in registry.finalize()]


def merge_shards(paths: Sequence[Path]) -> RunResult:
    """One ``RunResult`` from every shard's file; raises ``MergeError`` naming the file at fault."""
    from pytest_llmops.gates.evaluate import evaluate_gates
    from pytest_llmops.gates.parse import parse_gates
    from pytest_llmops.results.collect import CaseOutcome
    from pytest_llmops.results.latency import latency_groups
    from pytest_llmops.results.summary import summarize

    shards = read_shards(paths)
    runs = [run for _, run in shards]
    first = runs[0]
    assert first.shard is not None
    cases = sorted((case for run in runs for case in run.cases), key=lambda case: case.nodeid)
    gates = [replace(gate, within=first.shard.gates_within.get(text))
             for text, gate in zip(first.shard.gates, parse_gates(first.shard.gates, source=f"gates stored in {shards[0][0]}"))]
    confidence = float(first.settings.get("gate_confidence") or 0.95)
    settings: dict[str, Any] = {k: v for k, v in first.settings.items() if k != "shard"}
    settings["shard"] = None
    return RunResult(
        started_at=min(run.started_at for run in runs),
        finished_at=max(run.finished_at for run in runs),
        interrupted=any(run.interrupted for run in runs),
        exit_status=None,
        settings=settings,
        environment=first.environment,
        summary=summarize(_outcomes(cases, CaseOutcome)).to_dict(),
        cases=cases,
        group_scores=_corpus_scores(shards),
        gates=evaluate_gates(gates, cases, confidence=confidence) if gates else [],
        latency=latency_groups(cases),
    )


def _outcomes(cases: Sequence[Any], outcome_type: Any) -> list[Any]:
    """The cases as the ``CaseOutcome`` objects ``summarize`` reads."""
    from dataclasses import fields

    names = {f.name for f in fields(outcome_type)} - {"finished"}
    return [outcome_type(**{k: v for k, v in case.model_dump(mode="json").items() if k in names}, finished=True)
            for case in cases]
