"""Auditing a judge: does its verdict survive changes that should not matter?

``llmops judge audit`` runs one judge template (``pairwise``, ``rubric`` or
``faithfulness``) over a labelled set, then again with perturbations that
leave the right verdict unchanged: the two answers swapped (pairwise), an
answer padded with fluff, an instruction to the judge injected into the
answer, and repeated sampling at a temperature above 0. Each bias is reported
as a flip rate with a Wilson interval and a mean score shift with a bootstrap
interval; accuracy against the human labels is reported on the unperturbed
items. Malformed judge answers are counted as unmeasured, never as a verdict.

=================  ============================================================
module             what
=================  ============================================================
``labels.py``      the labelled set: file format, checks, the shipped sets
``perturb.py``     the perturbations and the text they add
``runner.py``      asking the judge for every item and perturbation
``report.py``      flip rates, score shifts, accuracy; text, JSON and Markdown
=================  ============================================================

Standard library only at import; pydantic, numpy and the model client load
when an audit runs.
"""
