"""What the robustness suite tried, counted as it runs and printed at its end
(``conftest.py``); the README's reliability section quotes a run's counts."""
from collections import Counter

COUNTS: Counter = Counter()


def count(kind: str, outcome: str) -> None:
    """One bad input of ``kind`` ("fuzzed file", "command line", ...) and what became
    of it: "refused" (the documented error, a clear message), "loaded" (harmless)
    or "held" (a fault the files survived)."""
    COUNTS[kind, outcome] += 1


def summary() -> str:
    parts = []
    for kind in sorted({k for k, _ in COUNTS}):
        got = {o: n for (k, o), n in COUNTS.items() if k == kind}
        said = {"refused": "refused with a clear error", "loaded": "loaded unharmed", "held": "held"}
        parts.append(f"{kind}s: {sum(got.values())} ("
                     + ", ".join(f"{got[o]} {said[o]}" for o in said if o in got) + ")")
    return f"{sum(COUNTS.values())} bad inputs and faults tried; " + "; ".join(parts)
