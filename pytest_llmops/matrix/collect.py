"""The pytest face of the matrix: its options, marker, and the parametrization of marked tests.

Standard library and pytest only (the plugin loads it at start-up). The
prompt library is opened only when a matrix has a ``prompt`` or ``shots``
axis, to check its templates before any call is sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_llmops.matrix.cells import ATTRIBUTE, PARAM, Cell, MatrixError, build_cells, conftest_axes, parse_ini

MARKER_HELP = (
    "llm_matrix(prompt=[...], model=[...], temperature=[...], shots=[...], name=None, early_stop=False): run "
    "this eval case once per cell of the grid; the llm and prompt fixtures take the cell's values. Axes left out "
    "come from the suite conftest's llmops_matrix, then the ini value llmops_matrix."
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("llmops")
    group.addoption(
        "--llmops-dry-run", action="store_true", default=None, dest="llmops_dry_run",
        help="run no provider call: count the calls each case (and matrix cell) would make and estimate their "
             "cost from the price table (unknown prices stay unknown), then stop",
    )
    parser.addini("llmops_dry_run", "like --llmops-dry-run", type="bool", default=False)
    parser.addini(ATTRIBUTE, "matrix axes for tests marked llm_matrix that do not set them, one per line: "
                  "'temperature = 0, 0.7'", type="linelist", default=[])


def dry_run(config: pytest.Config) -> bool:
    """Whether this run only counts calls (``--llmops-dry-run`` / ``llmops_dry_run``)."""
    flag = config.getoption("llmops_dry_run", None)
    return bool(flag) if flag is not None else bool(config.getini("llmops_dry_run"))


def _conftest_layers(metafunc: pytest.Metafunc) -> list[tuple[str, dict[str, Any]]]:
    """``llmops_matrix`` of the conftest files above the test, the nearest last (it wins)."""
    config = metafunc.config
    by_folder = {}
    for plugin in config.pluginmanager.get_plugins():
        file = getattr(plugin, "__file__", None)
        if file and Path(file).name == "conftest.py" and hasattr(plugin, ATTRIBUTE):
            by_folder[Path(file).resolve().parent] = (Path(file), getattr(plugin, ATTRIBUTE))
    layers = []
    folder = Path(str(metafunc.definition.path)).resolve().parent
    for parent in reversed([folder, *folder.parents]):
        if parent in by_folder:
            conftest, value = by_folder[parent]
            layers.append((f"{conftest}: {ATTRIBUTE}", conftest_axes(value, conftest)))
    return layers


def cells_for(metafunc: pytest.Metafunc) -> list[Cell] | None:
    """The cells of a test marked ``llm_matrix``, or None for an unmarked one; errors are usage errors."""
    marker = metafunc.definition.get_closest_marker("llm_matrix")
    if marker is None:
        return None
    nodeid = metafunc.definition.nodeid
    try:
        if marker.args:
            raise MatrixError(f"{nodeid}: llm_matrix takes keyword arguments only, e.g. llm_matrix(temperature=[0, 0.7])")
        layers = [("ini llmops_matrix", parse_ini(metafunc.config.getini(ATTRIBUTE)))]
        layers += _conftest_layers(metafunc)
        layers.append((f"@pytest.mark.llm_matrix on {nodeid}", dict(marker.kwargs)))
        cells = build_cells([layer for layer in layers if layer[1]] or layers[-1:], default_name=metafunc.function.__name__)
    except MatrixError as exc:
        raise pytest.UsageError(str(exc)) from None
    if any(cell.prompt is not None or cell.shots is not None for cell in cells):
        _check_prompts(metafunc.config, cells, nodeid)
    return cells


def _check_prompts(config: pytest.Config, cells: list[Cell], nodeid: str) -> None:
    """Every prompt exists at its pinned version and has as many examples as the shots ask, before any call."""
    from pytest_llmops.matrix.prompting import check_cell_prompt
    from pytest_llmops.prompts import PromptError
    from pytest_llmops.session import get_state

    try:
        library = get_state(config).prompts()
    except PromptError as exc:
        raise pytest.UsageError(f"{nodeid}: llm_matrix has a prompt axis, but the prompt library cannot load: {exc}") from None
    for cell in cells:
        problem = check_cell_prompt(library, cell)
        if problem:
            raise pytest.UsageError(f"{nodeid}: llm_matrix cell {cell.id}: {problem}")


def parametrize(metafunc: pytest.Metafunc) -> None:
    """Parametrize a test marked ``llm_matrix`` over its cells (``pytest_generate_tests``).

    A bad matrix is kept and raised once collection is done (``raise_errors``):
    raised here, pytest would report it as a collection error, not a usage error.
    """
    from pytest_llmops.session import get_state

    try:
        cells = cells_for(metafunc)
    except pytest.UsageError as exc:
        get_state(metafunc.config).matrix_errors.append(str(exc))
        return
    if cells is None:
        return
    if PARAM not in metafunc.fixturenames:
        # The test need not ask for the cell: the llm and prompt fixtures read it from the parameters.
        metafunc.fixturenames.append(PARAM)
    metafunc.parametrize(PARAM, cells, ids=[cell.id for cell in cells])
    grid = get_state(metafunc.config).matrix_grid.setdefault(cells[0].matrix, [])
    grid.extend(cell for cell in cells if cell not in grid)


def cell_of(node: Any) -> Cell | None:
    """The matrix cell a test item runs in, or None."""
    callspec = getattr(node, "callspec", None)
    if callspec is None:
        return None
    cell = callspec.params.get(PARAM)
    return cell if isinstance(cell, Cell) else None


@pytest.fixture
def llmops_cell(request: pytest.FixtureRequest) -> Cell:
    """The matrix cell the running case is in (model, prompt, temperature, shots)."""
    cell = cell_of(request.node)
    if cell is None:
        pytest.fail(f"{request.node.nodeid}: llmops_cell is only given to tests marked llm_matrix(...)", pytrace=False)
    return cell


def raise_errors(config: pytest.Config) -> None:
    """Stop the run with the matrices that could not be built (exit status 4), before any test."""
    from pytest_llmops.session import get_state

    errors = get_state(config).matrix_errors
    if errors:
        raise pytest.UsageError("\n".join(dict.fromkeys(errors)))
