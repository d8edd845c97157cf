"""Charts written on the server: no script, no chart library, nothing fetched from elsewhere.

Labels and numbers are HTML text, not SVG text: an SVG scaled down to a phone's width shrinks
its text with it, and a label must stay readable (the stylesheet keeps it at 12 px or more).
Only the bars are SVG, stretched to their box (preserveAspectRatio="none"); their colours are
presentation attributes, which the page's Content-Security-Policy allows (inline styles it
does not)."""
from __future__ import annotations

from datetime import date
from typing import Callable, Optional

from markupsafe import Markup, escape

BAR = "#2b6cb0"


def _empty(title: str, empty: str) -> Markup:
    return Markup(f'<p class="empty">{escape(title)}: {escape(empty)}</p>')


def bars(rows: list[tuple[str, int]], title: str, empty: str, link: Optional[Callable[[int], str]] = None) -> Markup:
    """Horizontal bars, one row per label: readable on a narrow screen with long names.
    `link(i)`, when given, is the address the i-th label opens (the filtered case list)."""
    if not rows:
        return _empty(title, empty)
    top = max(n for _, n in rows) or 1
    out = [f'<figure class="chart bars"><figcaption>{escape(title)}</figcaption>']
    for i, (label, n) in enumerate(rows):
        name = f'<a href="{escape(link(i))}">{escape(label)}</a>' if link else escape(label)
        width = max(round(100 * n / top, 1), 0.5)
        out.append(f'<div class="bar-row"><span class="bar-label">{name}</span>'
                   f'<svg viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">'
                   f'<rect x="0" y="1" width="{width}" height="8" fill="{BAR}"/></svg>'
                   f'<span class="bar-n">{n}</span></div>')
    out.append("</figure>")
    return Markup("".join(out))


def columns(rows: list[tuple[date, int]], title: str, empty: str, day: Callable[[date], str]) -> Markup:
    """One column per day, oldest left; the first and last day and the highest count are labelled."""
    if not rows or not any(n for _, n in rows):
        return _empty(title, empty)
    top = max(n for _, n in rows) or 1
    step = 100 / len(rows)
    out = [f'<figure class="chart columns"><figcaption>{escape(title)}</figcaption>'
           f'<div class="col-top">{top}</div>'
           f'<svg viewBox="0 0 100 40" preserveAspectRatio="none" aria-hidden="true">'
           f'<line x1="0" y1="40" x2="100" y2="40" stroke="#cbd5e0" stroke-width="0.5"/>']
    for i, (_day, n) in enumerate(rows):
        h = round(40 * n / top, 2)
        out.append(f'<rect x="{i * step + step * 0.1:.2f}" y="{40 - h}" width="{step * 0.8:.2f}" height="{h}" '
                   f'fill="{BAR}"/>')
    out.append(f'</svg><div class="col-axis"><span>{escape(day(rows[0][0]))}</span>'
               f'<span>{escape(day(rows[-1][0]))}</span></div></figure>')
    return Markup("".join(out))
