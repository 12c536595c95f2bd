"""docs/make_plots.py: the documentation's plots come out as well-formed, deterministic SVG
with the series the pages describe."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from lbkit.subsetting import Ringsteady

DOCS = Path(__file__).resolve().parent.parent / "docs"
SVG = "{http://www.w3.org/2000/svg}"


def load_make_plots() -> ModuleType:
    """docs/make_plots.py as a module (docs/ is not a package)."""
    name = "lbkit_docs_make_plots"
    spec = importlib.util.spec_from_file_location(name, DOCS / "make_plots.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


make_plots = load_make_plots()
LABELS = [make_plots.FORWARDING, make_plots.MAGLEV_SAME_SIZE, make_plots.MAGLEV_DEFAULT]
SUBSETTING_LABELS = list(make_plots.SUBSETTING_LABELS.values())
#: Small subsetting plots, for tests that write every plot.
SMALL: dict[str, Any] = {
    "backend_counts": (8, 12, 16),
    "subsetting_frontends": 24,
    "subset_sizes": (3,),
}


def series_of(path: Path) -> dict[str, list[list[tuple[float, float]]]]:
    """Each series' points (in SVG coordinates), one list per panel, by label."""
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    found: dict[str, list[list[tuple[float, float]]]] = {}
    for line in root.iter(f"{SVG}polyline"):
        if line.get("class") != "series":
            continue
        points = [
            (float(x), float(y))
            for x, y in (pair.split(",") for pair in (line.get("points") or "").split())
        ]
        found.setdefault(line.get("data-label", ""), []).append(points)
    return found


def test_disruption_plot_is_well_formed(impl: Any, tmp_path: Path) -> None:
    """The disruption plot parses as SVG and has each series in both panels, one point per
    server count, with the forwarding table flat at zero and Maglev above it."""
    path, *_ = make_plots.write_plots(
        tmp_path / "out", server_counts=(2, 3, 5), maglev_size=257, **SMALL
    )
    assert path == tmp_path / "out" / "forwarding-disruption.svg"
    root = ET.parse(path).getroot()
    assert root.findtext(f"{SVG}title") == (
        "Removing one of N servers: forwarding table and Maglev"
    )
    assert [group.get("id") for group in root.findall(f"{SVG}g")] == [
        "panel-1",
        "panel-2",
        "legend",
    ]
    legend = root.find(f"{SVG}g[@id='legend']")
    assert legend is not None
    assert [text.text for text in legend.iter(f"{SVG}text")] == LABELS
    found = series_of(path)
    assert sorted(found) == sorted(LABELS)
    for panels in found.values():
        assert len(panels) == 2
        assert all(len(points) == 3 for points in panels)
    # SVG's y grows downwards: zero is the largest y of a panel.
    for panel in found[make_plots.FORWARDING]:
        assert len({y for _, y in panel}) == 1
    moved, broken = found[make_plots.MAGLEV_DEFAULT]
    forwarding_moved, forwarding_broken = found[make_plots.FORWARDING]
    assert all(y < forwarding_broken[0][1] for _, y in broken)
    assert any(y < forwarding_moved[0][1] for _, y in moved)


def test_disruption_numbers(impl: Any) -> None:
    """The measurements behind the plot: a forwarding table moves only the removed server's
    buckets and breaks nothing; Maglev breaks every flow it moves."""
    moved, broken = make_plots.disruption_panels((2, 4), maglev_size=257)
    by_label = {series.label: series.points for series in broken.series}
    assert by_label[make_plots.FORWARDING] == ((2, 0.0), (4, 0.0))
    assert {series.label: series.points for series in moved.series}[make_plots.FORWARDING] == (
        (2, 0.0),
        (4, 0.0),
    )
    # Removing one of two servers breaks its half of the flows; of four, at least a quarter.
    assert by_label[make_plots.MAGLEV_DEFAULT][0] == (2, pytest.approx(50.0, abs=0.5))
    assert by_label[make_plots.MAGLEV_DEFAULT][1][1] >= 24.5


def test_plots_are_deterministic(impl: Any, tmp_path: Path) -> None:
    """Two runs write the same bytes."""
    options: dict[str, Any] = {"server_counts": (2, 3), "maglev_size": 127, **SMALL}
    first = make_plots.write_plots(tmp_path / "a", **options)
    second = make_plots.write_plots(tmp_path / "b", **options)
    assert [path.name for path in first] == [path.name for path in second]
    assert [path.read_bytes() for path in first] == [path.read_bytes() for path in second]


