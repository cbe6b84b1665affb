"""Command-gate throughput and latency: the tree-sitter gate against the seed's regex approach.

    python bench/gate.py [--n 20000] [--seed 20260101]

`measure(runs, n)` (what ``python -m bench`` calls) times ``runs`` batches of ``n`` commands,
the contestants interleaved batch by batch, and returns each one's median µs per batch.

The labelled corpus (tests/safety/corpus/*.tsv) is repeated and shuffled with a fixed seed to
`--n` commands. Each command is decided by `CommandValidator(GatePolicy()).validate` and, in the
same run, by `RegexBaseline` below (a substring denylist, a `startswith` allowlist and a few regex
risk tiers, the way the seed's TypeScript gate works). Prints decisions per second, median / p95 /
max microseconds per command, the median over the first call for each distinct command, and how
each scores on the corpus labels. "gate" runs with the validator's per-text verdict cache off (the
analysis itself); "gate (cached)" is the validator as the server uses it, where a repeated corpus
mostly measures cache hits. Target: "gate" median <= 50 µs.

Nothing is executed and nothing touches the network: commands are only classified.
"""

from __future__ import annotations

import argparse
import gc
import random
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from common import Figure

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "safety" / "corpus"
TARGET_MEDIAN_US = 50.0
ORDER = {"allow": 0, "confirm": 1, "block": 2}


def load_corpus() -> list[tuple[str, str]]:
    """(expected, command) pairs; the format is described in tests/safety/corpus/README.md."""
    cases = []
    for path in sorted(CORPUS.glob("*.tsv")):
        for line in path.read_bytes().decode("utf-8").split("\n"):
            if not line or line.startswith("#"):
                continue
            expected, command, _note = line.split("\t")
            if command.startswith("esc:"):
                raw = command[4:]
                command = raw.encode("latin-1", "backslashreplace").decode("unicode_escape")
            cases.append((expected, command))
    return cases


class RegexBaseline:
    """The seed's approach: substring denylist, then `startswith` allowlist, then regex tiers."""

    DENYLIST = (
        "rm -rf /", "rm -rf ~", "rm -rf *", "mkfs", "dd", ":(){", "chmod 777", "chmod -R 777",
        "> /dev/sd", "shutdown", "reboot", "halt", "poweroff", "format c:", "fdisk", "sudo su",
        "kill -9 -1",
    )
    ALLOWLIST = (
        "ls", "pwd", "cat", "echo", "head", "tail", "wc", "grep", "rg", "find", "which",
        "git status", "git log", "git diff", "git show", "git branch", "npm test", "npm run",
        "node --version", "npm --version", "python --version", "python3 --version",
    )
    TIERS = (
        ("high", re.compile(
            r"\b(sudo|su|doas|chmod|chown|dd|mkfs|curl|wget|nc|ssh|scp|eval)\b|\|\s*(ba)?sh\b")),
        ("medium", re.compile(
            r"\b(rm|mv|cp|kill|pkill|docker|make|npm (install|i|ci)|pip install|yarn|pnpm"
            r"|git (push|commit|reset|checkout|rebase|merge|clean)|sed -i)\b|>")),
    )

    def validate(self, command: str) -> str:
        text = command.strip()
        if any(bad in text for bad in self.DENYLIST):
            return "block"
        if text.startswith(self.ALLOWLIST):
            return "allow"
        for level, pattern in self.TIERS:
            if pattern.search(text):
                return "block" if level == "high" and "rm -rf" in text else "confirm"
        return "allow"


def make_gate(*, cached: bool) -> Callable[[str], str]:
    """The gate's decide function. The validator keeps verdicts per command text (its
    `cache_size`); a repeated corpus would then time dictionary hits, so the headline figure
    switches that cache off and times the analysis itself."""
    from oropendola_ls.safety import CommandValidator, GatePolicy

    validator = CommandValidator(GatePolicy())
    if not cached:
        if not hasattr(validator, "cache_size"):
            raise SystemExit("cannot switch the gate's verdict cache off (no cache_size)")
        validator.cache_size = 0
    return lambda command: str(validator.validate(command).decision)


def time_calls(decide: Callable[[str], str], commands: list[str]) -> list[float]:
    """Microseconds per call, one timing per command."""
    clock = time.perf_counter_ns
    out = []
    gc.disable()
    try:
        for command in commands:
            start = clock()
            decide(command)
            out.append((clock() - start) / 1000.0)
    finally:
        gc.enable()
    return out


def score(decide: Callable[[str], str], cases: list[tuple[str, str]]) -> dict[str, int]:
    counts = {"ok": 0, "hard": 0, "soft": 0, "over": 0}
    for expected, command in cases:
        got = decide(command)
        if got == expected:
            counts["ok"] += 1
        elif got == "allow":
            counts["hard"] += 1
        elif ORDER[got] < ORDER[expected]:
            counts["soft"] += 1
        else:
            counts["over"] += 1
    return counts


