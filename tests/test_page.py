"""The leaderboard page against known answers: the scoreboard's h50 cells, the Wilson bands,
the learning curves' data, and the edge cases (no runs, a plugin, one horizon)."""

from __future__ import annotations

import html
import importlib.util
import json
import math
import re
from collections import namedtuple
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from zoo.bench import labels, plots, render
from zoo.bench.curves import CURVES_CSV, append_curve
from zoo.bench.leaderboard import RUNS_COLUMNS, aggregate, render_html, write_leaderboard

ROOT = Path(__file__).resolve().parents[1]


def run(arch="rnn", task="delayed_copy", horizon=10, flossing="none", seed=0, solved=False, **kw):
    row = dict.fromkeys(RUNS_COLUMNS, np.nan)
    row.update(run_id=f"{arch}-{task}-{horizon}-{flossing}-{seed}", suite="t", arch=arch, task=task,
               horizon=horizon, flossing=flossing, seed=seed, status="solved" if solved else "unsolved",
               success=int(solved), metric_name="accuracy", metric=1.0 if solved else 0.5, note="")
    row.update(kw)
    return row


def counts_runs(arch, flossing, counts, n, task="delayed_copy"):
    """`n` seeds per horizon, the first `counts[h]` of them solved."""
    return [run(arch=arch, task=task, horizon=h, flossing=flossing, seed=s, solved=s < k)
            for h, k in counts.items() for s in range(n)]


def write_runs(folder: Path, rows) -> None:
    pd.DataFrame(rows, columns=RUNS_COLUMNS).to_csv(folder / "runs.csv", index=False)


