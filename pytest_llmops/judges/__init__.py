"""LLM-as-judge metrics: templates as data, structured verdicts, guarded inputs, calibration.

=====================  ==========================================================
module                 what
=====================  ==========================================================
``templates/``         one folder per judge template (prompt-layer TOML)
``templates.py``       loading them (name, version, hash) with their answer schema
``schemas.py``         pydantic schemas of the answers and their contradiction checks
``engine.py``          render, ask (JSON), validate, one re-ask, else unmeasured
``guard.py``           escaping the text under evaluation; flagging judge-addressing
``scoring.py``         probability-weighted scores from logprobs (G-Eval)
``_rubric.py``         rubric / G-Eval
``rag.py``             faithfulness, answer relevancy, context precision and recall
``_pairwise.py``       A vs B in both orders
``_ground_truth.py``   the judge writes a reference; ROUGE-L or similarity compares
``calibration.py``     agreement with human labels; ``llmops calibrate``
``audit/``             biases under perturbations; ``llmops judge audit``
=====================  ==========================================================

Every metric is ``async`` and returns a ``Score`` whose signature names the
judge model and the template(s) by name, version and hash. Names load on first
use (pydantic is imported only when a judge metric runs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_llmops._lazy import lazy_exports

_EXPORTS = {
    "rubric": "_rubric",
    "faithfulness": "rag",
    "answer_relevancy": "rag",
    "context_precision": "rag",
    "context_recall": "rag",
    "pairwise": "_pairwise",
    "ground_truth": "_ground_truth",
    "ask": "engine",
    "JudgeReply": "engine",
    "JudgeTemplate": "templates",
    "load_judge_template": "templates",
    "shipped_templates": "templates",
    "escape_block": "guard",
    "scan_for_judge_address": "guard",
    "weighted_score": "scoring",
    "calibrate": "calibration",
    "CalibrationReport": "calibration",
    "CalibrationError": "calibration",
    "require_calibrated": "calibration",
    "calibration_key": "calibration",
}

__all__ = [
    "CalibrationError",
    "CalibrationReport",
    "JudgeReply",
    "JudgeTemplate",
    "answer_relevancy",
    "ask",
    "calibrate",
    "calibration_key",
    "context_precision",
    "context_recall",
    "escape_block",
    "faithfulness",
    "ground_truth",
    "load_judge_template",
    "pairwise",
    "require_calibrated",
    "rubric",
    "scan_for_judge_address",
    "shipped_templates",
    "weighted_score",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from pytest_llmops.judges.calibration import (
        CalibrationError,
        CalibrationReport,
        calibrate,
        calibration_key,
        require_calibrated,
    )
    from pytest_llmops.judges.engine import JudgeReply, ask
    from pytest_llmops.judges._ground_truth import ground_truth
    from pytest_llmops.judges.guard import escape_block, scan_for_judge_address
    from pytest_llmops.judges._pairwise import pairwise
    from pytest_llmops.judges.rag import (
        answer_relevancy,
        context_precision,
        context_recall,
        faithfulness,
    )
    from pytest_llmops.judges._rubric import rubric
    from pytest_llmops.judges.scoring import weighted_score
    from pytest_llmops.judges.templates import (
        JudgeTemplate,
        load_judge_template,
        shipped_templates,
    )
