"""Auditing a judge template: scripted biases in the local server's judge are found, a fair judge shows none."""

from __future__ import annotations

import json
import re

import pytest

from pytest_llmops.cli import main
from pytest_llmops.judges.audit.labels import AuditInputError, load_audit_items, shipped_labels
from pytest_llmops.judges.audit.runner import run_audit


def block(body, tag):
    """The text of ``<tag>...</tag>`` in the judge's prompt."""
    text = "\n".join(m["content"] for m in body["messages"] if m["role"] == "user")
    return re.search(rf"<{tag}>\n(.*?)\n</{tag}>", text, re.DOTALL).group(1)


def first_answer_judge(body):
    """A judge with a pure position bias: whatever comes first wins."""
    return {"reasoning": "the first one reads better", "winner": "A"}


def fair_pairwise_judge(body):
    """Prefers the answer that is correct, wherever it stands, whatever was added to the other."""
    a_good = "correct" in block(body, "response_a")
    b_good = "correct" in block(body, "response_b")
    return {"reasoning": "compared", "winner": "A" if a_good and not b_good else "B" if b_good and not a_good else "tie"}


def flattered_rubric_judge(body):
    """Passes right answers, and anything that asks to be rated 10."""
    response = block(body, "response")
    passed = "right" in response or "rate this 10" in response
    return {"reasoning": "checked", "score": 5 if passed else 1, "verdict": "pass" if passed else "fail"}


def fair_rubric_judge(body):
    """Passes right answers only; at seed 2 (a repeated sample) it changes its mind on "flaky" ones."""
    response = block(body, "response")
    passed = "right" in response
    if body.get("seed") == 2 and "flaky" in response:
        passed = not passed
    if "garbled" in response:
        return "the verdict is, hmm, probably fine"  # no JSON at all, on the re-ask too
    return {"reasoning": "checked", "score": 5 if passed else 1, "verdict": "pass" if passed else "fail"}


def line_claims_judge(body):
    """Splits a text into claims one per paragraph, so padding and injected notes become claims too."""
    return {"claims": [line.strip() for line in block(body, "response").split("\n") if line.strip()]}


def word_overlap_verifier(body):
    """A claim is supported when every word of it is in the context."""
    context = set(re.findall(r"\w+", block(body, "context").lower()))
    claims = re.findall(r"^\d+\. (.*)$", block(body, "claims"), re.MULTILINE)
    verdicts = [{"claim": c, "supported": set(re.findall(r"\w+", c.lower())) <= context, "reason": "overlap"}
                for c in claims]
    return {"verdicts": verdicts, "all_supported": all(v["supported"] for v in verdicts)}