class _Tables(HTMLParser):
    """Each table's rows by id: per cell its attributes and the text of each of its spans."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[dict]]] = {}
        self._rows = None
        self._cell = None
        self._span = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._rows = self.tables.setdefault(attrs.get("id", ""), [])
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        elif tag in ("td", "th") and self._rows is not None:
            self._cell = {"tag": tag, **attrs, "text": "", "spans": {}}
            self._rows[-1].append(self._cell)
        elif tag == "span" and self._cell is not None:
            self._span = attrs.get("class", "")
            self._cell["spans"][self._span] = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self._rows = None
        elif tag in ("td", "th"):
            self._cell = None
        elif tag == "span":
            self._span = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
            if self._span is not None:
                self._cell["spans"][self._span] += data


def scoreboard_cells(page: str) -> dict[tuple[str, str, str], dict]:
    """(arch, task, flossing) -> its scoreboard cell, read through the two header rows."""
    parser = _Tables()
    parser.feed(page)
    top, sub, *body = parser.tables["scoreboard"]
    columns = []  # (task, mode) per body column after the architecture's
    groups = iter([(c["text"].split(c["spans"].get("unit", "\0"))[0], int(c["colspan"])) for c in top[1:]])
    modes = iter(c["text"] for c in sub)
    for task, span in groups:
        columns += [(task, next(modes)) for _ in range(span)]
    assert all(int(c["data-col"]) == i + 1 for i, c in enumerate(sub))  # a header sorts its own column
    return {(row[0]["text"], task, mode): cell for row in body for (task, mode), cell in zip(columns, row[1:])}


# -------------------------------------------------------------------------------- scoreboard

# Horizons equally spaced in log: success 4/4, 4/4, 0/4, 0/4 is symmetric about the middle of
# the grid, so the (Firth) logistic fit crosses 0.5 exactly there: sqrt(20 * 40).
SYMMETRIC = {10: 4, 20: 4, 40: 0, 80: 0}
SYMMETRIC_H50 = math.sqrt(20 * 40)


def scoreboard_runs():
    rows = counts_runs("rnn", "none", SYMMETRIC, 4)
    rows += counts_runs("rnn", "pre", {10: 4, 20: 4, 40: 4, 80: 4}, 4)  # bridged everywhere: "> 80"
    rows += counts_runs("my_plugin", "none", {10: 0, 20: 0, 40: 0, 80: 0}, 4)  # nowhere: "< 10"
    rows += counts_runs("my_plugin", "pre", SYMMETRIC, 4)
    rows += counts_runs("rnn", "none", {25: 3}, 4, task="adding")  # one horizon: no fit
    return rows


def test_scoreboard_cells_show_h50_and_its_interval_from_horizons_csv(tmp_path):
    write_runs(tmp_path, scoreboard_runs())
    _, html_path = write_leaderboard(tmp_path)
    page = html_path.read_text()
    assert page.index('id="scoreboard"') < page.index('<section class="plots">') < page.index('id="board"')
    cells = scoreboard_cells(page)
    # Every architecture has a cell under each (task, mode) that ran, the modes side by side under
    # each task; adding ran without flossing only, so it has no "pre" column at all.
    assert set(cells) == {(a, t, m) for a in ("my_plugin", "rnn")
                          for t, m in (("adding", "none"), ("delayed_copy", "none"), ("delayed_copy", "pre"))}
    breaks = pd.read_csv(tmp_path / "horizons.csv").set_index(["arch", "task", "flossing"])

    crossing = cells[("rnn", "delayed_copy", "none")]
    assert crossing["spans"]["v"] == f"{SYMMETRIC_H50:.3g}" == "28.3"
    assert breaks.loc[("rnn", "delayed_copy", "none"), "h50"] == pytest.approx(SYMMETRIC_H50, rel=1e-6)
    low, high = breaks.loc[("rnn", "delayed_copy", "none"), ["h50_low", "h50_high"]]
    assert crossing["spans"]["ci"] == f"{labels.fmt_h(low)}\u2013{labels.fmt_h(high)}"
    assert float(crossing["data-value"]) == pytest.approx(SYMMETRIC_H50)
    assert "crossing" in crossing["class"] and "bracketed: yes" in crossing["title"]
    assert cells[("my_plugin", "delayed_copy", "pre")]["spans"]["v"] == "28.3"

    beyond = cells[("rnn", "delayed_copy", "pre")]
    assert math.isinf(breaks.loc[("rnn", "delayed_copy", "pre"), "h50"])
    assert beyond["spans"]["v"] == "> 80" and "ci" not in beyond["spans"]  # every resample: beyond too
    assert "beyond" in beyond["class"]
    below = cells[("my_plugin", "delayed_copy", "none")]
    assert breaks.loc[("my_plugin", "delayed_copy", "none"), "h50"] == 0
    assert below["spans"]["v"] == "< 10" and "below" in below["class"]
    assert (cells[("rnn", "adding", "none")]["spans"]["v"] == "no fit"
            and "nofit" in cells[("rnn", "adding", "none")]["class"])
    assert "one horizon > 0 only" in cells[("rnn", "adding", "none")]["title"]
    assert cells[("my_plugin", "adding", "none")]["text"] == "not run"
    # The longest-horizon table shares its mode columns across tasks: under "pre", adding (never
    # asked for pre) reads "\u2013", not "not run" as an architecture missing a mode that others ran.
    parser = _Tables()
    parser.feed(page)
    header, *body = parser.tables["longest"]
    names = [c["text"] for c in header]
    longest = {(row[0]["text"], row[1]["text"]): {n: c["text"] for n, c in zip(names[2:], row[2:])} for row in body}
    assert longest[("adding", "rnn")] == {"flossing: none": "25", "flossing: pre": "\u2013"}
    assert longest[("delayed_copy", "my_plugin")]["flossing: none"] == "none bridged"
    # The caption says what the off-grid texts mean.
    caption = html.unescape(page.split('id="scoreboard"><caption>')[1].split("</caption>")[0])
    assert "\u201c> H\u201d: every horizon of the grid, up to H, was bridged" in caption
    assert "\u201c< H\u201d: none was" in caption


@pytest.mark.parametrize("args, expected", [
    ((math.inf, 30.0, math.inf, False, 5, 80), ("> 80", "30\u2013\u221e")),
    ((math.inf, math.inf, math.inf, False, 5, 80), ("> 80", "")),
    ((0.0, 0.0, 0.0, False, 5, 80), ("< 5", "")),
    ((0.0, 0.0, 7.5, False, 5, 80), ("< 5", "0\u20137.5")),
    ((42.42, 31.0, 123.4, True, 5, 80), ("42.4", "31\u2013123")),
    ((42.42, 31.0, 60.0, False, 5, 80), ("42.4*", "31\u201360")),
    ((math.nan, math.nan, math.nan, False, 5, 80), ("no fit", "")),
    ((6.25, 3.125, 12.5, True, 3.125, 100), ("6.25", "3.12\u201312.5")),
])  # fmt: skip
def test_h50_text(args, expected):
    assert labels.h50_text(*args) == expected


def test_off_grid_cells_sort_just_beyond_the_grid_end_they_passed():
    row = namedtuple("Row", "ran h50 h_min h_max")(True, math.inf, 10.0, 80.0)
    assert 80 < float(render._h50_sort_key(row)) < 80.001
    below = row._replace(h50=0.0)
    assert 9.999 < float(render._h50_sort_key(below)) < 10
    assert render._h50_sort_key(row._replace(h50=math.nan)) == ""


# -------------------------------------------------------------------------------- bands


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval, from its closed form (Wilson 1927), not from the code under test."""
    z = scipy.stats.norm.ppf(0.5 + confidence / 2)
    centre = (k + z * z / 2) / (n + z * z)
    half = z / (n + z * z) * math.sqrt(k * (n - k) / n + z * z / 4)
    return centre - half, centre + half


