"""Release gates: expressions such as ``pass_rate.lower>=0.9`` or ``latency.p95<=2s``.

``parse`` turns text into typed ``Gate`` checks (standard library only, so the
plugin can check ini values at start-up); ``evaluate`` computes them on a
run's results.
"""

from pytest_llmops.gates.parse import Gate, GateSyntaxError, parse_gate, parse_gates

__all__ = ["Gate", "GateSyntaxError", "parse_gate", "parse_gates"]
