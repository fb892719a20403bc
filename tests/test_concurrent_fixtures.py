"""Async eval tests run concurrently, yet each sees pytest's fixture and report semantics.

Each test runs pytest inside pytest (``pytester``): the inner tests log what
their fixtures do to ``events.txt`` and how many bodies run at once, and the
outer test reads the log and the reports.
"""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

# Shared by the inner runs: an event log, and a count of the bodies running right now.
CONFTEST = """
import asyncio, json, os, time
import pytest

RUNNING = {"now": 0, "max": 0, "first_start": None, "last_end": None}

def log(*words):
    with open("events.txt", "a") as f:
        f.write(" ".join(str(w) for w in words) + "\\n")

@pytest.fixture(scope="session")
def sess():
    log("setup", "session")
    yield "s"
    log("teardown", "session")
    with open("running.json", "w") as f:
        json.dump(RUNNING, f)

async def body(name, seconds=0.2):
    RUNNING["now"] += 1
    RUNNING["max"] = max(RUNNING["max"], RUNNING["now"])
    RUNNING["first_start"] = RUNNING["first_start"] or time.monotonic()
    log("start", name)
    try:
        await asyncio.sleep(seconds)
    finally:
        RUNNING["now"] -= 1
        RUNNING["last_end"] = time.monotonic()
        log("end", name)
"""


def events(pytester: pytest.Pytester) -> list[str]:
    path = pytester.path / "events.txt"
    return path.read_text().splitlines() if path.exists() else []


def running(pytester: pytest.Pytester) -> dict:
    return json.loads((pytester.path / "running.json").read_text())


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    return pytester


CASES_OF_0_2_S = """
import pytest
from conftest import body

@pytest.mark.llm_eval
@pytest.mark.parametrize("i", range(12))
async def test_case(i, sess):
    await body(f"case{i}")
"""


def test_bodies_overlap_up_to_the_test_concurrency_setting(inner):
    inner.makepyfile(CASES_OF_0_2_S)
    result = inner.runpytest("-p", "no:cacheprovider", "--llmops-test-concurrency=3")
    result.assert_outcomes(passed=12)
    bodies = running(inner)
    assert bodies["max"] == 3
    # Twelve bodies of 0.2 s, three at a time: four rounds (0.8 s), not twelve (2.4 s).
    assert bodies["last_end"] - bodies["first_start"] < 1.8


def test_by_default_twice_as_many_tests_run_as_calls_may_be_in_flight(inner):
    inner.makepyfile(CASES_OF_0_2_S)
    result = inner.runpytest("-p", "no:cacheprovider", "--llmops-concurrency=3")
    result.assert_outcomes(passed=12)
    assert running(inner)["max"] == 6


def test_concurrency_1_runs_one_at_a_time(inner):
    inner.makepyfile(
        """
        import pytest
        from conftest import body

        @pytest.mark.llm_eval
        @pytest.mark.parametrize("i", range(3))
        async def test_case(i, sess):
            await body(f"case{i}", 0.05)
        """
    )
    result = inner.runpytest("-p", "no:cacheprovider", "--llmops-concurrency=1")
    result.assert_outcomes(passed=3)
    assert running(inner)["max"] == 1
    assert events(inner)[1:4] == ["start case0", "end case0", "start case1"]


def test_fixtures_keep_their_scopes_and_teardown_order(inner):
    inner.makepyfile(
        test_one="""
        import pytest
        from conftest import body, log

        @pytest.fixture(scope="module")
        def mod():
            log("setup", "mod1")
            yield {}
            log("teardown", "mod1")

        @pytest.fixture
        def per_test(request, mod, sess):
            token = object()
            log("setup", "fn", request.node.name)
            yield token
            log("teardown", "fn", request.node.name)

        SEEN = {}

        @pytest.mark.llm_eval
        @pytest.mark.parametrize("i", range(4))
        async def test_case(i, per_test, mod, tmp_path, request):
            # Nobody else holds this test's function-scoped values.
            assert all(per_test is not other for other, _ in SEEN.values())
            assert all(tmp_path != path for _, path in SEEN.values())
            SEEN[i] = (per_test, tmp_path)
            assert request.node.name == f"test_case[{i}]"
            mod[i] = True
            await body(request.node.name, 0.1)
            assert SEEN[i][0] is per_test
        """,
        test_two="""
        import pytest
        from conftest import body, log

        @pytest.fixture(scope="module")
        def mod():
            log("setup", "mod2")
            yield
            log("teardown", "mod2")

        @pytest.mark.llm_eval
        @pytest.mark.parametrize("i", range(2))
        async def test_other(i, mod, sess):
            await body(f"other{i}", 0.05)
        """,
    )
    result = inner.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)
    log = events(inner)
    assert log.count("setup session") == 1 and log[-1] == "teardown session"
    assert log.count("setup mod1") == 1 and log.count("setup mod2") == 1
    # Module 1 is torn down after its last test's function fixtures and before module 2 starts.
    assert log.index("teardown fn test_case[3]") < log.index("teardown mod1") < log.index("setup mod2")
    # Each test's own fixtures are torn down once, in collection order.
    teardowns = [line for line in log if line.startswith("teardown fn")]
    assert teardowns == [f"teardown fn test_case[{i}]" for i in range(4)]
    # All four bodies started before the first ended: they ran concurrently.
    assert [line.split()[0] for line in log if line.endswith("]") and "test_case" in line and line.split()[0] in ("start", "end")][:4] == ["start"] * 4