def band_points(page: str, arch: str, task: str, mode: str) -> list[tuple[float, float]]:
    panel = page.split(f'<svg class="panel" data-task="{task}" data-arch="{arch}"')[1].split("</svg>")[0]
    series = panel.split(f'<g class="series" data-flossing="{mode}">')[1].split("</g>\n</g>")[0]
    points = re.search(r'<polygon class="band" points="([^"]+)"', series).group(1)
    return [tuple(map(float, p.split(","))) for p in points.split()]


def to_rate(y: float) -> float:
    """Pixel row -> rate through the panel's own two reference rows."""
    y0, y1 = plots.rate_to_y(0.0), plots.rate_to_y(1.0)
    return (y - y0) / (y1 - y0)


def test_band_spans_exactly_the_wilson_bounds_of_each_horizon():
    counts, n = {10: 5, 20: 3, 40: 1, 80: 0}, 5
    runs = pd.DataFrame(counts_runs("gru", "pre", counts, n) + counts_runs("gru", "none", {10: 2, 20: 0}, 4))
    page = render_html(runs, aggregate(runs), "bands")
    pts = band_points(page, "gru", "delayed_copy", "pre")
    assert len(pts) == 2 * len(counts)
    upper, lower = pts[: len(counts)], pts[len(counts):][::-1]
    assert [x for x, _ in upper] == sorted(x for x, _ in upper) == [x for x, _ in lower]  # horizons in order
    for (k, (_, y_hi), (_, y_lo)) in zip(counts.values(), upper, lower):
        low, high = wilson(k, n)
        assert to_rate(y_hi) == pytest.approx(high, abs=2e-4)  # pixels written to 0.01
        assert to_rate(y_lo) == pytest.approx(low, abs=2e-4)
    # The other mode's band holds its own counts.
    other = band_points(page, "gru", "delayed_copy", "none")
    assert to_rate(other[0][1]) == pytest.approx(wilson(2, 4)[1], abs=2e-4)
    assert to_rate(other[-1][1]) == pytest.approx(wilson(2, 4)[0], abs=2e-4)


def test_one_horizon_only_draws_an_interval_bar_and_no_fit():
    runs = pd.DataFrame(counts_runs("lstm", "none", {40: 2}, 5))
    page = render_html(runs, aggregate(runs), "one horizon")
    pts = band_points(page, "lstm", "delayed_copy", "none")
    assert len(pts) == 4 and pts[0][0] < pts[1][0]
    low, high = wilson(2, 5)
    assert [to_rate(y) for _, y in pts] == pytest.approx([high, high, low, low], abs=2e-4)
    assert scoreboard_cells(page)[("lstm", "delayed_copy", "none")]["spans"]["v"] == "no fit"


# -------------------------------------------------------------------------------- curves


def curves_of(page: str):
    text = page.split('<script type="application/json" id="curves-data">')[1].split("</script>")[0]
    return json.loads(text)


