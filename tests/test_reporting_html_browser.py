"""The HTML report in a real headless Chromium: what a person opening it would look for.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs
them). In CI (``$CI`` set) a missing browser fails these tests; on a
developer machine without one they are skipped with the install command.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from reporting_runs import make_run

from pytest_llmops.reporting._common import gate_label, with_unit
from pytest_llmops.reporting.html import render_html
from pytest_llmops.results.models import RunResult

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = "apt-get install -y --no-install-recommends chromium chromium-driver"


def _missing(what: str) -> None:
    message = f"{what}; install it with `{INSTALL}` and `pip install -e '.[dev]'`"
    if os.environ.get("CI"):
        pytest.fail(f"the browser test cannot run in CI: {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def run() -> RunResult:
    return make_run("regression", n_cases=80)


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            _missing(f"{path} is missing")
    options = webdriver.ChromeOptions()
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1280,1600", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(argument)
    options.binary_location = str(CHROMIUM)
    # The performance log lists every request the page makes: the report must make none but its own file.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture(scope="module")
def page(driver, run: RunResult, tmp_path_factory: pytest.TempPathFactory):
    report = tmp_path_factory.mktemp("report") / "llmops.html"
    report.write_text(render_html(run), encoding="utf-8")
    driver.get(report.as_uri())
    return driver


def by_css(page, selector: str):
    from selenium.webdriver.common.by import By

    return page.find_elements(By.CSS_SELECTOR, selector)


def test_a_missing_browser_fails_in_ci_and_skips_only_on_a_developer_machine(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="cannot run in CI: /usr/bin/chromium is missing"):
        _missing("/usr/bin/chromium is missing")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y --no-install-recommends chromium chromium-driver"):
        _missing("/usr/bin/chromium is missing")


def test_the_verdict_and_why_are_at_the_top(page):
    verdict = by_css(page, "#verdict")[0]
    reasons = [item.text for item in by_css(page, "#verdict-reasons li")]

    assert verdict.text == "FAILED" and verdict.is_displayed()
    assert verdict.location["y"] < 100
    assert "1 gate failed (pass_rate.lower>=0.9)" in reasons
    assert "regression against baseline 'main' (pass_rate)" in reasons


def test_each_gate_row_shows_its_value_and_verdict(page, run: RunResult):
    rows = {}
    for row in by_css(page, "#gates tbody tr"):
        texts = [td.text for td in row.find_elements("css selector", "td")]
        rows[texts[0]] = texts

    assert len(rows) == len(run.gates)
    for gate in run.gates:
        texts = rows[gate_label(gate)]
        assert texts[1] == with_unit(gate.value, gate.unit)
        assert texts[2] == f"{gate.op} {with_unit(gate.threshold, gate.unit)}"
        assert texts[3] == gate.verdict


def test_the_charts_are_drawn_with_visible_marks(page):
    charts = by_css(page, "svg.chart")
    assert len(charts) == 4
    for chart in charts:
        assert chart.size["width"] > 200 and chart.size["height"] > 100
        marks = page.execute_script(
            "return Array.from(arguments[0].querySelectorAll('rect.bar, circle.dot, line.fit'))"
            ".map(function (e) { var b = e.getBBox(); return [b.width, b.height]; });",
            chart,
        )
        assert marks and all(w > 0 or h > 0 for w, h in marks)
    titles = [page.execute_script("return arguments[0].querySelector('title').textContent", c) for c in charts]
    assert any(t.startswith("Output length against latency") for t in titles)
    assert by_css(page, "svg.histogram line.threshold")[0].size["height"] > 50


def test_a_failing_case_shows_its_reason_when_expanded(page, run: RunResult):
    case = next(c for c in run.cases if c.state == "failed" and "refund window" in c.reason)
    details = by_css(page, f'details.case[data-name="{case.nodeid.lower()}"]')[0]
    reason = details.find_element("css selector", "pre.reason")

    assert not reason.is_displayed()
    details.find_element("css selector", "summary").click()
    assert reason.is_displayed()
    assert reason.text == case.reason
    scores = details.find_element("css selector", "table").text
    assert "faithfulness" in scores and "fail" in scores


def test_the_filter_box_narrows_the_case_list(page, run: RunResult):
    box = by_css(page, "#case-filter")[0]
    total = len(by_css(page, "details.case"))
    assert total == len(run.cases)

    box.send_keys("test_rag")
    shown = [d for d in by_css(page, "details.case") if d.is_displayed()]
    assert len(shown) == sum("test_rag" in c.nodeid for c in run.cases) < total
    assert by_css(page, "#case-count")[0].text == f"{len(shown)} of {total} cases shown"

    box.clear()
    box.send_keys("CASE-003]")
    shown = [d.get_attribute("data-name") for d in by_css(page, "details.case") if d.is_displayed()]
    assert shown == ["evalsuites/test_support.py::test_answer[case-003]"]


def test_an_injected_script_in_a_reason_is_shown_not_run(page):
    case = by_css(page, 'details.case[data-name="evalsuites/test_support.py::test_answer[case-003]"]')[0]
    page.execute_script("arguments[0].open = true", case)

    assert page.title.startswith("FAILED: pytest-llmops report")
    assert "pwned" not in page.title
    assert "<script>document.title='pwned'</script>" in case.find_element("css selector", "pre.reason").text


def test_viewing_the_report_makes_no_network_request(page):
    report = page.current_url
    requests = []
    for entry in page.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        # The browser's own start page logs requests too; only those made for the report count.
        if message["method"] == "Network.requestWillBeSent" and message["params"].get("documentURL") == report:
            requests.append(message["params"]["request"]["url"])

    assert requests == [report]
