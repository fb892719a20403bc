"""The prompt x model x temperature x few-shot matrix: ``@pytest.mark.llm_matrix(...)``.

``cells`` (standard library only) turns the marker, a suite's conftest and the
ini file into the grid of cells the plugin parametrizes each case over;
``summary`` (loaded at the end of a run that had a matrix) scores each cell,
picks the best one with a paired test against the runner-up and draws the
quality / cost / latency Pareto front; ``early_stop`` stops repeating cells
that are already clearly decided; ``dry_run`` counts and prices the calls a
run would make without sending any.
"""
