"""Results: per-case outcomes, run summaries and the versioned JSON results file."""
