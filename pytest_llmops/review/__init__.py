"""Human review of judge verdicts: which cases to review, review tasks out, labels back in.

- ``select``: marks a seeded sample of cases, plus every case whose judge
  score lies within a margin of its threshold (standard library only: the
  plugin uses it at start-up and at the end of a run).
- ``tasks`` / ``formats``: review tasks built from a results file, written
  for Label Studio, Argilla or as plain JSONL; labels read back from each.
- ``labels``: the label store (JSONL, several reviewers per item), majority
  labels, the file ``llmops calibrate`` reads, overrides of judge verdicts.
- ``agreement``: Cohen's and Fleiss' kappa, judge-vs-human agreement.
- ``cli``: ``llmops review export|import|report``.
"""
