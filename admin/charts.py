"""Charts drawn on the server as inline SVG: no script, no external asset, every label escaped."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

FILED_COLOUR = "#4a78b5"
CLOSED_COLOUR = "#5aa469"


def _text(x: float, y: float, label: str, anchor: str = "start", size: int = 12) -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}">{escape(label)}</text>'


def bar_chart(rows: Sequence[tuple[str, int, int]], title: str, legend: tuple[str, str], width: int = 720) -> Markup:
    """Horizontal bars: per label, filed (full bar) and closed (inner bar)."""
    bar_h, gap, left, top = 18, 6, 180, 34
    height = top + len(rows) * (bar_h + gap) + 10
    peak = max((filed for _l, filed, _c in rows), default=0) or 1
    span = width - left - 60
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}">', _text(0, 16, title, size=14),
             f'<rect x="{left}" y="22" width="10" height="10" fill="{FILED_COLOUR}"/>',
             _text(left + 14, 31, legend[0]), f'<rect x="{left + 120}" y="22" width="10" height="10" '
             f'fill="{CLOSED_COLOUR}"/>', _text(left + 134, 31, legend[1])]
    for i, (label, filed, closed) in enumerate(rows):
        y = top + i * (bar_h + gap)
        parts.append(_text(left - 6, y + 13, label[:24], anchor="end"))
        parts.append(f'<rect x="{left}" y="{y}" width="{span * filed / peak:.1f}" height="{bar_h}" '
                     f'fill="{FILED_COLOUR}"><title>{escape(label)}: {filed}</title></rect>')
        parts.append(f'<rect x="{left}" y="{y + 4}" width="{span * closed / peak:.1f}" height="{bar_h - 8}" '
                     f'fill="{CLOSED_COLOUR}"><title>{escape(label)}: {closed}</title></rect>')
        parts.append(_text(left + span * filed / peak + 4, y + 13, str(filed)))
    parts.append("</svg>")
    return Markup("".join(parts))


def line_chart(points: Sequence[tuple[str, int, int]], title: str, legend: tuple[str, str],
               width: int = 720, height: int = 240) -> Markup:
    """Two lines over the periods (filed, closed), first and last period named on the axis."""
    left, right, top, bottom = 40, 10, 34, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((max(f, c) for _l, f, c in points), default=0) or 1
    step = plot_w / max(1, len(points) - 1)

    def path(values: list[int]) -> str:
        return " ".join(f"{left + i * step:.1f},{top + plot_h - plot_h * v / peak:.1f}" for i, v in enumerate(values))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}">', _text(0, 16, title, size=14),
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>',
             _text(left - 4, top + 8, str(peak), anchor="end"), _text(left - 4, top + plot_h, "0", anchor="end"),
             f'<rect x="{left + 200}" y="22" width="10" height="10" fill="{FILED_COLOUR}"/>',
             _text(left + 214, 31, legend[0]), f'<rect x="{left + 320}" y="22" width="10" height="10" '
             f'fill="{CLOSED_COLOUR}"/>', _text(left + 334, 31, legend[1])]
    if points:
        for colour, values in ((FILED_COLOUR, [p[1] for p in points]), (CLOSED_COLOUR, [p[2] for p in points])):
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path(values)}"/>')
        parts.append(_text(left, height - 6, points[0][0]))
        parts.append(_text(left + plot_w, height - 6, points[-1][0], anchor="end"))
    parts.append("</svg>")
    return Markup("".join(parts))
