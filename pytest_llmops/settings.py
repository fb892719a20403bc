"""Every setting of the plugin, where it comes from, and how it is checked.

Each setting can be given four ways; the first one present wins:

1. the ``llm_eval`` marker on the test (for the settings a marker may carry),
2. the command line (``--llmops-<name>``),
3. the ini file (``llmops_<name>`` under ``[tool.pytest.ini_options]``, or
   ``pytest.ini`` / ``tox.ini`` / ``setup.cfg``),
4. the default below.

Values are checked once at start-up; a bad one is a ``pytest.UsageError``
that names where it came from and shows a valid example.

Standard library and pytest only: the plugin imports this at start-up.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

#: The embedded local model: SmolLM2-135M-Instruct on llama.cpp, no API key needed.
DEFAULT_MODEL = "local/smollm2"
RECORD_MODES = ("off", "new", "none", "all")
#: vLLM's reward-server routes (``models/backend.py`` keeps the same list; this module stays import-light).
REWARD_APIS = ("classify", "score", "pooling")
#: Retries beyond this only stretch a failing run: the deadline bounds the call anyway.
MAX_RETRIES = 20
#: A provider call that may take longer than a day is a typo, not a setting.
MAX_SECONDS = 86400.0
#: Fractions where 0 and 1 themselves make sense (no tolerance; review every case or only the straddlers).
_CLOSED_FRACTIONS = ("compare_tolerance", "review_sample", "review_margin")
#: Where named baselines are stored, under the rootdir.
BASELINES_FOLDER = Path(".llmops") / "baselines"


@dataclass(frozen=True)
class Option:
    """One setting: its name, type, default and help, for both the CLI and the ini file."""

    name: str
    help: str
    default: Any
    #: string | int | seconds | age | usd | fraction | choice | shard | url | baseline | mlflow (a tracking URI) |
    #: file (written at the end) | path | paths | lines
    kind: str = "string"
    choices: tuple[str, ...] = ()
    example: str = ""
    marker: bool = False  # may the llm_eval marker override it?
    cli: str | None = None  # a flag other than --llmops-<name>, e.g. the singular of a repeatable one
    #: Bounds of an ``int`` setting (``at_most=None``: no upper bound).
    at_least: int = 0
    at_most: int | None = None

    @property
    def flag(self) -> str:
        return self.cli or "--llmops-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "llmops_" + self.name

    @property
    def dest(self) -> str:
        return "llmops_" + self.name


OPTIONS: tuple[Option, ...] = (
    Option("model", "model under test: any litellm model name, or local/smollm2 (the embedded default)",
           DEFAULT_MODEL, example="openai/gpt-4o-mini", marker=True),
    Option("api_base", "base URL for the model under test (e.g. a self-hosted OpenAI-compatible server)",
           None, kind="url", example="http://127.0.0.1:8000/v1", marker=True),
    Option("judge", "judge model for judge-based checks; none by default, so such checks end unmeasured",
           None, example="anthropic/claude-3-5-haiku-latest", marker=True),
    Option("judge_api_base", "base URL for the judge model", None, kind="url", example="http://127.0.0.1:8000/v1",
           marker=True),
    Option("reward_model", "reward model for reward_score / assert_reward (a vLLM reward server: "
           "hosted_vllm/<name> with --llmops-reward-api-base); none by default, so reward checks end unmeasured",
           None, example="hosted_vllm/Skywork/Skywork-Reward-V2-Qwen3-0.6B", marker=True),
    Option("reward_api_base", "base URL of the reward model's server (with or without /v1: its /classify, /score "
           "and /pooling routes are at the root)", None, kind="url", example="http://127.0.0.1:8000/v1", marker=True),
    Option("reward_api", "which reward-server API scores an answer: classify (sequence-classification reward "
           "models: chat messages -> class probabilities), score (cross-encoders: text_1/text_2 -> score) or "
           "pooling (chat messages -> the last token's pooled output)", "classify", kind="choice",
           choices=REWARD_APIS, example="score", marker=True),
    Option("paraphraser", "model that writes the paraphrases and translations of the robustness strategies "
           "(perturbations(kinds=['paraphrase']), injections(encodings=['translation'])); none by default, so such "
           "examples end unmeasured", None, example="local/smollm2", marker=True),
    Option("paraphraser_api_base", "base URL for the paraphraser model", None, kind="url",
           example="http://127.0.0.1:8000/v1", marker=True),
    Option("cache_path", "SQLite cache of provider calls (relative paths are under the rootdir)",
           ".llmops/cache.sqlite", kind="path", example=".llmops/cache.sqlite"),
    Option("record_mode", "cache mode: off (no cache), new (replay hits, record misses), "
           "none (replay only; a miss is an error - for hermetic CI), all (re-record everything)",
           "new", kind="choice", choices=RECORD_MODES, example="none"),
    Option("client", "how hosted models are called: direct: openai/ and hosted_vllm/ models with an explicit "
           "api_base go over plain HTTP (aiohttp; litellm is imported only to price a model it knows), every other "
           "provider through litellm; or litellm: every hosted model through litellm", "direct", kind="choice",
           choices=("direct", "litellm"), example="litellm"),
    Option("concurrency", "most provider calls in flight at once, per provider (1 also runs async eval tests "
           "one at a time)", 16, kind="int", example="8", at_least=1),
    Option("test_concurrency", "most async eval tests running at once; by default twice --llmops-concurrency, so "
           "a test's next call is already queued when a slot frees (1 runs them one at a time)", None, kind="int",
           example="64", at_least=1),
    Option("progress", "progress line while eval tests run (cases done, calls in flight, cost): auto (on a "
           "terminal, not verbose, not with -s or xdist), on, off", "auto", kind="choice",
           choices=("auto", "on", "off"), example="off"),
    Option("timeout", "seconds one attempt of a provider call may take", 60.0, kind="seconds", example="30",
           marker=True),
    Option("deadline", "seconds one provider call may take in all, retries and backoff included", 300.0,
           kind="seconds", example="120", marker=True),
    Option("retries", f"extra attempts after a retryable provider error (429, 5xx, timeout; at most {MAX_RETRIES})", 3,
           kind="int", example="2", marker=True, at_most=MAX_RETRIES),
    Option("max_cost", "stop sending provider calls once the run has spent this many USD (priced calls only); "
           "cases left end unmeasured and the run fails", None, kind="usd", example="1.50"),
    Option("max_calls", "stop sending provider calls after this many (cache hits are free); cases left end "
           "unmeasured and the run fails", None, kind="int", example="500", at_least=1),
    Option("results", "where the JSON results of the run are written (relative paths are under the rootdir)",
           ".llmops/results.json", kind="file", example="reports/llmops.json"),
    Option("prompts", "folders of prompt templates (*.toml), searched in order", ["prompts"], kind="paths",
           example="prompts"),
    Option("gates", "release gates checked at the end of the run, e.g. 'pass_rate.lower>=0.9', 'latency.p95<=2s', "
           "'[suite=evalsuites/rag_qa] recall_at_5.mean>=0.8'; a failing or unmeasured gate fails the run "
           "(exit code 6); repeat the flag for several", [], kind="lines", example="'latency.p95<=2s'",
           cli="--llmops-gate"),
    Option("gate_confidence", "confidence of the Wilson intervals behind pass_rate.lower / .upper gates",
           0.95, kind="fraction", example="0.9"),
    Option("save_baseline", "store this run's results as the baseline NAME (.llmops/baselines/NAME.json)",
           None, kind="baseline", example="main"),
    Option("compare", "compare this run with the stored baseline NAME, case by case; a significant drop fails "
           "the run (exit code 6)", None, kind="baseline", example="main"),
    Option("compare_max_age", "with --llmops-compare=BRANCH@latest: warn when the baseline run from the history is "
           "older than this", "7d", kind="age", example="3d"),
    Option("history", "append every finished run to this SQLite file (trends, model versions, "
           "--llmops-compare=main@latest); 'off' keeps no history", ".llmops/history.sqlite", kind="file",
           example="off"),
    Option("mlflow", "at the end of the run, log it as one MLflow run to this tracking URI (http://host:5000, "
           "sqlite:///mlflow.db; needs the [mlflow] extra); 'env' uses $MLFLOW_TRACKING_URI", None, kind="mlflow",
           example="http://127.0.0.1:5000"),
    Option("mlflow_experiment", "the MLflow experiment --llmops-mlflow logs to", "pytest-llmops",
           example="release-gates"),
    Option("compare_tolerance", "drop (in score units, or in pass rate) tolerated before a comparison counts it "
           "as a regression", 0.0, kind="fraction", example="0.02"),
    Option("compare_alpha", "significance level of the regression tests against the baseline", 0.05,
           kind="fraction", example="0.01"),
    Option("shard", "run only shard I of N of the eval cases (split by node id hash, balanced by the durations in "
           "the previous results file, or else in the history's latest run of the suite; plain tests run in shard 1); "
           "gates are recorded, not decided: `llmops results merge` then "
           "`llmops gate` decide on all shards", None, kind="shard", example="2/3"),
    Option("review_sample", "share of eval cases (0 to 1) marked for human review, seeded; with review on, every "
           "case whose judge score is within --llmops-review-margin of its threshold is marked too", None,
           kind="fraction", example="0.1"),
    Option("review_margin", "with review on: mark cases whose judge score is this close to its threshold, as a "
           "share of the score's range", 0.1, kind="fraction", example="0.05"),
    Option("review_seed", "seed of the review sample (the same seed marks the same cases)", 0, kind="int",
           example="7"),
    Option("review_labels", "human review labels (JSONL from `llmops review import`): a label for the same "
           "case, check and answer overrides the judge's verdict, kept with reviewer and time", None, kind="path",
           example=".llmops/review/labels.jsonl"),
    Option("html", "write a self-contained HTML report here", None, kind="file", example="reports/llmops.html"),
    Option("markdown", "write a Markdown summary here (also appended to $GITHUB_STEP_SUMMARY when set)", None,
           kind="file", example="reports/llmops.md"),
)
OPTIONS_BY_NAME = {option.name: option for option in OPTIONS}

#: Marker arguments that are not settings: they shape how a case is run and judged.
MARKER_ONLY_ARGS = ("repeat", "min_pass_rate", "review")
MARKER_ARGS = tuple(o.name for o in OPTIONS if o.marker) + MARKER_ONLY_ARGS


@dataclass(frozen=True)
class Settings:
    """The resolved settings of a run (or of one test, after its marker)."""

    model: str = DEFAULT_MODEL
    api_base: str | None = None
    judge: str | None = None
    judge_api_base: str | None = None
    reward_model: str | None = None
    reward_api_base: str | None = None
    reward_api: str = "classify"
    paraphraser: str | None = None
    paraphraser_api_base: str | None = None
    cache_path: Path = Path(".llmops/cache.sqlite")
    record_mode: str = "new"
    client: str = "direct"
    concurrency: int = 16
    test_concurrency: int | None = None
    progress: str = "auto"
    timeout: float = 60.0
    deadline: float = 300.0
    retries: int = 3
    max_cost: float | None = None
    max_calls: int | None = None
    results: Path = Path(".llmops/results.json")
    prompts: tuple[Path, ...] = field(default_factory=tuple)
    gates: tuple[str, ...] = ()
    gate_confidence: float = 0.95
    save_baseline: str | None = None
    compare: str | None = None
    compare_tolerance: float = 0.0
    compare_alpha: float = 0.05
    compare_max_age: float = 7 * 86400.0
    history: Path | None = Path(".llmops/history.sqlite")
    mlflow: str | None = None
    mlflow_experiment: str = "pytest-llmops"
    review_sample: float | None = None
    review_margin: float = 0.1
    review_seed: int = 0
    review_labels: Path | None = None
    html: Path | None = None
    markdown: Path | None = None
    #: ``(i, n)``: this run is shard i of n (``--llmops-shard``).
    shard: tuple[int, int] | None = None
    #: For each setting, where its value came from: "marker", "command line", "ini" or "default".
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def tests_at_once(self) -> int:
        """How many async eval tests run at once: ``test_concurrency``, else twice ``concurrency``.

        More tests than call slots keeps the provider busy: while one test reads an
        answer or sets up its next call, another's request takes the free slot.
        """
        if self.test_concurrency is not None:
            return self.test_concurrency
        return 1 if self.concurrency == 1 else 2 * self.concurrency

    def with_marker(self, kwargs: Mapping[str, Any], nodeid: str) -> Settings:
        """These settings with a test's ``llm_eval`` marker arguments applied."""
        changes: dict[str, Any] = {}
        for name, value in kwargs.items():
            if name in MARKER_ONLY_ARGS:
                continue
            option = OPTIONS_BY_NAME[name]
            changes[name] = _convert(option, value, f"@pytest.mark.llm_eval({name}=...) on {nodeid}")
        if not changes:
            return self
        sources = {**self.sources, **{name: "marker" for name in changes}}
        return replace(self, **changes, sources=sources)


