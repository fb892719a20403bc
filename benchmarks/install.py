"""How long a fresh install takes: the core plugin alone, and with every extra.

Each variant gets a new virtual environment in a temporary folder and a
``pip install`` of this checkout, timed (wall and CPU of pip and its children).
After the install it checks what a user relies on:

* core: ``import pytest_llmops`` works, the pytest plugin loads, and neither
  llama-cpp-python, torch nor a C compiler's output came with it (pip's log is
  searched for a build of a wheel from source);
* all: the local model answers one question.

    python benchmarks/install.py                 # core, then all
    python benchmarks/install.py --only core     # the light install (what CI checks)
    python benchmarks/install.py --no-cache      # as on a machine that never built llama-cpp-python

The ``all`` variant compiles llama-cpp-python unless pip's wheel cache or
``--find-links`` (the CI wheelhouse, ``$LLMOPS_WHEELHOUSE``) already holds the
pinned version. Targets (issue 14): core <= 60 s, no compiler step.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE_TARGET_S = 60.0
#: pip prints this for every sdist it turns into a wheel (a compiler may run then).
BUILD_MARKER = "Building wheel for"
# What the editable install of the project itself is allowed to build: it is pure Python.
OWN_BUILD = "Building wheel for pytest-llmops"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    cpu_before, started = _children_cpu(), time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - started, _children_cpu() - cpu_before
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n{output[-4000:]}")
    return wall, cpu, output


def install(variant: str, *, no_cache: bool) -> dict[str, object]:
    """Install ``variant`` ("core" or "all") into a new venv; return its timings and checks."""
    env = dict(os.environ)
    wheelhouse = os.environ.get("LLMOPS_WHEELHOUSE")
    if wheelhouse and variant == "all":
        env["PIP_FIND_LINKS"] = f"{wheelhouse} {env.get('PIP_FIND_LINKS', '')}".strip()
    with tempfile.TemporaryDirectory(prefix=f"llmops-install-{variant}-") as folder:
        venv = Path(folder) / "venv"
        venv_wall, _, _ = _run([sys.executable, "-m", "venv", str(venv)], env)
        python = str(venv / "bin" / "python")
        target = str(ROOT) if variant == "core" else f"{ROOT}[all]"
        pip = [python, "-m", "pip", "install", "-v", "-e", target, *(["--no-cache-dir"] if no_cache else [])]
        wall, cpu, log = _run(pip, env)
        builds = sorted({line.strip() for line in log.splitlines() if BUILD_MARKER in line and OWN_BUILD not in line})
        check = (
            "import importlib.util, pytest_llmops, pytest_llmops.plugin;"
            "print('llama_cpp' if importlib.util.find_spec('llama_cpp') else '-',"
            " 'torch' if importlib.util.find_spec('torch') else '-')"
        )
        _, _, found = _run([python, "-c", check], env)
        result: dict[str, object] = {
            "variant": variant,
            "venv_s": venv_wall,  # creating the venv is not part of pip's time
            "install_wall_s": wall,
            "install_cpu_s": cpu,
            "source_builds": builds,
            "heavy_installed": found.split(),
        }
        if variant == "all":
            answer = (
                "from pytest_llmops.models.client import LLMClient, ModelConfig, ModelRuntime;"
                "from pytest_llmops.models.cache import RecordMode;"
                "r = ModelRuntime(cache=None, record_mode=RecordMode.OFF);"
                "print(LLMClient(ModelConfig(model='local/smollm2', params={'max_tokens': 8}), r)"
                ".complete_sync('Say hi.').call.extra['runtime']['llama_cpp_python']); r.close()"
            )
            _, _, printed = _run([python, "-c", answer], env)
            result["local_model_runtime"] = printed.strip().splitlines()[-1]
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("core", "all"), help="one variant only")
    parser.add_argument("--no-cache", action="store_true", help="pip --no-cache-dir: build everything anew")
    parser.add_argument(
        "--no-time-target", action="store_true",
        help="report the core install time but fail only on a source build or a heavy package (for CI's shared machines)",
    )
    args = parser.parse_args(argv)
    failed = False
    for variant in [args.only] if args.only else ["core", "all"]:
        result = install(variant, no_cache=args.no_cache)
        heavy = [name for name in result["heavy_installed"] if name != "-"]  # type: ignore[union-attr]
        print(
            f"{variant:5s} install: {result['install_wall_s']:.1f} s wall, {result['install_cpu_s']:.1f} s CPU; "
            f"built from source: {', '.join(result['source_builds']) or 'nothing'}; "  # type: ignore[arg-type]
            f"heavy packages: {', '.join(heavy) or 'none'}"
        )
        if variant == "core":
            light = not result["source_builds"] and not heavy
            fast = float(result["install_wall_s"]) <= CORE_TARGET_S  # type: ignore[arg-type]
            print(f"core: no source build, no llama-cpp-python or torch: {'yes' if light else 'NO'}; "
                  f"<= {CORE_TARGET_S:.0f} s: {'yes' if fast else 'NO'}")
            failed |= not light or (not fast and not args.no_time_target)
        else:
            print(f"all: the local model answered on llama-cpp-python {result['local_model_runtime']}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
