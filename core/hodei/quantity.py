"""Resource quantities as operators write them: ``"4Gi"``, ``"512Mi"``, ``"2G"``, ``"500m"`` cores."""

from __future__ import annotations

import math
import re
from decimal import ROUND_CEILING, Decimal

_MEMORY_UNITS = {
    "": 1,
    "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}
# Nothing real is larger, and every store Hodei writes to holds it in a signed 64-bit integer.
MAX_BYTES = 2**63 - 1
_QUANTITY = re.compile(r"(?P<number>\d+(?:\.\d+)?|\.\d+)(?P<unit>[A-Za-z]*)")


def parse_memory(value: object) -> int:
    """Bytes from an integer or a Kubernetes-style quantity; raises ``ValueError`` with the reason."""
    if isinstance(value, bool):
        raise ValueError("expected bytes or a quantity like 512Mi, 4Gi, 2G, not a boolean")
    if isinstance(value, int):
        size = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number of bytes")
        size = math.ceil(value)
    elif isinstance(value, str):
        match = _QUANTITY.fullmatch(value)
        if match is None or match["unit"] not in _MEMORY_UNITS:
            raise ValueError(f"{value!r} is not a memory quantity (examples: 536870912, 512Mi, 4Gi, 2G)")
        # Decimal, not float: "9007199254740993" must stay that many bytes.
        exact = Decimal(match["number"]) * _MEMORY_UNITS[match["unit"]]
        size = int(exact.to_integral_value(rounding=ROUND_CEILING))
    else:
        raise ValueError("expected bytes or a quantity like 512Mi, 4Gi, 2G")
    if size < 0:
        raise ValueError("must not be negative")
    if size > MAX_BYTES:
        raise ValueError(f"must be at most {MAX_BYTES} bytes (8Ei)")
    return size


def parse_cpu(value: object) -> float:
    """Cores from a number, a numeric string (``"2"``) or millicores (``"500m"``)."""
    if isinstance(value, bool):
        raise ValueError("expected a number of cores like 2, 0.5 or '500m', not a boolean")
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            raise ValueError("is too large to be a number of cores") from None
    elif isinstance(value, str):
        match = _QUANTITY.fullmatch(value)
        if match is None or match["unit"] not in ("", "m"):
            raise ValueError(f"{value!r} is not a CPU quantity (examples: 2, 0.5, '500m')")
        number = float(match["number"]) / (1000 if match["unit"] == "m" else 1)
    else:
        raise ValueError("expected a number of cores like 2, 0.5 or '500m'")
    if not math.isfinite(number) or number < 0:
        raise ValueError("must be a finite, non-negative number of cores")
    return number


def format_memory(size: int) -> str:
    """The shortest exact binary form of a byte count (``4294967296`` → ``4Gi``)."""
    for unit in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        factor = _MEMORY_UNITS[unit]
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)
