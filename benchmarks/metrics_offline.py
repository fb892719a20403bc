"""Prove that the model- and data-backed metrics need no network.

Re-runs itself inside ``unshare -n sh -c 'ip link set lo up; ...'``: a fresh
network namespace where only loopback exists (needs root, or a user
namespace). Inside, with an empty pytest-llmops cache (so the WordNet and
Punkt copies are made there) and an empty Hugging Face cache, it:

1. checks that the outside world is unreachable (a TCP connect fails);
2. installs an audit hook that records every socket connect and DNS lookup;
3. runs METEOR (NLTK's documented example), ROUGE-Lsum with Punkt sentence
   splitting, BERTScore (raw and rescaled) and MiniLM cosine similarity;
4. prints the values, the time each took, and the number of connection
   attempts the audit hook saw (must be 0).

Usage: python benchmarks/metrics_offline.py          (as root)
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def outside() -> int:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        print("needs the unshare and ip commands (util-linux, iproute2)")
        return 2
    with tempfile.TemporaryDirectory(prefix="llmops-offline-") as tmp:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE") and "proxy" not in key.lower()
        }
        env["PYTEST_LLMOPS_CACHE_DIR"] = str(Path(tmp) / "llmops-cache")
        env["HF_HOME"] = str(Path(tmp) / "hf-home")
        env["PYTHONPATH"] = str(ROOT)
        inner = f"{shlex.quote(sys.executable)} {shlex.quote(__file__)} --inside"
        command = ["unshare", "-n", "sh", "-c", f"ip link set lo up; exec {inner}"]
        print("running: " + " ".join(shlex.quote(c) for c in command))
        return subprocess.run(command, env=env, check=False).returncode


def inside() -> int:
    import socket

    probe = socket.socket()
    probe.settimeout(3)
    try:
        probe.connect(("1.1.1.1", 443))
        print("network check: 1.1.1.1:443 is reachable, so this is NOT an offline run")
        return 1
    except OSError as error:
        print(f"network check: connect to 1.1.1.1:443 fails at once: {error}")
    finally:
        probe.close()

    attempts: list[tuple[str, tuple]] = []

    def audit(event: str, args: tuple) -> None:
        if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname"):
            attempts.append((event, args))

    sys.addaudithook(audit)
    print(
        f"HF_HUB_OFFLINE set by the user: {'HF_HUB_OFFLINE' in os.environ}; "
        f"empty cache: {os.environ['PYTEST_LLMOPS_CACHE_DIR']}"
    )

    from pytest_llmops.metrics import bertscore, meteor, rouge, semantic_similarity

    hypothesis = "It is a guide to action which ensures that the military always obeys the commands of the party"
    references = [
        "It is a guide to action that ensures that the military will forever heed Party commands",
        "It is the guiding principle which guarantees the military forces always being under the command of the Party",
        "It is the practical guide for the army always to heed the directions of the party",
    ]
    checks = [
        ("METEOR (NLTK doc example, expect 0.6944)", lambda: meteor(hypothesis, references)),
        (
            "ROUGE-Lsum, Punkt split",
            lambda: rouge(
                "He was tired. Dr. Smith went home.", "Dr. Smith went home. He was tired.", rouge_type="rougeLsum"
            ),
        ),
        ("BERTScore F1, MiniLM", lambda: bertscore("A man is eating a piece of bread.", "A man is eating food.")),
        (
            "BERTScore F1, rescaled",
            lambda: bertscore("A man is eating a piece of bread.", "A man is eating food.", rescale=True),
        ),
        (
            "cosine similarity, MiniLM",
            lambda: semantic_similarity("A man is eating a piece of bread.", "A man is eating food."),
        ),
    ]
    for label, run in checks:
        started = time.perf_counter()
        score = run()
        print(f"  {label:<42} {score.value:.4f}  ({time.perf_counter() - started:.1f} s)  {score.signature}")
    print(f"connection attempts seen by the audit hook: {len(attempts)}")
    for event, args in attempts[:10]:
        print(f"  {event} {args!r}")
    return 1 if attempts else 0


if __name__ == "__main__":
    sys.exit(inside() if "--inside" in sys.argv else outside())
