"""CPU per SMS read by the intake (flows.intake), over the labelled corpus: the first pass with
an empty stem cache (every word new), then warm passes. In-process: the reader is pure."""
from __future__ import annotations

import time
from pathlib import Path

import yaml

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "intake" / "corpus.yaml"
WARM_PASSES = 20


def cpu_per_message() -> tuple[float, float]:
    """(cold, warm) CPU seconds per message."""
    from gateway.content import load_content

    texts = [case["text"] for case in yaml.safe_load(CORPUS.read_text(encoding="utf-8"))]
    reader = load_content().reader
    started = time.process_time()
    for text in texts:
        reader.read(text)
    cold = (time.process_time() - started) / len(texts)
    started = time.process_time()
    for _ in range(WARM_PASSES):
        for text in texts:
            reader.read(text)
    warm = (time.process_time() - started) / (WARM_PASSES * len(texts))
    return cold, warm


if __name__ == "__main__":
    cold, warm = cpu_per_message()
    print(f"intake CPU per message: {cold * 1e6:.0f} us cold, {warm * 1e6:.0f} us warm")