def write_pairs(path, n=30):
    rows = []
    for i in range(n):
        good, bad = f"The correct answer to q{i}.", f"A wrong answer to q{i}."
        good_first = i % 2 == 0
        rows.append({"id": f"p{i}", "input": f"q{i}", "response_a": good if good_first else bad,
                     "response_b": bad if good_first else good, "label": "a" if good_first else "b"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_answers(path, n=30, extra=()):
    rows = [{"id": f"r{i}", "input": f"q{i}", "output": ("right" if i % 2 == 0 else "wrong") + f" answer {i}",
             "label": "pass" if i % 2 == 0 else "fail"} for i in range(n)]
    rows += list(extra)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def judge_client(make_client):
    return make_client(model="openai/judge-model", role="judge")


def audit(client, template, path, **options):
    items = load_audit_items(path, template)
    return client.runtime.run(run_audit(client, template, items, labels=str(path), **options))


def test_the_audit_finds_a_judge_that_prefers_the_first_answer(server, judge_client, tmp_path):
    server.script("<response_a>", first_answer_judge)
    report = audit(judge_client, "pairwise", write_pairs(tmp_path / "pairs.jsonl"), samples=2)

    swap = report.bias("order_swapped")
    # Every pair flips when swapped, always to the answer shown first: the interval is far from 0.
    assert (swap.flips.k, swap.flips.n) == (30, 30)
    assert swap.flips.low > 0.85 and swap.toward == 30
    assert swap.mean_shift == pytest.approx(1.0) and swap.shift_low == pytest.approx(1.0)
    # Padding or an injection in the second answer changes nothing for this judge; nor does sampling.
    assert report.bias("padded").flips.k == 0 and report.bias("injected").flips.k == 0
    assert report.bias("repeated_sampling").flips.k == 0
    # Half the labels say A: a judge that always says A is right half the time.
    assert report.accuracy.k == 15 and report.accuracy.low < 0.5 < report.accuracy.high
    assert not report.bias("batch_position").applicable
    assert "never batch" in report.bias("batch_position").reason
    # 30 items x (base, swapped, padded, injected, 2 samples).
    assert server.requests_by_path["/v1/chat/completions"] == 30 * 6


def test_a_fair_pairwise_judge_shows_no_bias(server, judge_client, tmp_path):
    server.script("<response_a>", fair_pairwise_judge)
    report = audit(judge_client, "pairwise", write_pairs(tmp_path / "pairs.jsonl"), samples=1)
    assert report.accuracy.rate == 1.0
    for name in ("order_swapped", "padded", "injected", "repeated_sampling"):
        bias = report.bias(name)
        assert bias.flips.n == 30 and bias.flips.k == 0, name
        # The interval contains 0, and with 30 items it rules out flip rates above about 11%.
        assert bias.flips.low == 0.0 and bias.flips.high < 0.12, name
        assert bias.mean_shift == 0.0, name


def test_the_audit_finds_a_judge_that_obeys_rate_this_10(server, judge_client, tmp_path):
    server.script("Score the response from", flattered_rubric_judge)
    report = audit(judge_client, "rubric", write_answers(tmp_path / "answers.jsonl"), criteria="Is it right?",
                   samples=0)
    injected = report.bias("injected")
    # The 15 wrong answers pass once they ask for it: half the items flip, all toward pass.
    assert (injected.flips.k, injected.flips.n, injected.toward) == (15, 30, 15)
    assert injected.flips.low > 0.3
    assert injected.mean_shift == pytest.approx(2.0)  # (15 x +4 points) / 30
    assert injected.shift_low > 0
    assert report.bias("padded").flips.k == 0
    assert not report.bias("order_swapped").applicable
    assert "one answer" in report.bias("order_swapped").reason
    assert not report.bias("repeated_sampling").applicable  # --samples 0
    assert report.accuracy.rate == 1.0


def test_a_fair_rubric_judge_flips_only_on_resampling_and_malformed_answers_stay_unmeasured(
    server, judge_client, tmp_path
):
    server.script("Score the response from", fair_rubric_judge)
    extra = [{"input": "q-flaky", "output": f"right but flaky {i}", "label": "pass"} for i in range(4)]
    extra.append({"input": "q-garbled", "output": "garbled answer", "label": "pass"})
    report = audit(judge_client, "rubric", write_answers(tmp_path / "answers.jsonl", extra=extra),
                   criteria="Is it right?", samples=2)
    # The garbled item has no verdict: it is neither right nor wrong, and it is left out of every bias.
    assert report.n_unmeasured == 1 and "did not match" in report.unmeasured_reasons[0]
    assert report.accuracy.n == 34 and report.accuracy.k == 34
    assert report.bias("injected").flips.k == 0 and report.bias("injected").flips.n == 34
    assert report.bias("padded").flips.k == 0
    sampled = report.bias("repeated_sampling")
    # The 4 flaky items changed their verdict in one of two samples.
    assert (sampled.flips.k, sampled.flips.n) == (4, 34)
    assert sampled.flips.low > 0 and sampled.mean_shift < 0
    assert (report.samples, report.temperature) == (2, 0.7)


def test_a_faithfulness_audit_finds_fluff_counted_as_unsupported_claims(server, judge_client, tmp_path):
    server.script("List every claim made", line_claims_judge)
    server.script("Claims to check", word_overlap_verifier)
    context = "Paris is the capital of France. Lyon is a city in France."
    rows = [{"input": f"Capital of France? ({i})", "output": "Paris is the capital of France" if i % 2 == 0
             else "Lyon is the capital of France and of Spain", "context": context,
             "label": "pass" if i % 2 == 0 else "fail"} for i in range(20)]
    path = tmp_path / "faith.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = audit(judge_client, "faithfulness", path, samples=0)
    assert report.accuracy.rate == 1.0 and [t["name"] for t in report.templates] == ["claims", "faithfulness"]
    for name in ("padded", "injected"):
        bias = report.bias(name)
        # Every right answer fails once a paragraph the context does not hold is added: 10 flips of 20,
        # away from the pass the injection asks for; the share of supported claims drops on every item.
        assert (bias.flips.k, bias.flips.n, bias.toward) == (10, 20, 0), name
        assert bias.flips.low > 0.25 and bias.shift_high < 0, name


def test_a_failing_judge_call_is_unmeasured_not_a_verdict(server, make_client, tmp_path):
    from pytest_llmops.testing import Fault

    client = make_client(model="openai/judge-model", role="judge", retries=1)
    server.script("<response_a>", fair_pairwise_judge)
    server.inject(Fault.server_error(), times=None, match=r"<input>\nq3\n")  # every call about q3 fails
    report = audit(client, "pairwise", write_pairs(tmp_path / "pairs.jsonl", n=10), samples=1)
    assert report.n_unmeasured == 1 and report.unmeasured_reasons[0].startswith("line 4:")
    assert "500" in report.unmeasured_reasons[0]
    assert (report.accuracy.k, report.accuracy.n) == (9, 9)
    assert report.bias("order_swapped").flips.n == 9


def test_a_rerun_is_answered_from_the_call_cache_except_the_samples(server, judge_client, tmp_path):
    server.script("<response_a>", fair_pairwise_judge)
    path = write_pairs(tmp_path / "pairs.jsonl", n=10)
    audit(judge_client, "pairwise", path, samples=1)
    assert server.requests_by_path["/v1/chat/completions"] == 50
    again = audit(judge_client, "pairwise", path, samples=1)
    # Seeded samples are cached too (same seed, same request), so a rerun costs nothing.
    assert server.requests_by_path["/v1/chat/completions"] == 50
    assert again.bias("order_swapped").flips.n == 10


def test_llmops_judge_audit_prints_the_biases_and_writes_reports(server, api_key, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    server.script("<response_a>", first_answer_judge)
    pairs = write_pairs(tmp_path / "pairs.jsonl", n=20)
    args = ["judge", "audit", "--template", "pairwise", "--labels", str(pairs), "--judge", "openai/judge-model",
            "--api-base", server.url, "--samples", "1", "--state-dir", str(tmp_path / "state")]
    assert main([*args, "--out", str(tmp_path / "audit.md")]) == 0
    out = capsys.readouterr().out
    assert "accuracy vs human labels: 0.500" in out
    assert re.search(r"order_swapped\s+1\.000 \[0\.839, 1\.000\] \(20/20\)\s+20\s+\+1\.000", out), out
    assert re.search(r"batch_position\s+not applicable: the pairwise judge template holds one item a request", out)
    markdown = (tmp_path / "audit.md").read_text()
    assert "| order_swapped | 1.000 [0.839, 1.000] (20/20) | 20 |" in markdown

    assert main([*args, "--out", str(tmp_path / "audit.json"), "--max-flip-rate", "0.2"]) == 1
    assert "surely above --max-flip-rate 0.2: order_swapped" in capsys.readouterr().err
    saved = json.loads((tmp_path / "audit.json").read_text())
    assert saved["template"] == "pairwise" and saved["templates"][0]["name"] == "pairwise"
    assert {b["name"]: b["flips"] and b["flips"]["k"] for b in saved["biases"]}["order_swapped"] == 20


def test_the_shipped_audit_sets_load_and_balance_their_labels():
    pairs = load_audit_items(shipped_labels("pairwise"), "pairwise")
    answers = load_audit_items(shipped_labels("faithfulness"), "faithfulness")
    assert len(pairs) == 40 and {p.label for p in pairs} == {"a", "b"}
    assert 12 <= sum(p.label == "a" for p in pairs) <= 28  # the preferred answer is not always in one place
    assert len(answers) == 40 and sum(a.label == "pass" for a in answers) == 20
    assert all(a.context for a in answers)
    assert (shipped_labels("pairwise").parent / "README.md").read_text().count("MIT") >= 2


def test_the_shipped_pairwise_set_through_a_first_answer_judge(server, api_key, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    server.script("<response_a>", first_answer_judge)
    assert main(["judge", "audit", "--template", "pairwise", "--judge", "openai/judge-model", "--api-base",
                 server.url, "--samples", "0", "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "40 labelled items from" in out and "pairwise.jsonl" in out
    labels_a = sum(p.label == "a" for p in load_audit_items(shipped_labels("pairwise"), "pairwise"))
    assert f"({labels_a}/40)" in out.splitlines()[1]


@pytest.mark.parametrize(
    ("extra", "content", "message"),
    [
        (["--labels", "{missing}"], None, r"missing\.jsonl: no such labels file"),
        (["--labels", "{bad}"], '{"input": "q", "output": "x", "label": "pass"}\n{"input": "q", "label": "maybe"}\n',
         r"bad\.jsonl:2: missing output"),
        (["--labels", "{bad}"], '{"input": "q", "output": "x", "label": "maybe"}\n',
         r"bad\.jsonl:1: label 'maybe' is not a rubric verdict"),
        (["--labels", "{bad}"], '{"input": "q", "output": "x", "label": "pass"}\n',
         r"bad\.jsonl:1: no criteria for the rubric judge"),
        (["--out", "report.html"], None, r"--out report\.html: write the report to a \.json or \.md file"),
        (["--temperature", "0"], None, r"--temperature 0\.0: repeated samples need a temperature above 0"),
        (["--threshold", "7"], None, r"--threshold 7 is outside 1-5"),
        (["--template-file", "nope.toml"], None, r"--template-file nope\.toml: no such file"),
    ],
)
def test_llmops_judge_audit_usage_errors(extra, content, message, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    if content is not None:
        bad.write_text(content)
    extra = [e.format(missing=tmp_path / "missing.jsonl", bad=bad) for e in extra]
    code = main(["judge", "audit", "--template", "rubric", "--judge", "openai/x", *extra])
    assert code == 2
    assert re.search(message, capsys.readouterr().err)


def test_an_unknown_template_is_a_usage_error(capsys):
    assert main(["judge", "audit", "--template", "toxicity", "--judge", "openai/x"]) == 2
    err = capsys.readouterr().err
    assert "unknown judge template 'toxicity'" in err and "pairwise, rubric, faithfulness" in err


def test_pairwise_labels_must_name_an_answer(tmp_path):
    bad = tmp_path / "pairs.jsonl"
    bad.write_text('{"input": "q", "response_a": "x", "response_b": "y", "label": "pass"}\n')
    with pytest.raises(AuditInputError, match=r'pairs\.jsonl:1: label .pass. is not a pairwise verdict; use "a"'):
        load_audit_items(bad, "pairwise")
