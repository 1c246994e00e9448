"""The simulation's picture: utilization and queue depth over time, one line per fleet, as a plain SVG
(two panels sharing the time axis; no plotting library)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from hodei.planning.simulate import Outcome

WIDTH, PANEL, MARGIN = 900, 220, 60
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def _ticks(top: float, count: int = 4) -> list[float]:
    return [top * i / count for i in range(count + 1)]


def _duration(seconds: float) -> str:
    """An axis label: 45s, 40m, 2h, 1h20m."""
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes}m"
    return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"


def svg(outcomes: Sequence[Outcome], title: str = "hodei simulate") -> str:
    """The chart of ``outcomes`` (their samples)."""
    end = max((s[0] for o in outcomes for s in o.samples), default=0.0) or 1.0
    depth_top = max((s[2] for o in outcomes for s in o.samples), default=0) or 1
    plot = WIDTH - 2 * MARGIN
    height = 2 * PANEL + 3 * MARGIN
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">',
             f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
             f'<text x="{MARGIN}" y="24" font-size="16">{escape(title)}</text>']
    panels = (("utilization (slots in use / slots)", 1, lambda s: s[1], lambda v: f"{v:.0%}"),
              ("queue depth (jobs waiting)", depth_top, lambda s: float(s[2]), lambda v: f"{v:g}"))
    for number, (label, top, value, shown) in enumerate(panels):
        y0 = MARGIN + number * (PANEL + MARGIN)
        parts.append(f'<text x="{MARGIN}" y="{y0 - 8}">{escape(label)}</text>')
        parts.append(f'<rect x="{MARGIN}" y="{y0}" width="{plot}" height="{PANEL}" fill="none" stroke="#999"/>')
        for tick in _ticks(float(top)):
            y = y0 + PANEL - PANEL * tick / top
            parts.append(f'<line x1="{MARGIN}" x2="{MARGIN + plot}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
            parts.append(f'<text x="{MARGIN - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(shown(tick))}</text>')
        for tick in _ticks(end, 6):
            x = MARGIN + plot * tick / end
            parts.append(f'<text x="{x:.1f}" y="{y0 + PANEL + 16}" text-anchor="middle">{_duration(tick)}</text>')
        for index, outcome in enumerate(outcomes):
            points = " ".join(f"{MARGIN + plot * s[0] / end:.1f},{y0 + PANEL - PANEL * min(value(s), top) / top:.1f}"
                              for s in outcome.samples)
            colour = COLOURS[index % len(COLOURS)]
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>')
    for index, outcome in enumerate(outcomes):  # the legend
        x = MARGIN + index * 180
        colour = COLOURS[index % len(COLOURS)]
        parts.append(f'<rect x="{x}" y="{height - 24}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{x + 18}" y="{height - 14}">{escape(outcome.name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
