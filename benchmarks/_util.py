"""Shared helpers for benchmarks: interleaved repeats, summaries, tables, ratios.

Numbers on a shared machine are noisy. Run the contenders interleaved (A B C,
B C A, C A B, ...) so that a slow minute hurts all of them alike, repeat at
least five times, and compare medians measured in the same run.

    from benchmarks._util import interleaved, print_table, ratio_line
    results = interleaved({"a": run_a, "b": run_b}, runs=5)
    print_table("bulk", results, unit="MB/s")
    print(ratio_line("bulk", results, "a", "b"))
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "Summary",
    "ainterleaved",
    "fmt",
    "interleaved",
    "print_table",
    "ratio",
    "ratio_line",
    "rotations",
    "summarize",
    "timed",
]


@dataclass(frozen=True)
class Summary:
    n: int
    min: float
    median: float
    max: float

    @property
    def spread(self) -> float:
        """(max - min) / median: how noisy the repeats were."""
        return (self.max - self.min) / self.median if self.median else float("nan")


def summarize(values: Sequence[float]) -> Summary:
    vals = [v for v in values if v == v]  # drop NaN (failed repeats)
    if not vals:
        nan = float("nan")
        return Summary(0, nan, nan, nan)
    return Summary(len(vals), min(vals), statistics.median(vals), max(vals))


def rotations(names: Sequence[str], runs: int) -> list[list[str]]:
    """The order of contenders in each run: rotated by one each time."""
    names = list(names)
    return [names[r % len(names):] + names[: r % len(names)] for r in range(runs)]


def interleaved(contenders: Mapping[str, Callable[[], float]], runs: int = 5) -> dict[str, list[float]]:
    """Call each contender once per run, in rotated order; collect what each returns."""
    out: dict[str, list[float]] = {name: [] for name in contenders}
    for order in rotations(list(contenders), runs):
        for name in order:
            out[name].append(float(contenders[name]()))
    return out


async def ainterleaved(
    contenders: Mapping[str, Callable[[], Awaitable[float]]], runs: int = 5
) -> dict[str, list[float]]:
    """``interleaved`` for coroutine functions."""
    out: dict[str, list[float]] = {name: [] for name in contenders}
    for order in rotations(list(contenders), runs):
        for name in order:
            out[name].append(float(await contenders[name]()))
    return out


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` took (perf_counter)."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


async def atimed(coro: Awaitable[object]) -> float:
    t0 = time.perf_counter()
    await coro
    return time.perf_counter() - t0


def fmt(value: float) -> str:
    """A compact number: 3 significant digits, k/M suffixes for large values."""
    if value != value:
        return "n/a"
    a = abs(value)
    if a >= 1e6:
        return f"{value / 1e6:.3g}M"
    if a >= 1e4:
        return f"{value / 1e3:.3g}k"
    if a >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def ratio(results: Mapping[str, Sequence[float]], a: str, b: str) -> float:
    """median(a) / median(b), NaN if either is missing."""
    ma, mb = summarize(results.get(a, [])).median, summarize(results.get(b, [])).median
    if ma != ma or mb != mb or mb == 0:
        return float("nan")
    return ma / mb


def ratio_line(title: str, results: Mapping[str, Sequence[float]], a: str, b: str,
               *, higher_is_better: bool = True, target: float | None = None) -> str:
    """'title: a/b = 1.23x (target >= 1.0x: met)' with 'better' meaning as given."""
    r = ratio(results, a, b)
    shown = r if higher_is_better else (1 / r if r == r and r else float("nan"))
    how = "" if higher_is_better else " (inverted: lower is better)"
    line = f"{title}: {a}/{b} = {shown:.2f}x{how}"
    if target is not None and shown == shown:
        line += f" (target >= {target:g}x: {'met' if shown >= target else 'MISSED'})"
    return line


def print_table(title: str, results: Mapping[str, Sequence[float]], *, unit: str,
                higher_is_better: bool = True, file=None) -> None:
    """One block: a line per contender with n, min, median, max and spread."""
    better = "higher" if higher_is_better else "lower"
    print(f"\n{title} [{unit}, {better} is better]", file=file)
    print(f"  {'contender':<16}{'n':>3}{'min':>10}{'median':>10}{'max':>10}{'spread':>8}", file=file)
    for name, values in results.items():
        s = summarize(values)
        spread = f"{s.spread * 100:.0f}%" if s.n else "n/a"
        print(f"  {name:<16}{s.n:>3}{fmt(s.min):>10}{fmt(s.median):>10}{fmt(s.max):>10}"
              f"{spread:>8}", file=file)


def run_async(coro: Awaitable[object]) -> object:
    """asyncio.run for scripts (kept here so benchmark modules stay short)."""
    return asyncio.run(coro)  # type: ignore[arg-type]