def add_options(parser: pytest.Parser) -> None:
    """Register the ``llmops`` option group and the matching ini values."""
    group = parser.getgroup("llmops", "LLM evaluation (pytest-llmops)")
    for option in OPTIONS:
        default_text = "none" if option.default is None else option.default
        if isinstance(default_text, list):
            default_text = " ".join(default_text)
        group.addoption(
            option.flag,
            dest=option.dest,
            default=None,
            action="append" if option.kind == "lines" else "store",
            metavar=option.name.upper().removesuffix("S") if option.kind == "lines" else option.name.upper(),
            choices=list(option.choices) or None,
            help=f"{option.help} (default: {default_text or 'none'}; ini: {option.ini})",
        )
        ini_type = {"paths": "paths", "lines": "linelist"}.get(option.kind, "string")
        parser.addini(option.ini, f"{option.help} (default: {default_text})", type=ini_type, default=None)


def add_string_options(parser: pytest.Parser, options: tuple[Option, ...]) -> None:
    """Register a feature's own string settings (flag and ini value) in the ``llmops`` help group."""
    group = parser.getgroup("llmops", "LLM evaluation (pytest-llmops)")
    for option in options:
        default_text = "none" if option.default is None else option.default
        group.addoption(option.flag, dest=option.dest, default=None, metavar=option.name.upper(),
                        help=f"{option.help} (default: {default_text}; ini: {option.ini})")
        parser.addini(option.ini, f"{option.help} (default: {default_text})", type="string", default=None)


