"""Reports of a run: the terminal summary (more outputs to come)."""