def test_curves_json_holds_each_runs_curve_by_configuration(tmp_path):
    rows = [run(arch="gru", horizon=10, seed=1, solved=True), run(arch="gru", horizon=10, seed=0),
            run(arch="gru", horizon=20, seed=0, flossing="pre", status="diverged")]
    write_runs(tmp_path, rows)
    path = tmp_path / CURVES_CSV
    append_curve(path, "gru-delayed_copy-10-none-1", [(100, 0.5, 0.25), (200, 0.25, 0.75), (300, 0.125, 1.0)])
    append_curve(path, "gru-delayed_copy-10-none-0", [(100, 0.75, 0.5), (250, 0.625, 0.5)])
    append_curve(path, "gru-delayed_copy-20-pre-0", [(50, 2.5, 0.5), (60, math.nan, math.nan)])
    append_curve(path, "tuning-run-not-in-runs-csv", [(100, 9.0, 9.0)])
    _, html_path = write_leaderboard(tmp_path)
    page = html_path.read_text()
    data = curves_of(page)
    board = pd.read_csv(tmp_path / "leaderboard.csv", keep_default_na=False, na_values=[""])
    row = {(r.horizon, r.flossing): str(i) for i, r in enumerate(board.itertuples())}
    ten = data["cfg"][row[(10, "none")]]
    assert ten["label"] == ["gru", "delayed_copy", "10", "none"] and ten["metric"] == "accuracy"
    statuses = data["status"]
    # Runs by seed: [seed, status, steps (evenly spaced: [first, stride]), validation metric, training loss].
    assert ten["runs"] == [
        [0, statuses.index("unsolved"), [100, 250], [0.5, 0.5], [0.75, 0.625]],
        [1, statuses.index("solved"), [100, 100], [0.25, 0.75, 1.0], [0.5, 0.25, 0.125]],
    ]
    diverged = data["cfg"][row[(20, "pre")]]["runs"]
    assert diverged == [[0, statuses.index("diverged"), [50, 60], [0.5, None], [2.5, None]]]
    assert len(data["cfg"]) == 2  # the tuning run's curve stays off the page
    # The configuration's id is the one its table row and markers carry.
    assert f'<tr data-cfg="{row[(10, "none")]}">' in page
    assert page.count(f'data-cfg="{row[(10, "none")]}"') == 2  # its row and its marker
    assert "Click a marker of a plot, or a row of the full leaderboard" in page


def test_without_curves_csv_the_page_says_so(tmp_path):
    write_runs(tmp_path, [run(solved=True)])
    _, html_path = write_leaderboard(tmp_path)
    page = html_path.read_text()
    assert curves_of(page) is None
    assert "Learning curves are not available on this page: no curves.csv was read for it." in page


def test_curve_names_cannot_end_the_json_script():
    evil = "</script><script>alert(1)</script>"
    runs = pd.DataFrame([run(arch=evil, solved=True)])
    curves = pd.DataFrame({"run_id": [runs.run_id[0]], "step": [10], "train_loss": [0.5], "val_metric": [1.0]})
    page = render_html(runs, aggregate(runs), "t", curves=curves)
    assert page.count("<script>") == 1 and "alert(1)</script>" not in page
    assert curves_of(page)["cfg"]["0"]["label"][0] == evil


# -------------------------------------------------------------------------------- edge cases


def test_no_finished_runs(tmp_path):
    write_runs(tmp_path, [run(status="skipped", note="no data")])
    (tmp_path / CURVES_CSV).write_text("run_id,step,train_loss,val_metric\n")
    _, html_path = write_leaderboard(tmp_path)
    page = html_path.read_text()
    assert "No finished runs yet" in page and 'id="scoreboard"' not in page
    assert curves_of(page) == {"status": ["solved", "unsolved", "diverged", "skipped"], "cfg": {}}


def test_every_built_in_task_has_a_horizon_label_with_a_unit():
    import tasks

    for name in tasks.list_tasks():
        assert name in labels.HORIZON_LABELS and labels.HORIZON_LABELS[name].endswith("(steps)"), name


def test_mode_colours_differ_and_known_modes_keep_theirs():
    colors = plots.mode_colors(["pre", "zeta", "none", "alpha", "pre+during"])
    assert list(colors) == ["none", "pre", "pre+during", "alpha", "zeta"]
    assert len(set(colors.values())) == 5 and colors["none"] == plots.MODE_COLORS["none"]