def _convert(option: Option, value: Any, source: str) -> Any:
    """Check and convert one raw value; a bad one is a UsageError naming ``source``."""
    def bad(expected: str) -> pytest.UsageError:
        return pytest.UsageError(
            f"{source}: expected {expected}, got {value!r}. Example: {option.flag}={option.example}"
        )

    if value is None:
        return None
    if option.kind == "int":
        bounds = (f"a whole number >= {option.at_least}" if option.at_most is None
                  else f"a whole number between {option.at_least} and {option.at_most}")
        try:
            number = int(str(value).strip())
        except ValueError:
            raise bad("a whole number") from None
        if number < option.at_least or (option.at_most is not None and number > option.at_most):
            raise bad(bounds)
        return number
    if option.kind == "seconds":
        number = _finite(str(value).strip().removesuffix("s"))
        # NaN and inf fail here too: neither is a time a call could be given.
        if number is None or not 0 < number <= MAX_SECONDS:
            raise bad(f"a number of seconds between 0 and {MAX_SECONDS:g}")
        return number
    if option.kind == "age":
        import argparse

        from pytest_llmops.cli import parse_duration

        try:
            return parse_duration(str(value))
        except argparse.ArgumentTypeError:
            raise bad("an age such as 12h, 3d or 30d") from None
    if option.kind == "usd":
        number = _finite(str(value).strip().removeprefix("$"))
        if number is None or not number > 0:
            raise bad("an amount in USD > 0")
        return number
    if option.kind == "fraction":
        number = _finite(str(value).strip())
        if number is None or not 0 <= number <= 1 or (option.name not in _CLOSED_FRACTIONS and not 0 < number < 1):
            raise bad("a number between 0 and 1")
        return number
    if option.kind == "shard":
        from pytest_llmops.shards import ShardSyntaxError, parse_shard

        try:
            return parse_shard(str(value))
        except ShardSyntaxError as exc:
            raise bad(str(exc)) from None
    if option.kind == "choice":
        text = str(value).strip().lower()
        if text not in option.choices:
            raise bad("one of " + ", ".join(option.choices))
        return text
    text = str(value).strip()
    if option.kind == "url":
        if text and not _is_http_url(text):
            raise bad("an http:// or https:// URL with a host")
    elif option.kind in ("file", "path") and not text:
        # `--llmops-results=$OUT` with OUT unset: no path to write to, not "the default".
        raise bad("a file path")
    elif option.kind == "mlflow":
        return _mlflow_uri(text, bad)
    elif option.kind == "baseline":
        # An empty name is what `--llmops-compare=$BASE` becomes when BASE is unset: not "no comparison".
        if not text:
            raise bad("a baseline name")
        from pytest_llmops.results.baseline import BaselineError, baseline_path

        if option.name == "compare" and "@" in text:
            from pytest_llmops.history.refs import check_history_ref

            check_history_ref(text, source)
            return text
        try:
            baseline_path(Path("."), text)
        except BaselineError as exc:
            raise pytest.UsageError(f"{source}: {exc}") from None
    return text or None


