"""Generate the plots of the documentation as SVG files, with plain Python.

Run it from anywhere, after installing lbkit (``pip install .``)::

    python docs/make_plots.py              # writes docs/generated/forwarding-*.svg
    python docs/make_plots.py OUTPUT_DIR   # writes them somewhere else

The output is deterministic: the same lbkit gives the same bytes, so a regenerated plot shows up
in a diff only when what it measures changed. The charts are drawn here rather than with a
plotting library so that building the docs needs nothing beyond lbkit and Sphinx.

``forwarding-disruption.svg`` compares what removing one of N equally weighted servers does
to traffic in a forwarding table (:class:`lbkit.forwarding.TableBuilder`) and in Maglev tables
(:class:`lbkit.forwarding.maglev.MaglevTable`), averaged over every choice of the removed
server: the flows that move although their server stays, and the established connections
that break.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from lbkit.forwarding import TableBuilder
from lbkit.forwarding.maglev import DEFAULT_SIZE, MaglevTable

GENERATED = Path(__file__).resolve().parent / "generated"
DISRUPTION_FILE = "forwarding-disruption.svg"
SERVER_COUNTS = tuple(range(2, 33))

# Colours that stay apart for the common colour-vision deficiencies (Okabe and Ito), and a
# dash pattern per series, so the chart also reads in grey.
FORWARDING = "forwarding table (TableBuilder)"
MAGLEV_SAME_SIZE = "Maglev, as many entries as the forwarding table"
MAGLEV_DEFAULT = f"Maglev, {DEFAULT_SIZE:,} entries (the default)"
STYLES = {
    FORWARDING: ("#0072B2", ""),
    MAGLEV_SAME_SIZE: ("#E69F00", "6 3"),
    MAGLEV_DEFAULT: ("#D55E00", "2 2"),
}


@dataclass(frozen=True)
class Series:
    """One line of a chart: a label and its (x, y) points."""

    label: str
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Panel:
    """One chart: a title, axis labels and its series."""

    title: str
    x_label: str
    y_label: str
    series: tuple[Series, ...]


def disruption_panels(
    server_counts: Sequence[int] = SERVER_COUNTS, *, maglev_size: int = DEFAULT_SIZE
) -> tuple[Panel, Panel]:
    """Measure the removal of one of ``n`` equally weighted servers, for each ``n``.

    Every server is removed in turn and the results averaged. Returns two panels, in percent of
    all flows: the new flows sent to a different server although their server stays (beyond
    the removed server's own share, which has to move), and the established connections that
    break.
    """
    moved: dict[str, list[tuple[float, float]]] = {label: [] for label in STYLES}
    broken: dict[str, list[tuple[float, float]]] = {label: [] for label in STYLES}
    for count in server_counts:
        servers = [f"server-{index}" for index in range(count)]
        weights: dict[str | int, float] = dict.fromkeys(servers, 1.0)
        buckets = TableBuilder(weights).bucket_count
        sums = {label: [0.0, 0.0] for label in STYLES}
        for removed in servers:
            rest = {server: 1.0 for server in servers if server != removed}
            builder = TableBuilder(weights)
            own = builder.table.bucket_counts()[removed]
            change = builder.remove(removed)
            sums[FORWARDING][0] += (change.moved - own) / change.slots
            sums[FORWARDING][1] += change.broken_fraction
            for label, size in ((MAGLEV_SAME_SIZE, buckets), (MAGLEV_DEFAULT, maglev_size)):
                before = MaglevTable(weights, size=size)
                change = before.diff(MaglevTable(rest, size=size))
                own = before.counts()[removed]
                sums[label][0] += (change.moved - own) / change.slots
                sums[label][1] += change.broken_fraction
        for label, (moved_sum, broken_sum) in sums.items():
            moved[label].append((count, 100 * moved_sum / count))
            broken[label].append((count, 100 * broken_sum / count))
    x_label = "servers before one is removed"
    return (
        Panel(
            "New flows moved although their server stays",
            x_label,
            "% of all flows",
            tuple(Series(label, tuple(points)) for label, points in moved.items()),
        ),
        Panel(
            "Established connections broken",
            x_label,
            "% of all flows",
            tuple(Series(label, tuple(points)) for label, points in broken.items()),
        ),
    )


# -- drawing ---------------------------------------------------------------------------------

PANEL_WIDTH = 420
PANEL_HEIGHT = 300
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 58, 16, 34, 48
LEGEND_ROW = 20


def render_svg(panels: Sequence[Panel], *, title: str) -> str:
    """The panels side by side, sharing one legend below them, as an SVG document."""
    labels: list[str] = []
    for panel in panels:
        labels.extend(series.label for series in panel.series if series.label not in labels)
    width = PANEL_WIDTH * len(panels)
    height = PANEL_HEIGHT + 16 + LEGEND_ROW * len(labels)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        # An opaque background, so the chart stays legible on a dark page.
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    for position, panel in enumerate(panels):
        parts.extend(_panel(panel, position * PANEL_WIDTH, position))
    parts.extend(_legend(labels, PANEL_HEIGHT + 8))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _panel(panel: Panel, left: float, position: int) -> list[str]:
    x_low, x_high = _extent(x for series in panel.series for x, _ in series.points)
    y_high = max((y for series in panel.series for _, y in series.points), default=0.0)
    # The x axis spans the data exactly: ticks at both ends and round ones between them, not
    # too close to the ends. The y axis starts at 0 and ends at the first round tick at or
    # above the largest value.
    round_ticks = _ticks(x_low, x_high)
    gap = (round_ticks[1] - round_ticks[0]) / 2
    x_ticks = [x_low]
    x_ticks += [tick for tick in round_ticks if x_low + gap <= tick <= x_high - gap]
    x_ticks += [x_high] if x_high > x_low else []
    y_ticks = _ticks(0.0, y_high)
    y_top = y_ticks[-1]
    plot_left, plot_right = left + MARGIN_LEFT, left + PANEL_WIDTH - MARGIN_RIGHT
    plot_top, plot_bottom = MARGIN_TOP, PANEL_HEIGHT - MARGIN_BOTTOM

    def x_of(value: float) -> float:
        span = x_high - x_low or 1.0
        return plot_left + (value - x_low) / span * (plot_right - plot_left)

    def y_of(value: float) -> float:
        return plot_bottom - value / y_top * (plot_bottom - plot_top)

    centre = (plot_left + plot_right) / 2
    parts = [
        f'<g id="panel-{position + 1}">',
        f'<text x="{_n(centre)}" y="20" text-anchor="middle" font-size="13" '
        f'font-weight="bold">{escape(panel.title)}</text>',
    ]
    for tick in y_ticks:
        y = _n(y_of(tick))
        parts.append(
            f'<line x1="{_n(plot_left)}" y1="{y}" x2="{_n(plot_right)}" y2="{y}" '
            'stroke="#dddddd" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{_n(plot_left - 6)}" y="{y}" text-anchor="end" '
            f'dominant-baseline="middle">{_label(tick)}</text>'
        )
    for tick in x_ticks:
        x = _n(x_of(tick))
        parts.append(
            f'<line x1="{x}" y1="{_n(plot_bottom)}" x2="{x}" y2="{_n(plot_bottom + 5)}" '
            'stroke="#333333" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{x}" y="{_n(plot_bottom + 18)}" text-anchor="middle">{_label(tick)}</text>'
        )
    # The axes themselves, over the grid.
    parts.append(
        f'<polyline points="{_n(plot_left)},{_n(plot_top)} {_n(plot_left)},{_n(plot_bottom)} '
        f'{_n(plot_right)},{_n(plot_bottom)}" fill="none" stroke="#333333" stroke-width="1"/>'
    )
    parts.append(
        f'<text x="{_n(centre)}" y="{_n(PANEL_HEIGHT - 10)}" text-anchor="middle">'
        f"{escape(panel.x_label)}</text>"
    )
    middle = _n((plot_top + plot_bottom) / 2)
    parts.append(
        f'<text x="{_n(left + 16)}" y="{middle}" text-anchor="middle" '
        f'transform="rotate(-90 {_n(left + 16)} {middle})">{escape(panel.y_label)}</text>'
    )
    for series in panel.series:
        colour, dashes = STYLES.get(series.label, ("#000000", ""))
        points = " ".join(f"{_n(x_of(x))},{_n(y_of(y))}" for x, y in series.points)
        dash = f' stroke-dasharray="{dashes}"' if dashes else ""
        parts.append(
            f'<polyline class="series" data-label="{escape(series.label)}" points="{points}" '
            f'fill="none" stroke="{colour}" stroke-width="2"{dash}/>'
        )
    parts.append("</g>")
    return parts


def _legend(labels: Sequence[str], top: float) -> list[str]:
    parts = ['<g id="legend">']
    for row, label in enumerate(labels):
        colour, dashes = STYLES.get(label, ("#000000", ""))
        y = top + LEGEND_ROW * (row + 0.5)
        dash = f' stroke-dasharray="{dashes}"' if dashes else ""
        parts.append(
            f'<line x1="{MARGIN_LEFT}" y1="{_n(y)}" x2="{MARGIN_LEFT + 36}" y2="{_n(y)}" '
            f'stroke="{colour}" stroke-width="2"{dash}/>'
        )
        parts.append(
            f'<text x="{MARGIN_LEFT + 44}" y="{_n(y)}" dominant-baseline="middle">'
            f"{escape(label)}</text>"
        )
    parts.append("</g>")
    return parts


def _extent(values: Iterable[float]) -> tuple[float, float]:
    numbers = sorted(values)
    if not numbers:
        return 0.0, 1.0
    return numbers[0], numbers[-1]


def _ticks(low: float, high: float, *, target: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten apart) covering low..high."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / target
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(f * power for f in (1.0, 2.0, 2.5, 5.0, 10.0) if f * power >= raw)
    first = math.floor(low / step + 1e-9) * step
    ticks = [first]
    while ticks[-1] < high - 1e-9:
        ticks.append(round(first + len(ticks) * step, 10))
    return ticks


def _label(value: float) -> str:
    return f"{value:g}"


def _n(value: float) -> str:
    """A coordinate with one decimal, without a trailing '.0' (stable, compact output)."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


# -- entry point -----------------------------------------------------------------------------


def write_plots(
    directory: Path,
    *,
    server_counts: Sequence[int] = SERVER_COUNTS,
    maglev_size: int = DEFAULT_SIZE,
) -> list[Path]:
    """Write every plot into ``directory`` (created if needed); returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    panels = disruption_panels(server_counts, maglev_size=maglev_size)
    path = directory / DISRUPTION_FILE
    svg = render_svg(panels, title="Removing one of N servers: forwarding table and Maglev")
    path.write_text(svg, encoding="utf-8")
    return [path]


def main(argv: Sequence[str]) -> int:
    if len(argv) > 1:
        print("usage: python docs/make_plots.py [OUTPUT_DIR]", file=sys.stderr)
        return 2
    directory = Path(argv[0]) if argv else GENERATED
    for path in write_plots(directory):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
