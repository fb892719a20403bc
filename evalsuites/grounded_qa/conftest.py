"""Release gates of the grounded-QA suite (scoped to this folder; see README, "Release gates").

The suite runs on the embedded SmolLM2-135M: the known failures are strict
xfails in the test file, so the pass rate counts the cases the model is
expected to get right, and its Wilson lower bound keeps one lucky run from
passing a regression. The latency bound is generous: it is there to catch a
model or prompt change that makes answers run on, not to time the CPU. The
answers are one word or number; measured here they average 16 output tokens
(the template caps them at 32), so a mean above 24 means the model rambles.
"""

llmops_gates = [
    "pass_rate.lower>=0.75",
    "unmeasured_rate<=0",
    "latency.p95<=15s",
    "tokens.out.mean<=24",
]
