from __future__ import annotations

import pytest
from hodei.quantity import format_memory, parse_cpu, parse_memory
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize("text, size", [
    ("4Gi", 4 * 2**30), ("512Mi", 512 * 2**20), ("2G", 2 * 10**9), ("1k", 1000), ("1Ki", 1024),
    ("1.5Gi", 3 * 2**29), ("100", 100), (0, 0), (123, 123), (2.5, 3),
])
def test_memory_quantities(text, size) -> None:
    assert parse_memory(text) == size


@pytest.mark.parametrize("bad", ["4GB", "4 Gi", "-1", "Gi", "", "4gi", True, None, -1, [], float("nan")])
def test_bad_memory_quantities(bad) -> None:
    with pytest.raises(ValueError):
        parse_memory(bad)


@pytest.mark.parametrize("value, cores", [(2, 2.0), ("2", 2.0), ("0.5", 0.5), ("500m", 0.5), (1.25, 1.25)])
def test_cpu_quantities(value, cores) -> None:
    assert parse_cpu(value) == cores


@pytest.mark.parametrize("bad", ["2 cores", "1Gi", "-1", True, None, float("inf"), -0.5])
def test_bad_cpu_quantities(bad) -> None:
    with pytest.raises(ValueError):
        parse_cpu(bad)


@given(st.integers(min_value=0, max_value=2**62))
def test_format_memory_round_trips(size: int) -> None:
    assert parse_memory(format_memory(size)) == size
