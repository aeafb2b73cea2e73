"""Leaderboard: aggregation values on hand-built runs, file writing, HTML self-containment."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zoo.bench.leaderboard import (
    RUNS_COLUMNS,
    aggregate,
    read_runs,
    render_html,
    write_leaderboard,
)

CONTRACT = ["arch", "task", "horizon", "flossing", "n_runs", "successes", "success_rate"]
ROOT = Path(__file__).resolve().parents[1]


def run(arch="rnn", task="delayed_copy", horizon=10, flossing="none", seed=0, status="unsolved", **kw):
    """One runs.csv row; success follows the status unless given."""
    row = dict.fromkeys(RUNS_COLUMNS, np.nan)
    row.update(
        run_id=f"{arch}-{task}-{horizon}-{flossing}-{seed}",
        suite="test_suite", arch=arch, task=task, horizon=horizon, flossing=flossing,
        seed=seed, status=status, success=int(status == "solved"), metric_name="accuracy",
        metric=1.0 if status == "solved" else 0.5, note="",
    )  # fmt: skip
    row.update(kw)
    return row


def cell(board, **keys):
    sel = board
    for k, v in keys.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, f"expected one row for {keys}, got {len(sel)}"
    return sel.iloc[0]


def write_runs(path: Path, rows) -> None:
    pd.DataFrame(rows, columns=RUNS_COLUMNS).to_csv(path / "runs.csv", index=False)


# ---------------------------------------------------------------------------- aggregate


def test_success_rate_two_of_three():
    runs = pd.DataFrame([
        run(seed=0, status="solved", steps_to_success=100),
        run(seed=1, status="solved", steps_to_success=300),
        run(seed=2, status="unsolved"),
    ])  # fmt: skip
    board = aggregate(runs)
    assert list(board.columns[:7]) == CONTRACT
    r = cell(board, arch="rnn")
    assert (r.n_runs, r.successes) == (3, 2)
    assert r.success_rate == pytest.approx(2 / 3)
    assert r.median_steps_to_success == 200  # median over the two successful runs only


def test_longest_horizon_is_largest_bridged_even_after_a_failure():
    rows = []
    # horizon 10: 0/2 (fails), 20: 1/2 (exactly 0.5 counts), 40: 0/2, 80: 2/2  -> longest = 80
    for h, outcomes in {10: [0, 0], 20: [1, 0], 40: [0, 0], 80: [1, 1]}.items():
        rows += [run(horizon=h, seed=s, status="solved" if ok else "unsolved") for s, ok in enumerate(outcomes)]
    # another flossing mode that never succeeds -> NaN, and does not leak into the first group
    rows += [run(horizon=h, flossing="pre", seed=0) for h in (10, 20)]
    board = aggregate(pd.DataFrame(rows))
    none = board[board.flossing == "none"]
    assert none.longest_horizon.tolist() == [80.0] * 4  # repeated on every row of the group
    assert none.horizon.tolist() == [10, 20, 40, 80]
    assert board[board.flossing == "pre"].longest_horizon.isna().all()
    assert cell(board, flossing="none", horizon=20).success_rate == 0.5


def test_longest_horizon_counts_a_horizon_solved_by_exactly_half_the_seeds():
    rows = [run(horizon=10, seed=s, status="solved") for s in range(2)]
    rows += [run(horizon=20, seed=0, status="solved"), run(horizon=20, seed=1)]  # 1/2: bridged
    rows += [run(horizon=40, seed=s, status="solved" if s == 0 else "unsolved") for s in range(3)]  # 1/3: not
    board = aggregate(pd.DataFrame(rows))
    assert board.longest_horizon.tolist() == [20.0] * 3


def test_steps_to_success_only_of_runs_that_succeeded():
    # An unsolved run whose validation metric met the criterion at some step (the final test
    # metric did not) has a steps_to_success, but is not a success: its steps are not counted.
    runs = pd.DataFrame([
        run(seed=0, status="solved", steps_to_success=100),
        run(seed=1, status="solved", steps_to_success=200),
        run(seed=2, status="unsolved", steps_to_success=30),
    ])  # fmt: skip
    assert cell(aggregate(runs), arch="rnn").median_steps_to_success == 150


def test_diverged_counted_and_skipped_excluded():
    runs = pd.DataFrame([
        run(seed=0, status="diverged", metric=np.nan, note="loss became NaN"),
        run(seed=1, status="diverged"),
        run(seed=2, status="solved"),
        run(seed=3, status="skipped", note="no data"),
        run(task="smnist", seed=0, status="skipped", note="TFDS_DATA_DIR not set"),
    ])  # fmt: skip
    board = aggregate(runs)
    assert set(board.task) == {"delayed_copy"}  # a task with only skipped rows has no row
    r = cell(board, task="delayed_copy")
    assert (r.n_runs, r.successes, r.diverged) == (3, 1, 2)
    assert r.success_rate == pytest.approx(1 / 3)


def test_medians():
    runs = pd.DataFrame([
        run(seed=0, status="solved", metric=0.9, steps_to_success=50, lambda1_before=0.3, lambda1_after=-0.1),
        run(seed=1, status="solved", metric=0.8, steps_to_success=150, lambda1_before=0.1, lambda1_after=np.nan),
        run(seed=2, status="unsolved", metric=0.1, steps_to_success=np.nan, lambda1_before=0.2, lambda1_after=-0.3),
    ])  # fmt: skip
    r = cell(aggregate(runs), arch="rnn")
    assert r.median_metric == pytest.approx(0.8)  # over all finished runs of the cell
    assert r.median_steps_to_success == pytest.approx(100)
    assert r.median_lambda1_before == pytest.approx(0.2)
    assert r.median_lambda1_after == pytest.approx(-0.2)  # NaN ignored
    assert r.metric_name == "accuracy"


def test_no_success_gives_nan_steps_and_sorted_order():
    runs = pd.DataFrame([
        run(arch="lstm", task="delayed_xor", horizon=20, flossing="pre+during"),
        run(arch="gru", task="delayed_copy", horizon=20),
        run(arch="gru", task="delayed_copy", horizon=10, flossing="pre"),
        run(arch="gru", task="delayed_copy", horizon=10),
        run(arch="lstm", task="teacher_student", horizon=0.99),
        run(arch="lstm", task="teacher_student", horizon=0.32),
    ])  # fmt: skip
    board = aggregate(runs)
    keys = list(zip(board.task, board.arch, board.flossing, board.horizon))
    assert keys == [
        ("delayed_copy", "gru", "none", 10), ("delayed_copy", "gru", "none", 20),
        ("delayed_copy", "gru", "pre", 10), ("delayed_xor", "lstm", "pre+during", 20),
        ("teacher_student", "lstm", "none", 0.32), ("teacher_student", "lstm", "none", 0.99),
    ]  # fmt: skip
    assert board.median_steps_to_success.isna().all()
    assert board[["n_runs", "successes", "diverged"]].dtypes.map(lambda d: d.kind).eq("i").all()


def test_aggregate_empty():
    board = aggregate(pd.DataFrame(columns=RUNS_COLUMNS))
    assert board.empty and list(board.columns[:7]) == CONTRACT
    assert aggregate(pd.DataFrame([run(status="skipped")])).empty


# ---------------------------------------------------------------------------- files


def sample_runs():
    rows = []
    for arch in ("rnn", "lru"):
        for fl in ("none", "pre", "pre+during"):
            for h in (10, 100, 1000):
                for s in range(2):
                    ok = h <= (100 if arch == "rnn" else 1000) and not (fl == "none" and h == 1000)
                    rows.append(run(arch=arch, flossing=fl, horizon=h, seed=s, status="solved" if ok else "unsolved"))
            for nu in (0.32, 0.9, 0.99):
                rows.append(run(arch=arch, task="teacher_student", flossing=fl, horizon=nu, status="solved"))
    rows.append(run(task="smnist", status="skipped", note="TFDS_DATA_DIR not set"))
    return rows


def test_write_leaderboard_files(tmp_path):
    write_runs(tmp_path, sample_runs())
    csv_path, html_path = write_leaderboard(tmp_path)
    assert csv_path == tmp_path / "leaderboard.csv" and html_path == tmp_path / "leaderboard.html"
    board = pd.read_csv(csv_path, keep_default_na=False, na_values=[""])
    assert list(board.columns[:7]) == CONTRACT
    assert len(board) == 2 * 3 * (3 + 3)
    assert set(board.flossing) == {"none", "pre", "pre+during"}  # "none" stays text, not NaN
    assert "\nrnn,delayed_copy,10,none,2,2,1," in csv_path.read_text()  # integral numbers print as ints
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # atomic, no leftovers
    assert html_path.stat().st_mode & 0o044  # readable by others, like a plain write (not 0600)
    page = html_path.read_text()
    assert "test_suite" in page and "smnist skipped: data not available (TFDS_DATA_DIR not set)" in page


def test_html_self_contained_small_multiples(tmp_path):
    write_runs(tmp_path, sample_runs())
    _, html_path = write_leaderboard(tmp_path)
    page = html_path.read_text()
    assert not re.search(r"https?://", page)  # no CDN, fonts, or external anything
    assert not re.search(r"""(src|href)\s*=|@import|url\(""", page)
    # A block per task (smnist was skipped), in it a panel per architecture.
    assert page.count('<section class="task-block"') == 2
    assert page.count('<svg class="panel"') == 2 * 2
    copy_block = page.split('<section class="task-block" data-task="delayed_copy">')[1].split("</section>")[0]
    assert "log scale" in copy_block  # horizons 10..1000 span > 10x
    ts_block = page.split('<section class="task-block" data-task="teacher_student">')[1].split("</section>")[0]
    assert "log scale" not in ts_block  # 0.32..0.99 spans < 10x
    assert copy_block.count("<title>") == 2 * 3 * 3  # a tooltip per marker: 2 archs x 3 modes x 3 horizons
    assert "2 of 2 runs solved" in copy_block
    assert 'stroke-dasharray="7 4"' in copy_block  # pre is dashed; none solid
    board = aggregate(pd.DataFrame(sample_runs()))
    assert page.count('<tr data-cfg="') == len(board)  # the full leaderboard, a row per configuration
    # Header rows: the scoreboard's two, the longest table's and the full board's one each.
    assert page.count("<tr>") == 2 + 2 + (1 + 4) + 1


def test_html_escapes_malicious_names():
    evil = "<script>alert('x')</script>"
    runs = pd.DataFrame([run(arch=evil, status="solved"), run(task='t"><img onerror=1>', status="skipped", note=evil)])
    page = render_html(runs, aggregate(runs), title=evil)
    assert "<script>alert" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # only the page's own inline script


@pytest.mark.parametrize("content", ["", ",".join(RUNS_COLUMNS) + "\n", None])
def test_empty_runs_csv(tmp_path, content):
    if content is not None:
        (tmp_path / "runs.csv").write_text(content)
    csv_path, html_path = write_leaderboard(tmp_path)
    assert pd.read_csv(csv_path).columns[:7].tolist() == CONTRACT
    page = html_path.read_text()
    assert "No finished runs yet" in page and page.rstrip().endswith("</html>")


def test_only_skipped_rows(tmp_path):
    write_runs(tmp_path, [run(task="smnist", seed=s, status="skipped", note="no data") for s in range(3)])
    csv_path, html_path = write_leaderboard(tmp_path)
    assert len(pd.read_csv(csv_path)) == 0
    page = html_path.read_text()
    assert "<strong>0</strong> runs" in page and "smnist skipped: data not available (no data)" in page


def test_read_runs_tolerates_a_cut_off_line_and_duplicates(tmp_path):
    write_runs(tmp_path, [run(seed=0, status="solved"), run(seed=1, status="unsolved")])
    text = (tmp_path / "runs.csv").read_text()
    last = text.splitlines()[-1]
    (tmp_path / "runs.csv").write_text(text + last + "\n" + last[: last.index("unsolved") + 3])
    runs = read_runs(tmp_path / "runs.csv")
    assert len(runs) == 2 and runs.success.tolist() == [1.0, 0.0]
    assert runs.flossing.tolist() == ["none", "none"]


# ---------------------------------------------------------------------------- real browser


def _render_module():
    spec = importlib.util.spec_from_file_location("render_leaderboard", ROOT / "scripts" / "render_leaderboard.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_renders_in_headless_chromium(tmp_path):
    render = _render_module()
    if render.find_chromium() is None:
        pytest.skip("chromium not installed (apt-get install -y chromium, or .ci/install_chromium.sh)")
    write_runs(tmp_path, sample_runs())
    _, html_path = write_leaderboard(tmp_path)
    dom = render.dump_dom(html_path)
    assert render.JS_MARKER in dom  # the inline script ran
    n_board = len(aggregate(pd.DataFrame(sample_runs())))
    assert f'data-board-rows="{n_board}"' in dom
    assert dom.count('<svg class="panel"') == 2 * 2  # 2 tasks x 2 architectures
    board_body = dom.split('id="board"')[1].split("<tbody>")[1].split("</tbody>")[0]
    assert board_body.count("<tr data-cfg=") == n_board
    png = render.screenshot(html_path, tmp_path / "leaderboard.png", width=900, height=700)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# Clicks headers the way a user would, then records what the table looks like in attributes
# that --dump-dom shows: proves sorting is numeric (0.32 < 10 < 100 < 1000) and keeps blanks last.
_CLICK_SCRIPT = """<script>
(function () {
  var t = document.getElementById("board");
  function col(name) {
    return Array.prototype.findIndex.call(t.tHead.rows[0].cells, function (th) { return th.textContent === name; });
  }
  function values(i) {
    return Array.prototype.map.call(t.tBodies[0].rows, function (r) {
      var v = r.cells[i].getAttribute("data-value"); return v === null ? r.cells[i].textContent : v;  // the sort key
    }).join(",");
  }
  var h = col("horizon"), s = col("median_steps_to_success");
  t.tHead.rows[0].cells[h].click();
  document.documentElement.setAttribute("data-asc", values(h));
  t.tHead.rows[0].cells[h].click();
  document.documentElement.setAttribute("data-desc", values(h));
  t.tHead.rows[0].cells[s].click();
  document.documentElement.setAttribute("data-steps", values(s));
})();
</script></body>"""


def test_table_sorts_numerically_in_chromium(tmp_path):
    render = _render_module()
    if render.find_chromium() is None:
        pytest.skip("chromium not installed (apt-get install -y chromium, or .ci/install_chromium.sh)")
    rows = sample_runs() + [run(horizon=5, status="solved", steps_to_success=7),
                            run(horizon=50, status="solved", steps_to_success=40)]
    runs = pd.DataFrame(rows)
    page = render_html(runs, aggregate(runs), "sort check").replace("</body>", _CLICK_SCRIPT)
    (tmp_path / "page.html").write_text(page)
    dom = render.dump_dom(tmp_path / "page.html")

    def attr(name):
        return re.search(rf'{name}="([^"]*)"', dom).group(1).split(",")

    asc = [float(v) for v in attr("data-asc")]
    assert asc == sorted(asc) and asc[0] == 0.32 and asc[-1] == 1000
    assert [float(v) for v in attr("data-desc")] == sorted(asc, reverse=True)
    steps = attr("data-steps")
    filled = [float(v) for v in steps if v]
    assert filled == sorted(filled) and filled[:2] == [7, 40]
    assert steps[len(filled):] == [""] * (len(steps) - len(filled))  # blanks last


def test_not_bridged_and_not_run_look_different_and_horizons_carry_units():
    runs = pd.DataFrame([
        run(arch="rnn", flossing="none", horizon=10, status="unsolved"),  # ran, never bridged
        run(arch="rnn", flossing="pre", horizon=10, status="solved"),
        run(arch="gru", flossing="none", horizon=10, status="solved"),  # gru never ran with "pre"
        run(arch="lru", task="teacher_student", horizon=6.25, status="solved"),
    ])  # fmt: skip
    page = render_html(runs, aggregate(runs), "t", "A smoke test.")
    longest = page.split('id="longest"')[1].split("</table>")[0]
    rnn = longest.split("<td>rnn</td>")[1].split("</tr>")[0]
    gru = longest.split("<td>gru</td>")[1].split("</tr>")[0]
    assert 'class="num notbridged" data-value="">none bridged<' in rnn and ">10<" in rnn
    assert ">10<" in gru and 'class="num notrun" data-value="">not run<' in gru
    # Axes name the horizon with its unit; teacher-student's memory time scale has nu0 beside it.
    assert "horizon: delay d (steps)" in page
    assert "horizon: memory time scale 1/(1\u2212\u03bd\u2080) (steps)" in page
    assert "\u03bd\u2080 0.84" in page  # 1 - 1/6.25
    assert '<p class="about">A smoke test.</p>' in page
