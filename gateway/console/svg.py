"""Charts as inline SVG written on the server: no script, no chart library, nothing fetched
from elsewhere, and they scale down to a phone's width (viewBox, width 100%). Colours are
presentation attributes, which the page's Content-Security-Policy allows (inline styles it
does not)."""
from __future__ import annotations

from datetime import date

from markupsafe import Markup, escape

BAR = "#2b6cb0"
TEXT = "#1a202c"
GRID = "#cbd5e0"


def bars(rows: list[tuple[str, int]], title: str, width: int = 600, row_height: int = 22,
         label_width: int = 190) -> Markup:
    """Horizontal bars, one row per label: readable on a narrow screen with long names."""
    if not rows:
        return Markup(f'<p class="empty">{escape(title)}: nothing yet.</p>')
    top = max(n for _, n in rows) or 1
    room = width - label_width - 50
    height = row_height * len(rows) + 10
    out = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{escape(title)}" '
           f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    for i, (label, n) in enumerate(rows):
        y = 5 + i * row_height
        length = round(room * n / top)
        out.append(f'<text x="{label_width - 6}" y="{y + row_height * 0.7:.0f}" text-anchor="end" font-size="13" '
                   f'fill="{TEXT}">{escape(label)}</text>'
                   f'<rect x="{label_width}" y="{y + 3}" width="{max(length, 1)}" height="{row_height - 6}" '
                   f'fill="{BAR}"><title>{escape(label)}: {n}</title></rect>'
                   f'<text x="{label_width + length + 5}" y="{y + row_height * 0.7:.0f}" font-size="13" '
                   f'fill="{TEXT}">{n}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def columns(rows: list[tuple[date, int]], title: str, width: int = 600, height: int = 160) -> Markup:
    """One column per day, oldest left; the first and last day are labelled."""
    if not rows:
        return Markup(f'<p class="empty">{escape(title)}: nothing yet.</p>')
    top = max(n for _, n in rows) or 1
    plot_h, base = height - 40, height - 22
    step = (width - 40) / len(rows)
    out = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{escape(title)}" '
           f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
           f'<line x1="30" y1="{base}" x2="{width - 10}" y2="{base}" stroke="{GRID}"/>',
           f'<text x="26" y="{base - plot_h + 10}" text-anchor="end" font-size="12" fill="{TEXT}">{top}</text>',
           f'<text x="26" y="{base}" text-anchor="end" font-size="12" fill="{TEXT}">0</text>']
    for i, (day, n) in enumerate(rows):
        h = round(plot_h * n / top)
        x = 32 + i * step
        out.append(f'<rect x="{x:.1f}" y="{base - h}" width="{max(step - 2, 1):.1f}" height="{h}" fill="{BAR}">'
                   f'<title>{day.isoformat()}: {n}</title></rect>')
    out.append(f'<text x="32" y="{height - 5}" font-size="12" fill="{TEXT}">{rows[0][0].isoformat()}</text>')
    out.append(f'<text x="{width - 10}" y="{height - 5}" text-anchor="end" font-size="12" fill="{TEXT}">'
               f'{rows[-1][0].isoformat()}</text></svg>')
    return Markup("".join(out))