def make_batch(cases: list[tuple[str, str]], n: int, seed: int) -> list[str]:
    distinct = [command for _, command in cases]
    batch = (distinct * (n // len(distinct) + 1))[:n]
    random.Random(seed).shuffle(batch)
    return batch


def profile_note(decide: Callable[[str], str], batch: list[str], top: int = 6) -> str:
    """Where the uncached gate spends its time: cProfile over one batch, by own time."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for command in batch:
        decide(command)
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = sum(entry[2] for entry in stats.stats.values())  # type: ignore[attr-defined]
    ranked = sorted(((entry[2], key) for key, entry in
                     stats.stats.items()), reverse=True)[:top]  # type: ignore[attr-defined]
    parts = [f"{Path(filename).stem}.{name} {100 * own / total:.0f}%"
             for own, (filename, _, name) in ranked]
    return (f"cProfile of {len(batch):,} uncached decisions, own time: " + ", ".join(parts)
            + f" (the top {top} together {100 * sum(o for o, _ in ranked) / total:.0f}%)")


def measure(runs: int = 5, n: int = 10_000, seed: int = 20260101,
            profile: bool = True) -> list[Figure]:
    """µs per decision: the gate (analysis, verdict cache off), the gate as the server uses it
    (cached) and the regex baseline; each run a batch of ``n`` commands, shuffled with its own
    seed, the contestants one after another in an order that alternates by run."""
    cases = load_corpus()
    contestants: list[tuple[str, Callable[[str], str]]] = [
        ("gate", make_gate(cached=False)),
        ("gate (cached)", make_gate(cached=True)),
        ("regex-baseline", RegexBaseline().validate),
    ]
    counts = score(contestants[0][1], cases)
    if counts["hard"]:
        raise RuntimeError(f"the gate allowed {counts['hard']} commands labelled otherwise")
    medians: dict[str, list[float]] = {name: [] for name, _ in contestants}
    for decide in (d for _, d in contestants):  # warm-up: first calls, the cached gate's cache
        time_calls(decide, [command for _, command in cases])
    for run in range(runs):
        batch = make_batch(cases, n, seed + run)
        order = contestants if run % 2 == 0 else contestants[::-1]
        for name, decide in order:
            medians[name].append(statistics.median(time_calls(decide, batch)))
    base = medians["regex-baseline"]
    note = (f"{len(cases)} distinct corpus commands; {n:,} per run; gate scores "
            f"{counts['ok']}/{len(cases)} on the labels")
    if profile:
        note += "; " + profile_note(contestants[0][1], make_batch(cases, min(n, 3000), seed))
    return [
        Figure("gate: regex baseline", "µs/decision", base, digits=1),
        Figure("gate: tree-sitter gate, cache off", "µs/decision", medians["gate"], digits=1,
               ratio=[g / b for g, b in zip(medians["gate"], base, strict=True)],
               baseline="regex", target=("<=", TARGET_MEDIAN_US), note=note),
        Figure("gate: as the server runs it (verdict cache)", "µs/decision",
               medians["gate (cached)"], digits=2,
               ratio=[g / b for g, b in zip(medians["gate (cached)"], base, strict=True)],
               baseline="regex", note="a repeated corpus: mostly cache hits"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="commands per contestant")
    parser.add_argument("--seed", type=int, default=20260101, help="shuffle seed")
    args = parser.parse_args(argv)

    cases = load_corpus()
    distinct = [command for _, command in cases]
    batch = make_batch(cases, args.n, args.seed)

    gate_started = time.perf_counter()
    gate = make_gate(cached=False)
    setup_ms = (time.perf_counter() - gate_started) * 1000
    contestants: list[tuple[str, Callable[[str], str]]] = [
        ("gate", gate),
        ("gate (cached)", make_gate(cached=True)),
        ("regex-baseline", RegexBaseline().validate),
    ]

    print(f"corpus: {len(cases)} distinct commands; batch {len(batch)} (seed {args.seed});"
          f" gate construction {setup_ms:.1f} ms\n")
    header = (f"{'contestant':<16}{'decisions/s':>13}{'median µs':>11}{'p95 µs':>10}"
              f"{'max µs':>10}{'first-call median µs':>22}")
    print(header)
    print("-" * len(header))
    results = {}
    for name, decide in contestants:
        first = time_calls(decide, distinct)          # first call per distinct command
        times = time_calls(decide, batch)
        total_s = sum(times) / 1e6
        median = statistics.median(times)
        p95 = statistics.quantiles(times, n=20)[-1]
        results[name] = median
        print(f"{name:<16}{len(times) / total_s:>13,.0f}{median:>11.1f}{p95:>10.1f}"
              f"{max(times):>10.1f}{statistics.median(first):>22.1f}")

    print()
    print(f"{'corpus score':<16}{'ok':>6}{'hard':>6}{'soft':>6}{'over':>6}")
    for name, decide in contestants[::2]:      # the cached gate decides the same way
        counts = score(decide, cases)
        print(f"{name:<16}{counts['ok']:>6}{counts['hard']:>6}{counts['soft']:>6}"
              f"{counts['over']:>6}")

    verdict = "meets" if results["gate"] <= TARGET_MEDIAN_US else "MISSES"
    print(f"\ngate median {results['gate']:.1f} µs {verdict} the {TARGET_MEDIAN_US:.0f} µs target;"
          f" {results['gate'] / results['regex-baseline']:.0f}x the regex baseline")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