def test_reports_come_once_each_in_collection_order(inner):
    inner.makepyfile(
        """
        import asyncio, random
        import pytest

        @pytest.mark.llm_eval
        @pytest.mark.parametrize("i", range(6))
        async def test_case(i, sess):
            # Later tests finish first: the report order must not follow completion.
            await asyncio.sleep(0.05 * (6 - i))

        def test_sync_between():
            pass

        class TestGroup:
            @pytest.mark.llm_eval
            async def test_a(self, sess):
                self.value = "a"
                await asyncio.sleep(0.05)
                assert self.value == "a"

            @pytest.mark.llm_eval
            async def test_b(self, sess):
                assert not hasattr(self, "value")  # one instance per test, as pytest gives
                await asyncio.sleep(0.01)
        """
    )
    result = inner.runpytest("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=9)
    expected = [f"*::test_case[[]{i}[]] PASSED*" for i in range(6)]
    expected += ["*::test_sync_between PASSED*", "*::TestGroup::test_a PASSED*", "*::TestGroup::test_b PASSED*"]
    result.stdout.fnmatch_lines(expected, consecutive=True)
    for i in range(6):
        assert result.stdout.str().count(f"test_case[{i}] PASSED") == 1

    quiet = inner.runpytest("-p", "no:cacheprovider", "-q")
    quiet.stdout.fnmatch_lines(["......... *[[]100%[]]", "9 passed*"])


def test_failures_and_errors_in_each_phase_are_reported_on_their_test(inner):
    inner.makepyfile(
        """
        import asyncio
        import pytest

        @pytest.fixture
        def phase(request):
            if request.node.name == "test_case[setup]":
                raise RuntimeError("broken in setup")
            yield
            if request.node.name == "test_case[teardown]":
                raise RuntimeError("broken in teardown")

        @pytest.mark.llm_eval
        @pytest.mark.parametrize("where", ["ok", "setup", "call", "teardown", "ok2"])
        async def test_case(where, phase, sess):
            await asyncio.sleep(0.05)
            print("printed by", where)
            assert where != "call", "the answer was wrong"
        """
    )
    result = inner.runpytest("-p", "no:cacheprovider", "-rA")
    # "teardown" passes its call and errors in teardown: 3 passed, 1 failed, 2 errors.
    result.assert_outcomes(passed=3, failed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_case[[]setup[]]*",
            "*RuntimeError: broken in setup",
            "*ERROR at teardown of test_case[[]teardown[]]*",
            "*RuntimeError: broken in teardown",
            "*Captured stdout call*",
            "printed by teardown",
            "*= FAILURES =*",
            "*_ test_case[[]call[]] _*",
            ">       assert where != \"call\", \"the answer was wrong\"",
            "E       AssertionError: the answer was wrong",
            "*Captured stdout call*",
            "printed by call",
            "*= PASSES =*",
        ]
    )
    # Output is kept per test: the failing test shows only its own print.
    failure = result.stdout.str().split("_ test_case[call] _", 1)[1].split("= PASSES =", 1)[0]
    assert "printed by" in failure and "printed by ok" not in failure and "printed by teardown" not in failure


def test_skip_and_xfail_markers_and_calls_work(inner):
    inner.makepyfile(
        """
        import asyncio
        import pytest
        from conftest import log

        pytestmark = pytest.mark.llm_eval

        @pytest.mark.skip(reason="not today")
        async def test_skipped(sess):
            log("ran skipped")

        @pytest.mark.skipif(True, reason="condition")
        async def test_skipif(sess):
            log("ran skipif")

        async def test_skip_inside(sess):
            await asyncio.sleep(0.01)
            pytest.skip("decided at run time")

        @pytest.mark.xfail(reason="known bad")
        async def test_xfail(sess):
            await asyncio.sleep(0.01)
            assert False

        @pytest.mark.xfail(strict=True, reason="should fail")
        async def test_xpass_strict(sess):
            await asyncio.sleep(0.01)

        @pytest.mark.xfail(run=False, reason="never run")
        async def test_not_run(sess):
            log("ran not_run")

        async def test_plain(sess):
            await asyncio.sleep(0.01)
        """
    )
    result = inner.runpytest("-p", "no:cacheprovider", "-rsxX")
    result.assert_outcomes(passed=1, skipped=3, xfailed=2, failed=1)
    assert not any(line.startswith("ran ") for line in events(inner))
    result.stdout.fnmatch_lines(["*XPASS(strict)*should fail*"])


