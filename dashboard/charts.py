"""Inline SVG charts (no JavaScript): a daily trend chart and horizontal stacked bars."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = {
    "email": "#4c78a8",
    "phone": "#f58518",
    "meeting": "#54a24b",
    "visit": "#b279a2",
    "other": "#9d9d9d",
    "met": "#54a24b",
    "met_late": "#eeca3b",
    "breached": "#e45756",
    "opened": "#4c78a8",
    "attainment": "#222222",
}


@dataclass(frozen=True)
class Series:
    """One named series of values aligned with the chart's labels (None = no value)."""

    name: str
    values: Sequence[float | None]
    color: str


def bars_and_line(
    labels: Sequence[str],
    stacked: Sequence[Series],
    line: Series | None = None,
    *,
    width: int = 900,
    height: int = 240,
    title: str = "",
    marked: Sequence[bool] = (),
    marked_label: str = "",
    label_from: int = 5,
    legend: bool = True,
) -> str:
    """Stacked daily bars (counts, left axis) with an optional 0..1 line (right axis).

    The line breaks where a value is None (no segment drawn across a gap). Labels whose
    ``marked`` flag is set get a grey band (``marked_label`` explains it in the legend). Axis
    labels show ``label[label_from:]`` (dates without their year by default).
    """
    pad_l, pad_r, pad_t, pad_b = 40, 44, 24, 36
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    n = max(len(labels), 1)
    totals = [sum((s.values[i] or 0.0) for s in stacked) for i in range(len(labels))]
    top = max([*totals, 1.0])
    step = plot_w / n
    bar_w = max(step * 0.7, 1.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}">',
        f'<text x="{pad_l}" y="14" font-size="12" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{pad_l}" y1="{pad_t + plot_h}" x2="{pad_l + plot_w}" y2="{pad_t + plot_h}" '
        'stroke="#888"/>',
        f'<text x="{pad_l - 4}" y="{pad_t + 4}" font-size="10" text-anchor="end">{top:g}</text>',
        f'<text x="{pad_l - 4}" y="{pad_t + plot_h}" font-size="10" text-anchor="end">0</text>',
    ]
    for i, label in enumerate(labels):
        x = pad_l + i * step + (step - bar_w) / 2
        y = float(pad_t + plot_h)
        if i < len(marked) and marked[i]:
            parts.append(
                f'<rect x="{pad_l + i * step:.1f}" y="{pad_t}" width="{step:.1f}" '
                f'height="{plot_h}" fill="#eeeeee" data-marked="{escape(label)}">'
                f"<title>{escape(label)}: {escape(marked_label)}</title></rect>"
            )
        for s in stacked:
            value = s.values[i] or 0.0
            if value <= 0:
                continue
            h = plot_h * value / top
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{s.color}"><title>{escape(label)} {escape(s.name)}: {value:g}</title></rect>'
            )
        if n <= 16 or i % max(n // 8, 1) == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - pad_b + 14}" font-size="9" '
                f'text-anchor="middle">{escape(label[label_from:])}</text>'
            )
    if line is not None:
        runs: list[list[tuple[float, float]]] = [[]]
        for i, v in enumerate(line.values):
            if v is None:
                runs.append([])
                continue
            runs[-1].append((pad_l + i * step + step / 2, pad_t + plot_h * (1 - v)))
        for points in runs:
            if len(points) == 1:
                ((x, y),) = points
                parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{line.color}"/>')
            elif points:
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
                parts.append(
                    f'<polyline points="{path}" fill="none" stroke="{line.color}" '
                    'stroke-width="2"/>'
                )
        parts.append(
            f'<text x="{width - pad_r + 4}" y="{pad_t + 4}" font-size="10">100%</text>'
            f'<text x="{width - pad_r + 4}" y="{pad_t + plot_h}" font-size="10">0%</text>'
        )
    legend_x = pad_l
    for s in [*stacked, *([line] if line is not None else [])] if legend else []:
        parts.append(
            f'<rect x="{legend_x}" y="{height - 12}" width="10" height="10" fill="{s.color}"/>'
            f'<text x="{legend_x + 14}" y="{height - 3}" font-size="10">{escape(s.name)}</text>'
        )
        legend_x += 16 + 7 * len(s.name) + 12
    if any(marked):
        parts.append(
            f'<rect x="{legend_x}" y="{height - 12}" width="10" height="10" fill="#eeeeee" '
            f'stroke="#999"/><text x="{legend_x + 14}" y="{height - 3}" font-size="10">'
            f"{escape(marked_label)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def stacked_share(
    rows: Sequence[tuple[str, Sequence[tuple[str, float]]]], *, width: int = 420, title: str = ""
) -> str:
    """One horizontal 100% bar per row of (label, [(segment, value), ...])."""
    bar_h, gap, label_w = 16, 8, 150
    height = 20 + len(rows) * (bar_h + gap) + 18
    plot_w = width - label_w - 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}">',
        f'<text x="0" y="12" font-size="12" font-weight="bold">{escape(title)}</text>',
    ]
    segments_seen: list[str] = []
    for r, (label, segments) in enumerate(rows):
        y = 20 + r * (bar_h + gap)
        parts.append(f'<text x="0" y="{y + 12}" font-size="11">{escape(label[:24])}</text>')
        total = sum(v for _, v in segments) or 1.0
        x = float(label_w)
        for name, value in segments:
            w = plot_w * value / total
            if name not in segments_seen:
                segments_seen.append(name)
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                f'fill="{PALETTE.get(name, "#9d9d9d")}"><title>{escape(label)} {escape(name)}: '
                f"{value:g}</title></rect>"
            )
            x += w
    legend_x = 0
    for name in segments_seen:
        parts.append(
            f'<rect x="{legend_x}" y="{height - 12}" width="10" height="10" '
            f'fill="{PALETTE.get(name, "#9d9d9d")}"/>'
            f'<text x="{legend_x + 14}" y="{height - 3}" font-size="10">{escape(name)}</text>'
        )
        legend_x += 24 + 7 * len(name)
    parts.append("</svg>")
    return "".join(parts)
