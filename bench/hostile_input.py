"""How long refusing hostile input takes: every check linear, nothing Python cannot read reaching a traceback.

Rerun: .venv/bin/python bench/hostile_input.py [--repeat 5]
Each figure is the median of --repeat runs, in-process (no database): validating a provider document
(``hodei.provider_spec.parse_provider``, what every write and every read of a row runs) with many
regions, with duplicates among them, past the region limit; reading documents nested 100,000 levels
deep or holding a 5,000-digit integer (``hodei.documents.parse_text``, what ``apply`` and ``select``
run); cutting a 50 MB health reason; quoting a 10 MB value in an error. Each row says whether the
input was accepted or refused.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from hodei.documents import parse_text
from hodei.errors import InvalidInput
from hodei.plugins import make_plugin_manager
from hodei.provider_spec import parse_provider
from hodei.redaction import quote, shorten


def timed(action: Callable[[], Any], repeat: int) -> tuple[float, str]:
    times, outcome = [], ""
    for _ in range(repeat):
        started = time.perf_counter()
        try:
            action()
            outcome = "accepted"
        except InvalidInput:
            outcome = "refused"
        times.append(time.perf_counter() - started)
    return statistics.median(times), outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    pm = make_plugin_manager(enable=["static"])

    def provider(regions: list[str]) -> Callable[[], Any]:
        return lambda: parse_provider({"name": "p", "provider_type": "static", "allowed_regions": regions}, pm)

    deep_json = "[" * 100_000 + "]" * 100_000
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("provider with 1,000 regions (the limit)", provider([f"r{i}" for i in range(1000)])),
        ("provider with 1,000 regions, 2 duplicated", provider([f"r{i}" for i in range(998)] + ["r1", "r2"])),
        ("provider with 20,000 regions", provider([f"r{i}" for i in range(20_000)])),
        ("provider with 20,000 copies of one region", provider(["r"] * 20_000)),
        ("JSON nested 100,000 levels", lambda: parse_text(deep_json, "json", "bench")),
        ("YAML nested 100,000 levels", lambda: parse_text(deep_json, "yaml", "bench")),
        ("TOML nested 100,000 levels", lambda: parse_text("a = " + deep_json, "toml", "bench")),
        ("JSON with a 5,000-digit integer", lambda: parse_text("9" * 5000, "json", "bench")),
        ("cutting a 50 MB health reason", lambda: shorten("x" * 50_000_000, 4096)),
        ("quoting a 10 MB value in an error", lambda: quote("x" * 10_000_000)),
    ]
    print("| input | outcome | median seconds |")
    print("|---|---|---:|")
    for name, action in cases:
        seconds, outcome = timed(action, args.repeat)
        print(f"| {name} | {outcome} | {seconds:.4f} |")
    print(f"\nRerun: .venv/bin/python bench/hostile_input.py --repeat {args.repeat}")


if __name__ == "__main__":
    main()
