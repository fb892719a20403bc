"""Root conftest: keeps benchmark scripts out of test collection.

The plugin itself needs no conftest: it loads through its ``pytest11`` entry point.
"""

collect_ignore = ["benchmarks", "scripts"]
