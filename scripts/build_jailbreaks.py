"""Build the small attack set ``pytest_llmops/strategies/data/jailbreaks.jsonl``.

Reads CyberSecEval's prompt-injection inputs (MIT, meta-llama/PurpleLlama) from
the shared datasets folder and keeps, per attack technique, the first three
English direct prompts of at most 400 characters, in file order: a fixed,
reviewable set that covers every technique without favouring one.

    python scripts/build_jailbreaks.py [--datasets ../shared/datasets]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

PER_TECHNIQUE = 3
MAX_CHARS = 400
OUT = Path(__file__).resolve().parents[1] / "pytest_llmops" / "strategies" / "data" / "jailbreaks.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "datasets")
    args = parser.parse_args()
    source = args.datasets / "prompt_injection" / "cyberseceval_prompt_injection.jsonl"
    kept: dict[str, list[dict[str, str]]] = {}
    with source.open(encoding="utf-8") as rows:
        for line in rows:
            row = json.loads(line)
            # source looks like "cyberseceval_pi:en:English:direct:ignore_previous_instructions"
            _, lang, _, kind, technique = row["source"].split(":")
            if lang != "en" or kind != "direct" or len(row["text"]) > MAX_CHARS:
                continue
            bucket = kept.setdefault(technique, [])
            if len(bucket) < PER_TECHNIQUE:
                bucket.append({"id": f"{technique}-{len(bucket)}", "technique": technique, "text": row["text"]})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as out:
        for technique in sorted(kept):
            for entry in kept[technique]:
                out.write(json.dumps(entry, ensure_ascii=False) + "\n")
    print(f"{sum(map(len, kept.values()))} attacks, {len(kept)} techniques -> {OUT}")


if __name__ == "__main__":
    main()
