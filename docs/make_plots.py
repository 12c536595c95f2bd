"""Generate the plots of the documentation as SVG files, with plain Python.

Run it from anywhere, after installing lbkit (``pip install .``)::

    python docs/make_plots.py              # writes docs/generated/*.svg
    python docs/make_plots.py OUTPUT_DIR   # writes them somewhere else

The output is deterministic: the same lbkit gives the same bytes, so a regenerated plot shows up
in a diff only when what it measures changed. The charts are drawn here rather than with a
plotting library so that building the docs needs nothing beyond lbkit and Sphinx.

``forwarding-disruption.svg`` compares what removing one of N equally weighted servers does
to traffic in a forwarding table (:class:`lbkit.forwarding.TableBuilder`) and in Maglev tables
(:class:`lbkit.forwarding.maglev.MaglevTable`), averaged over every choice of the removed
server: the flows that move although their server stays, and the established connections
that break.

``subsetting-ring.svg`` draws a Ringsteady ring (:class:`lbkit.subsetting.Ringsteady`): the
backends at the Van der Corput positions of their stable indices, a few frontends, and the
arc each frontend walks to take its subset.

``subsetting-balance.svg`` and ``subsetting-churn.svg`` measure every algorithm of
:data:`lbkit.subsetting.ALGORITHMS` against the number of backends, for a fixed number of
frontends: the busiest backend's connections over the mean, and the connections created when
one backend is added, relative to the least possible (its fair share ``F * k / B``).
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
from lbkit.subsetting import (
    ALGORITHMS,
    Ringsteady,
    Subsetter,
    churn,
    connection_counts,
    van_der_corput,
)

GENERATED = Path(__file__).resolve().parent / "generated"
DISRUPTION_FILE = "forwarding-disruption.svg"
SERVER_COUNTS = tuple(range(2, 33))
RING_FILE = "subsetting-ring.svg"
BALANCE_FILE = "subsetting-balance.svg"
CHURN_FILE = "subsetting-churn.svg"
#: The subsetting plots: backend counts on the x axis, a fixed frontend count, and one panel
#: per subset size (a small one, where the plain ring is known to be uneven, and a usual one).
BACKEND_COUNTS = tuple(range(10, 151))
SUBSETTING_FRONTENDS = 300
SUBSET_SIZES = (3, 10)

# Colours that stay apart for the common colour-vision deficiencies (Okabe and Ito), and a
# dash pattern per series, so the chart also reads in grey.
FORWARDING = "forwarding table (TableBuilder)"
MAGLEV_SAME_SIZE = "Maglev, as many entries as the forwarding table"
MAGLEV_DEFAULT = f"Maglev, {DEFAULT_SIZE:,} entries (the default)"
DISRUPTION_LABELS = (FORWARDING, MAGLEV_SAME_SIZE, MAGLEV_DEFAULT)
STYLES = {
    FORWARDING: ("#0072B2", ""),
    MAGLEV_SAME_SIZE: ("#E69F00", "6 3"),
    MAGLEV_DEFAULT: ("#D55E00", "2 2"),
}
#: The subsetting algorithms' series labels, by their names in lbkit.subsetting.ALGORITHMS.
SUBSETTING_LABELS = {
    "ringsteady": "ringsteady (Ringsteady, backend scaling)",
    "ringsteady-rank": "ringsteady-rank (Ringsteady, rank scaling)",
    "classic": "classic (SRE book deterministic subsetting)",
    "rendezvous": "rendezvous (highest random weight)",
}
#: The reference line of the balance panels.
LEAST_PEAK = "the least possible: ceil(mean) / mean"
STYLES.update(
    {
        LEAST_PEAK: ("#999999", ""),
        SUBSETTING_LABELS["ringsteady"]: ("#0072B2", ""),
        SUBSETTING_LABELS["ringsteady-rank"]: ("#009E73", "6 3"),
        SUBSETTING_LABELS["classic"]: ("#D55E00", "2 2"),
        SUBSETTING_LABELS["rendezvous"]: ("#CC79A7", "8 3 2 3"),
    }
)


@dataclass(frozen=True)
class Series:
    """One line of a chart: a label and its (x, y) points."""

    label: str
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Panel:
    """One chart: a title, axis labels and its series.

    The y axis starts at ``y_floor`` and is linear, or logarithmic (powers of ten, which must
    enclose every value) when ``y_log`` is set.
    """

    title: str
    x_label: str
    y_label: str
    series: tuple[Series, ...]
    y_floor: float = 0.0
    y_log: bool = False


def disruption_panels(
    server_counts: Sequence[int] = SERVER_COUNTS, *, maglev_size: int = DEFAULT_SIZE
) -> tuple[Panel, Panel]:
    """Measure the removal of one of ``n`` equally weighted servers, for each ``n``.

    Every server is removed in turn and the results averaged. Returns two panels, in percent of
    all flows: the new flows sent to a different server although their server stays (beyond
    the removed server's own share, which has to move), and the established connections that
    break.
    """
    moved: dict[str, list[tuple[float, float]]] = {label: [] for label in DISRUPTION_LABELS}
    broken: dict[str, list[tuple[float, float]]] = {label: [] for label in DISRUPTION_LABELS}
    for count in server_counts:
        servers = [f"server-{index}" for index in range(count)]
        weights: dict[str | int, float] = dict.fromkeys(servers, 1.0)
        buckets = TableBuilder(weights).bucket_count
        sums = {label: [0.0, 0.0] for label in DISRUPTION_LABELS}
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


def subsetting_panels(
    backend_counts: Sequence[int] = BACKEND_COUNTS,
    *,
    frontends: int = SUBSETTING_FRONTENDS,
    subset_sizes: Sequence[int] = SUBSET_SIZES,
) -> tuple[tuple[Panel, ...], tuple[Panel, ...]]:
    """Measure every subsetting algorithm on ``0 .. n - 1`` backends for each ``n``.

    Each algorithm is built with its defaults (Ringsteady unshuffled, the baselines with seed
    0) for ``frontends`` frontends. Returns the balance panels (the busiest backend's
    connections over the mean ``frontends * k / n``), then the churn panels (the connections
    the frontends create when backend ``n`` is added, over its fair share
    ``frontends * k / (n + 1)``), one panel per subset size ``k``.
    """
    balance: list[Panel] = []
    churned: list[Panel] = []
    x_label = f"backends ({frontends} frontends)"
    for size in subset_sizes:
        peaks: dict[str, list[tuple[float, float]]] = {name: [] for name in ALGORITHMS}
        least: list[tuple[float, float]] = []
        created: dict[str, list[tuple[float, float]]] = {name: [] for name in ALGORITHMS}
        for count in backend_counts:
            if count < size:
                continue
            backends = range(count)
            # Connections are whole: some backend has at least ceil(mean) of them.
            least.append((count, -(-frontends * size // count) * count / (frontends * size)))
            for name in ALGORITHMS:
                algorithm = _subsetter(name, backends, size, frontends)
                before = algorithm.subsets()
                loads = connection_counts(before, backends).values()
                peaks[name].append((count, max(loads) * count / (frontends * size)))
                algorithm.add_backend(count)
                change = churn(before, algorithm.subsets(), ideal=frontends * size / (count + 1))
                created[name].append((count, change.relative))
        balance.append(
            Panel(
                f"Busiest backend, subset size {size}",
                x_label,
                "connections, max / mean",
                (
                    # The reference first, so that the algorithms are drawn over it.
                    Series(LEAST_PEAK, tuple(least)),
                    *(Series(SUBSETTING_LABELS[name], tuple(peaks[name])) for name in ALGORITHMS),
                ),
                y_floor=1.0,
            )
        )
        churned.append(
            Panel(
                f"One backend added, subset size {size}",
                x_label,
                "connections created / fair share (log)",
                tuple(Series(SUBSETTING_LABELS[name], tuple(created[name])) for name in ALGORITHMS),
                y_log=True,
            )
        )
    return tuple(balance), tuple(churned)


def _subsetter(name: str, backends: range, size: int, frontends: int) -> Subsetter:
    """An algorithm with its defaults: Ringsteady unshuffled, the baselines with seed 0."""
    if name == "ringsteady":
        return Ringsteady(backends, subset_size=size, frontends=frontends)
    if name == "ringsteady-rank":
        return Ringsteady(backends, subset_size=size, frontends=frontends, scaling="rank")
    return ALGORITHMS[name](backends, subset_size=size, frontends=frontends, seed=0)


def render_ring_svg(
    backends: int = 10, *, subset_size: int = 3, frontends: Sequence[int] = (0, 1, 2, 3, 4, 5)
) -> str:
    """A Ringsteady ring as an SVG document: backends ``0 .. backends - 1`` at the Van der
    Corput positions of their stable indices, the given frontends at theirs, and each
    frontend's walk around the ring to the last backend of its subset."""
    count = max(frontends) + 1
    ring = Ringsteady(range(backends), subset_size=subset_size, frontends=count)
    size, centre, radius = 400, 200.0, 150.0
    colours = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")

    def point(position: float, distance: float) -> tuple[float, float]:
        # Position 0 at the top, growing clockwise (SVG's y grows downwards).
        angle = 2 * math.pi * position
        return centre + distance * math.sin(angle), centre - distance * math.cos(angle)

    title = (
        f"A Ringsteady ring: {backends} backends, subset size {subset_size}, "
        f"the walks of frontends {', '.join(map(str, frontends))}"
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
        f'viewBox="0 0 {size} {size}" role="img" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{size}" height="{size}" fill="#ffffff"/>',
        f'<circle cx="{_n(centre)}" cy="{_n(centre)}" r="{_n(radius)}" fill="none" '
        'stroke="#999999" stroke-width="1.5"/>',
    ]
    parts.append('<g id="walks">')
    for number, frontend in enumerate(frontends):
        colour = colours[number % len(colours)]
        subset = ring.subset_for(frontend)
        start = van_der_corput(frontend)
        end = van_der_corput(ring.index_of(subset[-1]))
        span = (end - start) % 1.0
        distance = radius - 20 - 12 * number
        x1, y1 = point(start, distance)
        x2, y2 = point(end, distance)
        large = 1 if span > 0.5 else 0
        parts.append(
            f'<path class="walk" data-frontend="{frontend}" '
            f'data-subset="{" ".join(map(str, subset))}" '
            f'd="M {_n(x1)} {_n(y1)} A {_n(distance)} {_n(distance)} 0 {large} 1 '
            f'{_n(x2)} {_n(y2)}" fill="none" stroke="{colour}" stroke-width="3" '
            'stroke-linecap="round"/>'
        )
        for backend in subset:
            x, y = point(van_der_corput(ring.index_of(backend)), distance)
            parts.append(f'<circle cx="{_n(x)}" cy="{_n(y)}" r="3.5" fill="{colour}"/>')
    parts.append("</g>")
    parts.append('<g id="backends">')
    for backend in ring.ring:
        position = van_der_corput(ring.index_of(backend))
        x, y = point(position, radius)
        parts.append(
            f'<circle class="backend" data-index="{backend}" cx="{_n(x)}" cy="{_n(y)}" r="11" '
            'fill="#ffffff" stroke="#333333" stroke-width="1.5"/>'
        )
        parts.append(
            f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="middle" dominant-baseline="central">'
            f"{backend}</text>"
        )
    parts.append("</g>")
    parts.append('<g id="frontends">')
    for number, frontend in enumerate(frontends):
        colour = colours[number % len(colours)]
        x, y = point(van_der_corput(frontend), radius + 32)
        parts.append(
            f'<rect class="frontend" data-frontend="{frontend}" x="{_n(x - 14)}" '
            f'y="{_n(y - 10)}" width="28" height="20" rx="3" fill="{colour}"/>'
        )
        parts.append(
            f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="middle" dominant-baseline="central" '
            f'fill="#ffffff">f{frontend}</text>'
        )
    parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


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
    y_values = [y for series in panel.series for _, y in series.points]
    y_high = max(y_values, default=0.0)
    # The x axis spans the data exactly: ticks at both ends and round ones between them, not
    # too close to the ends. The y axis starts at 0 and ends at the first round tick at or
    # above the largest value.
    round_ticks = _ticks(x_low, x_high)
    gap = (round_ticks[1] - round_ticks[0]) / 2
    x_ticks = [x_low]
    x_ticks += [tick for tick in round_ticks if x_low + gap <= tick <= x_high - gap]
    x_ticks += [x_high] if x_high > x_low else []
    if panel.y_log:
        shown = [y for y in y_values if y > 0]
        y_ticks = _log_ticks(min(shown, default=1.0), max(y_high, 1.0))
    else:
        y_ticks = _ticks(panel.y_floor, max(y_high, panel.y_floor))
    y_bottom, y_top = y_ticks[0], y_ticks[-1]
    plot_left, plot_right = left + MARGIN_LEFT, left + PANEL_WIDTH - MARGIN_RIGHT
    plot_top, plot_bottom = MARGIN_TOP, PANEL_HEIGHT - MARGIN_BOTTOM

    def x_of(value: float) -> float:
        span = x_high - x_low or 1.0
        return plot_left + (value - x_low) / span * (plot_right - plot_left)

    def y_of(value: float) -> float:
        if panel.y_log:
            share = math.log10(value / y_bottom) / math.log10(y_top / y_bottom)
        else:
            share = (value - y_bottom) / (y_top - y_bottom)
        return plot_bottom - share * (plot_bottom - plot_top)

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
        dash = f' stroke-dasharray="{dashes}"' if dashes else ""
        for segment in _segments(series.points, log=panel.y_log):
            points = " ".join(f"{_n(x_of(x))},{_n(y_of(y))}" for x, y in segment)
            parts.append(
                f'<polyline class="series" data-label="{escape(series.label)}" '
                f'points="{points}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>'
            )
    parts.append("</g>")
    return parts


def _segments(
    points: Sequence[tuple[float, float]], *, log: bool
) -> list[list[tuple[float, float]]]:
    """The runs of points a line joins: all of them, or on a logarithmic axis the runs
    between values <= 0, which it cannot show (the line has a gap there)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if log and y <= 0:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, y))
    return [run for run in runs if run]


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


def _log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten from the one at or below ``low`` to the one at or above ``high``."""
    if low <= 0:
        raise ValueError(f"a logarithmic axis cannot show {low}")
    first = math.floor(math.log10(low) + 1e-9)
    last = max(math.ceil(math.log10(high) - 1e-9), first + 1)
    return [10.0**power for power in range(first, last + 1)]


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
    backend_counts: Sequence[int] = BACKEND_COUNTS,
    subsetting_frontends: int = SUBSETTING_FRONTENDS,
    subset_sizes: Sequence[int] = SUBSET_SIZES,
) -> list[Path]:
    """Write every plot into ``directory`` (created if needed); returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    panels = disruption_panels(server_counts, maglev_size=maglev_size)
    documents = {
        DISRUPTION_FILE: render_svg(
            panels, title="Removing one of N servers: forwarding table and Maglev"
        ),
        RING_FILE: render_ring_svg(),
    }
    balance, churned = subsetting_panels(
        backend_counts, frontends=subsetting_frontends, subset_sizes=subset_sizes
    )
    documents[BALANCE_FILE] = render_svg(
        balance, title="Subsetting: the busiest backend's connections over the mean"
    )
    documents[CHURN_FILE] = render_svg(
        churned, title="Subsetting: connections created when one backend is added"
    )
    paths = []
    for name, svg in documents.items():
        path = directory / name
        path.write_text(svg, encoding="utf-8")
        paths.append(path)
    return paths


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