def test_ticks_are_round_and_cover_the_range() -> None:
    """Axis ticks are 1, 2, 2.5 or 5 times a power of ten apart and reach past the maximum."""
    assert make_plots._ticks(0.0, 3.0) == [0.0, 1.0, 2.0, 3.0]
    assert make_plots._ticks(0.0, 47.0) == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    assert make_plots._ticks(0.0, 0.36) == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert make_plots._ticks(0.0, 0.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


def test_the_checked_in_plot_matches_the_script() -> None:
    """docs/generated holds the plot the pages include, with the script's current series."""
    path = DOCS / "generated" / make_plots.DISRUPTION_FILE
    found = series_of(path)
    assert sorted(found) == sorted(LABELS)
    assert all(len(panels) == 2 for panels in found.values())
    assert all(len(points) == len(make_plots.SERVER_COUNTS) for points in found[LABELS[0]])


def test_subsetting_plots_are_well_formed(impl: Any, tmp_path: Path) -> None:
    """The balance and churn plots parse as SVG, with one panel per subset size and one series
    per algorithm (plus the least possible peak in the balance plot), a point per backend
    count."""
    paths = make_plots.write_plots(
        tmp_path, server_counts=(2, 3), maglev_size=127, **{**SMALL, "subset_sizes": (3, 4)}
    )
    assert [path.name for path in paths] == [
        "forwarding-disruption.svg",
        "subsetting-ring.svg",
        "subsetting-balance.svg",
        "subsetting-churn.svg",
    ]
    balance, churn = paths[2], paths[3]
    for path, labels in (
        (balance, [make_plots.LEAST_PEAK, *SUBSETTING_LABELS]),
        (churn, SUBSETTING_LABELS),
    ):
        root = ET.parse(path).getroot()
        assert [group.get("id") for group in root.findall(f"{SVG}g")] == [
            "panel-1",
            "panel-2",
            "legend",
        ]
        titles = [group.findtext(f"{SVG}text") for group in root.findall(f"{SVG}g")[:2]]
        assert all(title is not None and title.endswith(("size 3", "size 4")) for title in titles)
        legend = root.find(f"{SVG}g[@id='legend']")
        assert legend is not None
        assert [text.text for text in legend.iter(f"{SVG}text")] == labels
        found = series_of(path)
        assert sorted(found) == sorted(labels)
        for panels in found.values():
            assert sum(len(points) for points in panels) == 6  # 3 backend counts, 2 panels


def test_subsetting_numbers(impl: Any) -> None:
    """The measurements behind the subsetting plots: Ringsteady adds a backend with about its
    fair share of new connections and classic subsetting with many times that; no algorithm
    beats the least possible peak; a power of two backends balances the plain ring."""
    balance, churn = make_plots.subsetting_panels((16, 24), frontends=48, subset_sizes=(4,))
    (peaks,) = balance
    (created,) = churn
    peak = {series.label: series.points for series in peaks.series}
    relative = {series.label: series.points for series in created.series}
    labels = make_plots.SUBSETTING_LABELS
    least = peak[make_plots.LEAST_PEAK]
    assert least == ((16, 1.0), (24, 1.0))
    for label in labels.values():
        assert all(y >= floor for (_, y), (_, floor) in zip(peak[label], least, strict=True))
    assert peak[labels["ringsteady"]][0] == (16, 1.0)
    assert all(0.5 <= y <= 1.5 for _, y in relative[labels["ringsteady"]])
    assert all(y > 3 for _, y in relative[labels["classic"]])
    assert [x for x, _ in relative[labels["rendezvous"]]] == [16, 24]


def test_ring_picture(impl: Any) -> None:
    """The ring shows every backend once and each frontend's walk over exactly its Ringsteady
    subset."""
    root = ET.fromstring(make_plots.render_ring_svg(12, subset_size=4, frontends=(0, 3, 7)))
    assert root.tag == f"{SVG}svg"
    backends = [c.get("data-index") or "" for c in root.iter(f"{SVG}circle") if c.get("class")]
    assert sorted(backends, key=int) == [str(i) for i in range(12)]
    frontends = [rect.get("data-frontend") for rect in root.iter(f"{SVG}rect") if rect.get("class")]
    assert frontends == ["0", "3", "7"]
    ring = Ringsteady(range(12), subset_size=4, frontends=8)
    walks = {path.get("data-frontend"): path.get("data-subset") for path in root.iter(f"{SVG}path")}
    assert walks == {str(f): " ".join(map(str, ring.subset_for(f))) for f in (0, 3, 7)}


def test_log_axis() -> None:
    """A logarithmic axis spans powers of ten around the data, and a line breaks where a value
    cannot be shown on it."""
    assert make_plots._log_ticks(0.41, 138.0) == [0.1, 1.0, 10.0, 100.0, 1000.0]
    assert make_plots._log_ticks(1.0, 1.0) == [1.0, 10.0]
    with pytest.raises(ValueError, match="cannot show 0"):
        make_plots._log_ticks(0.0, 1.0)
    points = [(1.0, 2.0), (2.0, 0.0), (3.0, 3.0), (4.0, 4.0)]
    assert make_plots._segments(points, log=True) == [[(1.0, 2.0)], [(3.0, 3.0), (4.0, 4.0)]]
    assert make_plots._segments(points, log=False) == [points]


def test_the_checked_in_subsetting_plots_match_the_script() -> None:
    """docs/generated holds the subsetting plots the pages include, with the script's series
    over its backend counts."""
    for name, extra in (
        (make_plots.BALANCE_FILE, [make_plots.LEAST_PEAK]),
        (make_plots.CHURN_FILE, []),
    ):
        found = series_of(DOCS / "generated" / name)
        assert sorted(found) == sorted([*extra, *SUBSETTING_LABELS])
        ringsteady = found[make_plots.SUBSETTING_LABELS["ringsteady"]]
        assert [len(points) for points in ringsteady] == [len(make_plots.BACKEND_COUNTS)] * len(
            make_plots.SUBSET_SIZES
        )
    ring = ET.parse(DOCS / "generated" / make_plots.RING_FILE).getroot()
    assert len(list(ring.iter(f"{SVG}path"))) == 6


def test_command_line_refuses_extra_arguments() -> None:
    """`python docs/make_plots.py` takes at most an output directory; more is a usage error."""
    script = str(DOCS / "make_plots.py")
    wrong = subprocess.run(
        [sys.executable, script, "a", "b"], capture_output=True, text=True, check=False
    )
    assert wrong.returncode == 2
    assert wrong.stderr == "usage: python docs/make_plots.py [OUTPUT_DIR]\n"