def _mlflow_uri(text: str, bad: Callable[[str], pytest.UsageError]) -> str:
    """The tracking URI ``--llmops-mlflow`` names, checked before any call: mlflow installed, a URI given."""
    import importlib.util
    import os

    if not text:
        raise bad("an MLflow tracking URI, or 'env' for $MLFLOW_TRACKING_URI")
    if text.lower() == "env":
        text = os.environ.get("MLFLOW_TRACKING_URI", "")
        if not text:
            raise bad("a tracking URI: it is 'env', and MLFLOW_TRACKING_URI is not set")
    if importlib.util.find_spec("mlflow") is None:
        raise bad("usable only with mlflow installed: pip install 'pytest-llmops[mlflow]'")
    return text


def _finite(text: str) -> float | None:
    """``text`` as a finite float, or None."""
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _is_http_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an unbalanced [ in the host
        return False


def unwritable_reason(path: Path) -> str | None:
    """Why ``path`` cannot be written as a file (a folder, under a file, read-only), or None if it can.

    Only looks: creates nothing, so a plain run that never writes leaves no trace.
    """
    if path.is_dir():
        return "it is a folder"
    if path.exists():
        return None if os.access(path, os.W_OK) else "the file is read-only"
    folder = path.parent
    while not folder.exists():
        if folder.is_symlink():  # a dangling link cannot be made into a folder
            return f"{folder} is a broken link"
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"the folder {folder} is not writable"
    return None


def check_writable(path: Path, where: str, option: Option) -> None:
    """A UsageError naming ``where`` when ``path`` cannot be written."""
    reason = unwritable_reason(path)
    if reason is not None:
        raise pytest.UsageError(
            f"{where}: cannot write {path}: {reason}. Choose a path in a writable folder, "
            f"e.g. {option.flag}={option.example}"
        )


def resolve(config: pytest.Config) -> Settings:
    """Settings from the command line, the ini file and the defaults, checked.

    Files the run writes at its end (results, reports, a baseline) are checked
    here when set explicitly, so a bad path fails before the run, not after it.
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    wheres: dict[str, str] = {}
    inifile = str(config.inipath) if config.inipath else "the ini file"
    root = Path(config.rootpath)
    for option in OPTIONS:
        cli_value = config.getoption(option.dest, default=None)
        if cli_value is not None:
            raw, source, where = cli_value, "command line", option.flag
        else:
            try:
                raw = config.getini(option.ini)
            except (TypeError, ValueError) as exc:
                raise pytest.UsageError(f"{option.ini} in {inifile}: {exc}. Example: {option.ini} = {option.example}") from None
            source, where = "ini", f"{option.ini} in {inifile}"
            if raw in (None, "", []):
                raw, source = None, "default"
        if option.kind == "lines":
            # Blank entries are kept, so `--llmops-gate=$GATE` with GATE unset is an error, not "no gate".
            value = tuple(line.strip() for line in (raw or []))
            _check_gates(value, where)
        elif option.kind == "paths":
            if raw is None:
                value = tuple(root / p for p in option.default)
            elif isinstance(raw, str):  # from the command line
                value = tuple((Path(config.invocation_params.dir) / p) for p in raw.split(os.pathsep) if p)
            else:
                value = tuple(Path(p) for p in raw)
        else:
            value = _convert(option, raw, where) if raw is not None else option.default
        if option.kind == "age" and raw is None:
            value = _convert(option, option.default, where)
        if option.name == "history" and str(value).strip().lower() in ("off", "none", "no", "false", "0"):
            value = None
        if option.name in ("cache_path", "results", "html", "markdown", "history", "review_labels") and value is not None:
            value = Path(value)
            if not value.is_absolute():
                value = root / value
        values[option.name] = value
        sources[option.name] = source
        wheres[option.name] = where
    for option in OPTIONS:
        if option.kind == "file" and values[option.name] is not None and sources[option.name] != "default":
            check_writable(values[option.name], wheres[option.name], option)
    labels = values["review_labels"]
    if labels is not None and not labels.is_file():
        raise pytest.UsageError(
            f"{wheres['review_labels']}: no labels file at {labels}; write one with "
            f"`llmops review import REVIEWED.json --into {labels}` or drop the option"
        )
    if values["save_baseline"]:
        check_writable(root / BASELINES_FOLDER / f"{values['save_baseline']}.json", wheres["save_baseline"],
                       OPTIONS_BY_NAME["save_baseline"])
    return Settings(**values, sources=sources)


def _check_gates(expressions: tuple[str, ...], where: str) -> None:
    """A malformed gate stops the run before any test, showing the spot and a valid example."""
    from pytest_llmops.gates.parse import GateSyntaxError, parse_gate

    for expression in expressions:
        try:
            parse_gate(expression, source=where)
        except GateSyntaxError as exc:
            raise pytest.UsageError(str(exc)) from None


def check_marker_args(kwargs: Mapping[str, Any], args: tuple[Any, ...], nodeid: str) -> None:
    """Reject positional or unknown ``llm_eval`` marker arguments, naming the test."""
    if args:
        raise pytest.UsageError(
            f"{nodeid}: @pytest.mark.llm_eval takes keyword arguments only, got {args!r}. "
            f"Example: @pytest.mark.llm_eval(repeat=5, min_pass_rate=0.8)"
        )
    unknown = sorted(set(kwargs) - set(MARKER_ARGS))
    if unknown:
        raise pytest.UsageError(
            f"{nodeid}: unknown @pytest.mark.llm_eval argument(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(MARKER_ARGS)}"
        )
    repeat = kwargs.get("repeat", 1)
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise pytest.UsageError(f"{nodeid}: llm_eval(repeat=...) must be a whole number >= 1, got {repeat!r}")
    rate = kwargs.get("min_pass_rate")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1):
        raise pytest.UsageError(f"{nodeid}: llm_eval(min_pass_rate=...) must be between 0 and 1, got {rate!r}")
    review = kwargs.get("review")
    if review is not None and (isinstance(review, bool) or not isinstance(review, (int, float)) or not 0 <= review <= 1):
        raise pytest.UsageError(
            f"{nodeid}: llm_eval(review=...) is the share of cases sent to human review, between 0 and 1, "
            f"got {review!r}. Example: @pytest.mark.llm_eval(review=0.1)"
        )
    for name, value in kwargs.items():
        if name not in MARKER_ONLY_ARGS:
            _convert(OPTIONS_BY_NAME[name], value, f"@pytest.mark.llm_eval({name}=...) on {nodeid}")