# -------------------------------------------------------------------------------- in a browser


def _render_module():
    spec = importlib.util.spec_from_file_location("render_leaderboard", ROOT / "scripts" / "render_leaderboard.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# Sorts the scoreboard by a (task, mode) column and opens a configuration's curves, then records
# what it saw in attributes that --dump-dom shows. (A backslash ending a line joins the next to it:
# Python drops both, the script does not see them.)
_CLICK_SCRIPT = """<script>
(function () {
  var t = document.getElementById("scoreboard"), root = document.documentElement;
  var th = t.tHead.rows[1].cells[1];  // delayed_copy, pre
  th.click(); th.click();  // descending
  root.setAttribute("data-order", Array.prototype.map.call(t.tBodies[0].rows, function (r) {
    return r.cells[0].textContent; }).join(","));
  document.querySelector('#board tr[data-cfg="CFG"]').click();
  var v = document.getElementById("curve-viewer");
  root.setAttribute("data-viewer", (v.hidden ? "hidden" : "shown") + "|" \
+ document.getElementById("cv-title").textContent
    + "|" + v.querySelectorAll("svg.cv-chart").length + "|" + v.querySelectorAll("svg.cv-chart polyline").length);
  function hidden(selector) {
    return Array.prototype.filter.call(document.querySelectorAll(selector), function (e) {
      return getComputedStyle(e).display === "none"; }).map(function (e) {
      return (e.closest("svg.panel") || e).getAttribute("data-arch"); }).join(" ");
  }
  document.querySelector('.lg-arch[data-arch="b_crossing"]').click();
  document.querySelector('.lg-mode[data-flossing="none"]').click();
  root.setAttribute("data-hidden", hidden("svg.panel") + "|" + hidden("svg.panel .series"));
})();
</script></body>"""


def test_scoreboard_sorts_and_curves_open_in_chromium(tmp_path):
    browser = _render_module()
    if browser.find_chromium() is None:
        pytest.skip("chromium not installed (apt-get install -y chromium, or .ci/install_chromium.sh)")
    # Names not in the order h50 sorts them: "> 80" > 28.3 > "< 10" > not run (blank, last).
    rows = counts_runs("z_bridges_all", "pre", {10: 4, 20: 4, 40: 4, 80: 4}, 4)
    rows += counts_runs("b_crossing", "pre", SYMMETRIC, 4)
    rows += counts_runs("a_none", "pre", {10: 0, 20: 0, 40: 0, 80: 0}, 4)
    rows += counts_runs("c_one", "none", {10: 1}, 2)  # no pre: "not run"
    runs = pd.DataFrame(rows)
    board = aggregate(runs)
    cfg = int(board.index[(board.arch == "b_crossing") & (board.horizon == 20)][0])
    curve_ids = runs.run_id[(runs.arch == "b_crossing") & (runs.horizon == 20)]
    curves = pd.DataFrame([(r, s, 1.0 / s, s / 300) for r in curve_ids for s in (100, 200, 300)],
                          columns=["run_id", "step", "train_loss", "val_metric"])
    page = render_html(runs, board, "click", curves=curves).replace("</body>", _CLICK_SCRIPT.replace("CFG", str(cfg)))
    (tmp_path / "page.html").write_text(page)
    dom = browser.dump_dom(tmp_path / "page.html")
    order = re.search(r'data-order="([^"]*)"', dom).group(1).split(",")
    assert order == ["z_bridges_all", "b_crossing", "a_none", "c_one"]
    viewer = html.unescape(re.search(r'data-viewer="([^"]*)"', dom).group(1)).split("|")
    # Shown, titled, two charts (metric, loss) with a line per seed in each.
    assert viewer == ["shown", "b_crossing \u00b7 delayed_copy \u00b7 horizon 20 \u00b7 flossing pre", "2", str(2 * 4)]
    # The legend filters: b_crossing's panel hidden; the "none" series hidden (c_one is the only one with it).
    assert re.search(r'data-hidden="([^"]*)"', dom).group(1) == "b_crossing|c_one"