def test_exitfirst_stops_after_the_first_failure_and_starts_no_new_batch(inner):
    inner.makepyfile(
        test_one="""
        import asyncio
        import pytest
        from conftest import log

        @pytest.fixture
        def tracked(request):
            yield
            log("teardown", request.node.name)

        @pytest.mark.llm_eval
        @pytest.mark.parametrize("i", range(4))
        async def test_case(i, tracked, sess):
            await asyncio.sleep(0.05)
            assert i != 1
        """,
        test_two="""
        import pytest
        from conftest import log

        @pytest.mark.llm_eval
        @pytest.mark.parametrize("i", range(2))
        async def test_later(i, sess):
            log("ran later", i)
        """,
    )
    result = inner.runpytest("-p", "no:cacheprovider", "-x")
    result.assert_outcomes(passed=1, failed=1)
    log = events(inner)
    assert not any(line.startswith("ran later") for line in log)
    # Every test that was set up is torn down, reported or not, before the session fixture.
    assert sorted(line for line in log if line.startswith("teardown test_case")) == [
        f"teardown test_case[{i}]" for i in range(4)
    ]
    assert log[-1] == "teardown session"


def test_a_keyboard_interrupt_tears_down_every_test_set_up(inner):
    inner.makepyfile(
        """
        import asyncio
        import pytest
        from conftest import log

        @pytest.fixture
        def tracked(request):
            yield
            log("teardown", request.node.name)

        @pytest.mark.llm_eval
        @pytest.mark.parametrize("i", range(4))
        async def test_case(i, tracked, sess, request):
            await asyncio.sleep(0.05 * i)
            if i == 1:
                raise KeyboardInterrupt
            await asyncio.sleep(0.5 if i == 0 else 30)
            log("slept", request.node.name)
        """
    )
    result = inner.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])
    log = events(inner)
    assert sorted(line for line in log if line.startswith("teardown test_case")) == [
        f"teardown test_case[{i}]" for i in range(4)
    ]
    assert log[-1] == "teardown session"
    # Test 0 finished before the interrupt was reported; the bodies still running were cancelled.
    assert [line for line in log if line.startswith("slept")] == ["slept test_case[0]"]
    result.stdout.fnmatch_lines(["*1 passed*"])


def test_sync_tests_and_unmarked_async_plugins_keep_the_serial_path(inner):
    inner.makepyfile(
        """
        import asyncio
        import pytest
        from conftest import body, log

        @pytest.mark.llm_eval
        def test_sync_eval(sess):
            log("sync")

        @pytest.mark.llm_eval
        async def test_reads_its_output(capsys, sess):
            print("mine")
            await asyncio.sleep(0.01)
            assert capsys.readouterr().out == "mine\\n"

        @pytest.mark.llm_eval
        @pytest.mark.parametrize("i", range(2))
        async def test_case(i, sess):
            await body(f"case{i}", 0.05)
        """
    )
    result = inner.runpytest("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        ["*test_sync_eval PASSED*", "*test_reads_its_output PASSED*", "*test_case[[]0[]] PASSED*", "*test_case[[]1[]] PASSED*"]
    )


def test_runs_without_the_optional_pytest_plugins(inner):
    inner.makepyfile(
        """
        import asyncio, logging, warnings
        import pytest

        @pytest.mark.llm_eval
        @pytest.mark.parametrize("i", range(3))
        async def test_case(i, sess):
            warnings.warn(UserWarning(f"warned {i}"))
            logging.getLogger("inner").warning("logged %s", i)
            await asyncio.sleep(0.01)
            assert [1, 2, i] == [1, 2, 1]
        """
    )
    # With pytest's own plugins, the diff and the warnings summary are there.
    full = inner.runpytest("-p", "no:cacheprovider")
    full.assert_outcomes(passed=1, failed=2)
    full.stdout.fnmatch_lines(["*At index 2 diff: 0 != 1*", "*Captured log call*", "*logged 0", "*warnings summary*", "*UserWarning: warned 0*"])
    bare = inner.runpytest("-p", "no:cacheprovider", "-p", "no:warnings", "-p", "no:logging", "-p", "no:anyio", "-s")
    bare.assert_outcomes(passed=1, failed=2)
