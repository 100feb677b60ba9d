"""The evidence map's drawings as inline SVG and table cells: pure functions from counts to markup.

Nothing here reads a request or the database; every text is escaped (markupsafe), so a study type
or a month can never become markup.
"""

from __future__ import annotations

import math

from markupsafe import Markup, escape

from ..vocabularies import STUDY_TYPE

# Okabe-Ito's colour-blind-safe palette, one fixed colour per study type (vocabulary order), so a type
# keeps its colour whichever types a search leaves.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
           "#999999"]
TYPE_COLOURS = dict(zip(STUDY_TYPE, PALETTE, strict=False))
MONTH_NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
# Shading of the matrix: 0 (none) to 5 (the largest count), each with a text colour of contrast >= 4.5.
SHADES = [("#ffffff", "#757575"), ("#eff3ff", "#1b1b1b"), ("#c6dbef", "#1b1b1b"),
          ("#6baed6", "#1b1b1b"), ("#2171b5", "#ffffff"), ("#08306b", "#ffffff")]


def colour_of(study_type: str) -> str:
    return TYPE_COLOURS.get(study_type, "#777777")


def month_label(month: str) -> str:
    """`2020-03` as `2020 Mar` (the register's way of writing a date)."""
    year, number = month.split("-")
    return f"{year} {MONTH_NAMES[int(number) - 1]}"


def nice_ticks(top: int, count: int = 5) -> list[int]:
    """Round tick values from 0 to at least ``top`` (1, 2 or 5 times a power of ten apart)."""
    if top <= 0:
        return [0, 1]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    step = max(1, int(step))
    return list(range(0, top + step if top % step else top + 1, step))


def _plural(count: int, word: str = "study", words: str = "studies") -> str:
    return f"{count:,} {word if count == 1 else words}"


def month_chart(by_month: dict, *, width: int = 960, height: int = 340) -> Markup:
    """A stacked bar chart of studies per month of registration, a bar per month, a segment per study
    type: y axis with ticks, x axis with month labels, a legend; each bar an image with an accessible
    name (its month and counts) and each segment a <title> tooltip."""
    months, types = by_month["months"], by_month["types"]
    if not months:
        return Markup("")
    left, right, top, bottom = 56, 12, 44, 64
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(m["counts"].values()) for m in months]
    ticks = nice_ticks(max(totals))
    scale = plot_h / ticks[-1]
    band = plot_w / len(months)
    bar_w = max(1.0, band * 0.8)
    out = [f'<svg class="month-chart" viewBox="0 0 {width} {height}" width="100%" role="group" '
           f'aria-labelledby="month-chart-title" xmlns="http://www.w3.org/2000/svg">',
           '<title id="month-chart-title">Studies by month of registration and study type</title>']
    # Legend, in the order of the stacks (bottom first).
    x = left
    out.append('<g class="legend" aria-hidden="true">')
    for study_type in types:
        out.append(f'<rect x="{x}" y="8" width="14" height="14" fill="{colour_of(study_type)}"/>'
                   f'<text x="{x + 20}" y="20">{escape(study_type)}</text>')
        x += 34 + 8 * len(study_type)
    out.append("</g>")
    # Y axis: grid lines and tick labels.
    out.append('<g class="axis y-axis" aria-hidden="true">')
    for tick in ticks:
        y = top + plot_h - tick * scale
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
                   f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{tick:,}</text>')
    out.append(f'<text class="axis-title" transform="translate(14 {top + plot_h / 2:.0f}) rotate(-90)" '
               f'text-anchor="middle">Studies</text></g>')
    # Bars.
    out.append('<g class="bars">')
    for index, (month, total) in enumerate(zip(months, totals, strict=True)):
        label = month_label(month["month"])
        parts = ", ".join(f"{t} {month['counts'][t]:,}" for t in types if month["counts"][t])
        name = f"{label}: {_plural(total)}" + (f" ({parts})" if parts else "")
        x = left + index * band + (band - bar_w) / 2
        out.append(f'<g class="bar" role="img" aria-label="{escape(name)}"><title>{escape(name)}</title>')
        y = top + plot_h
        for study_type in types:
            count = month["counts"][study_type]
            if not count:
                continue
            h = count * scale
            y -= h
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                       f'fill="{colour_of(study_type)}"><title>{escape(label)}, {escape(study_type)}: '
                       f'{_plural(count)} of {total:,}</title></rect>')
        out.append("</g>")
    out.append("</g>")
    # X axis: a label every `every` months, the year under the first of each year.
    every = max(1, math.ceil(len(months) / 16))
    out.append(f'<g class="axis x-axis" aria-hidden="true"><line x1="{left}" x2="{width - right}" '
               f'y1="{top + plot_h}" y2="{top + plot_h}"/>')
    shown_year = None
    for index, month in enumerate(months):
        if index % every:
            continue
        x = left + index * band + band / 2
        year, number = month["month"].split("-")
        out.append(f'<text x="{x:.1f}" y="{top + plot_h + 18}" text-anchor="middle">'
                   f'{MONTH_NAMES[int(number) - 1]}</text>')
        if year != shown_year:  # the year under the first label of each year
            shown_year = year
            out.append(f'<text x="{x:.1f}" y="{top + plot_h + 36}" text-anchor="middle">{year}</text>')
    out.append(f'<text class="axis-title" x="{left + plot_w / 2:.0f}" y="{height - 6}" '
               f'text-anchor="middle">Month of registration</text></g>')
    out.append("</svg>")
    return Markup("".join(out))


def shade(count: int, largest: int) -> tuple[str, str]:
    """The matrix cell's background and text colour for ``count``: 5 steps up to ``largest`` on a
    square-root scale, so that a few studies still show beside a crowded cell."""
    if count <= 0 or largest <= 0:
        return SHADES[0]
    return SHADES[min(5, max(1, math.ceil(5 * math.sqrt(count / largest))))]


def breakable(text: str) -> Markup:
    """``text`` escaped, with a line-break opportunity after each `/` (`Parallel/Crossover`)."""
    return Markup(str(escape(text)).replace("/", "/<wbr>"))
