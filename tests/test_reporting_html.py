"""The HTML report as a document: self-contained, escaped, accessible, with the charts drawn from the run."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser

from reporting_runs import make_run

from pytest_llmops.reporting import _svg
from pytest_llmops.reporting.html import render_html
from pytest_llmops.results.models import Environment, RunResult


class Document(HTMLParser):
    """The elements of a page, their attributes, and the text of its scripts and styles."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._inside: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._inside = tag
            (self.scripts if tag == "script" else self.styles).append("")

    def handle_endtag(self, tag):
        if tag == self._inside:
            self._inside = None

    def handle_data(self, data):
        if self._inside == "script":
            self.scripts[-1] += data
        elif self._inside == "style":
            self.styles[-1] += data

    def tags(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.elements if tag == name]


def test_the_report_loads_nothing_from_outside():
    page = Document(render_html(make_run("regression")))
    linking = ("src", "href", "xlink:href", "action", "data", "poster", "srcset")

    for tag, attrs in page.elements:
        for name in linking:
            value = attrs.get(name)
            assert value is None or value.startswith("#"), (tag, name, value)
    assert page.tags("link") == [] and page.tags("img") == [] and page.tags("iframe") == []
    assert all(attrs.get("src") is None for attrs in page.tags("script"))
    assert not any(re.search(r"url\(|@import", style) for style in page.styles)


def test_a_content_security_policy_allows_only_the_report_s_own_inline_script():
    page = Document(render_html(make_run("failing")))
    (policy,) = [a["content"] for a in page.tags("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    (script,) = page.scripts
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()

    assert "default-src 'none'" in policy
    assert f"script-src 'sha256-{digest}'" in policy


def test_user_text_is_escaped_everywhere():
    html = render_html(make_run("failing"))

    assert html.count("<script") == 1  # the report's own filter script, nothing from the run
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt; &amp; not | grounded" in html
    assert "document.title='pwned'" not in html


def test_every_chart_has_a_title_and_description_for_screen_readers():
    html = render_html(make_run("failing"))
    charts = re.findall(r"<svg .*?</svg>", html, flags=re.S)

    # Two score distributions, the latency histogram and the length-vs-latency scatter plot.
    assert len(charts) == 4
    for chart in charts:
        ident = re.search(r'aria-labelledby="(\S+)-t \S+-d"', chart).group(1)
        assert f'<title id="{ident}-t">' in chart and f'<desc id="{ident}-d">' in chart
        assert 'role="img"' in chart
    assert "Distribution of faithfulness over 55 cases" in html
    assert "Distribution of answer_relevance over 58 cases" in html


def test_the_score_histogram_counts_every_measured_value_and_marks_the_threshold():
    run = make_run("failing")
    values = [s.value for case in run.cases for s in case.scores if s.name == "faithfulness" and s.value is not None]
    chart = _svg.histogram(values, title="t", x_label="faithfulness", domain=(0, 1), threshold=0.8, bad_side="below")
    bars = re.findall(r'<rect class="bar( bad)?".*?<title>([\d.e-]+) to ([\d.e-]+): (\d+)</title>', chart)

    assert sum(int(count) for *_, count in bars) == len(values)
    assert sum(int(count) for bad, *_, count in bars if bad) == sum(v < 0.8 for v in values) > 0
    assert 'class="threshold"' in chart and "threshold 0.8" in chart


def test_the_scatter_plot_has_a_dot_per_call_and_the_fitted_line():
    run = make_run("passing")
    llm = run.latency[0]
    chart = _svg.scatter(llm.points, title="t", x_label="tokens", y_label="s",
                         line=(llm.slope_ms_per_token / 1000, llm.intercept_s), line_label="fit")

    assert chart.count('<circle class="dot"') == len(llm.points) == llm.calls
    line = re.search(r'<line class="fit" x1="([\d.]+)" y1="([\d.]+)" x2="([\d.]+)" y2="([\d.]+)"', chart)
    x1, y1, x2, y2 = map(float, line.groups())
    assert x2 > x1 and y2 < y1  # rises to the right (SVG's y grows downwards)


def test_a_fitted_line_outside_the_plot_is_clipped_or_left_out():
    frame_points = [(0, 0.0), (100, 1.0)]
    steep = _svg.scatter(frame_points, title="t", x_label="x", y_label="y", line=(1.0, 0.0))
    away = _svg.scatter(frame_points, title="t", x_label="x", y_label="y", line=(0.0, 50.0))

    x2 = float(re.search(r'<line class="fit" [^>]*x2="([\d.]+)"', steep).group(1))
    assert x2 < 100  # y = x leaves the 0..1 range almost at once
    assert '<line class="fit"' not in away


def test_nice_ticks_cover_the_range_with_round_steps():
    assert _svg.nice_ticks(0, 1, 5) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert _svg.nice_ticks(0.18, 1.93, 6) == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert _svg.nice_ticks(0, 0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


def test_tables_have_header_cells_and_the_filter_box_a_label():
    page = Document(render_html(make_run("regression")))

    assert len(page.tags("th")) > 30 and all(attrs.get("scope") == "col" for attrs in page.tags("th"))
    (box,) = [a for a in page.tags("input") if a.get("id") == "case-filter"]
    assert any(a.get("for") == "case-filter" for a in page.tags("label"))
    assert box.get("type") == "search"


def test_the_same_run_renders_the_same_bytes():
    assert render_html(make_run("regression")) == render_html(make_run("regression"))


def test_an_empty_run_still_renders_a_readable_page():
    run = RunResult(started_at=0.0, finished_at=1.0, settings={}, summary={}, cases=[],
                    environment=Environment(python="3.11.9", platform="Linux", packages={}))
    html = render_html(run)

    assert '<span class="verdict-word" id="verdict">FAILED</span>' in html
    assert "no eval case ran" in html
    assert "No release gates were set" in html and "No model call was made." in html


def test_every_section_link_leads_to_a_section():
    for kind in ("passing", "regression"):
        page = Document(render_html(make_run(kind)))
        ids = {attrs.get("id") for _, attrs in page.elements}
        targets = [a["href"][1:] for a in page.tags("a") if a.get("href", "").startswith("#")]

        assert targets and set(targets) <= ids
        assert ("baseline" in targets) == (kind == "regression")
