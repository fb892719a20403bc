"""Release gates of the grounded-QA suite (scoped to this folder; see README, "Release gates").

The suite runs on the embedded SmolLM2-135M. Its known weaknesses are data
(``known_failure`` in cases.jsonl, ``KNOWN`` in test_grounded_offline.py):
they run, count against the pass rates below, and the summary lists them. Each
rate is a Wilson 95% lower bound set about two cases below what the model
reaches here (llama-cpp-python 0.3.36, greedy; in brackets), so a faithful
build of the default model passes and a broken model or prompt does not. The
latency bound is generous: it is there to catch a model or prompt change that
makes answers run on, not to time the CPU. The answers are one word or number;
measured here they average 17 output tokens (the template caps them at 32),
so a mean above 24 means the model rambles.
"""

llmops_gates = [
    # The expected word and none of the wrong ones (18/22: lower bound 0.61).
    "[test=test_answer_is_grounded_in_the_context] pass_rate.lower>=0.5",
    # The offline grounding detector: of the answers it judges (10 of 22), it finds the right ones
    # supported and flags the wrong ones (6/10 pass: lower bound 0.31). It declines the answers that
    # reword the context (12/22 unmeasured, the share its card states for abstractive answers).
    "[test=test_answer_is_supported_by_the_context] pass_rate.lower>=0.2",
    "[test=test_answer_is_supported_by_the_context] unmeasured_rate<=0.7",
    "[test=test_answer_is_grounded_in_the_context] unmeasured_rate<=0",
    "[test=test_answer_is_grounded_in_the_context] latency.p95<=15s",
    "[test=test_answer_is_grounded_in_the_context] tokens.out.mean<=24",
]
