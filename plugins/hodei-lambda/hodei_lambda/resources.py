"""What one worker gets: the function's memory, and the CPU share Lambda grants with it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hodei import Resources

# Lambda gives a function CPU in proportion to its memory: one vCPU's worth at 1,769 MB
# (AWS Lambda developer guide, "Configuring function memory"). It has no GPU.
MB_PER_VCPU = 1769


def per_worker(config: Mapping[str, Any]) -> Resources:
    memory_mb = config["memory_mb"]
    return Resources(cpu=round(memory_mb / MB_PER_VCPU, 3), memory=memory_mb * 2**20, gpu=0)
