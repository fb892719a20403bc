"""Release gates of the agent_tools suite (README, "Traces of chains and agents").

The agent routes by rules (which tool a question needs), calls real tools, and the embedded model
writes the answer from the tool's result. The trajectory checks judge the app's routing, so they
must all pass; the answer check judges the small model, gated with a margin below what it reaches.
"""

llmops_gates = [
    "[test=test_the_agent_calls_the_right_tools_in_order] pass_rate>=1",
    "steps.max<=3",
    "span[kind=tool].latency.p95<=1s",
    # The model states the tool's result in 2 of 4 (Wilson 95% lower bound 0.150): one fewer fails.
    "[test=test_the_answer_states_the_tools_result] pass_rate.lower>=0.1",
]
