(function () {
  "use strict";
  var each = function (list, f) { Array.prototype.forEach.call(list, f); };

  // ------------------------------------------------------------------ sortable tables
  function key(td) {
    var v = td.getAttribute("data-value");
    return v === null ? td.textContent.trim() : v;
  }
  function sortBy(table, col, asc) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var numeric = rows.every(function (r) {
      var v = key(r.cells[col]); return v === "" || !isNaN(Number(v));
    });
    rows.sort(function (a, b) {
      var x = key(a.cells[col]), y = key(b.cells[col]);
      if (x === "" || y === "") { return (x === "") - (y === ""); }
      var c = numeric ? Number(x) - Number(y) : x.localeCompare(y, undefined, {numeric: true});
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  // A header sorts by the body column its data-col names (the scoreboard has two header rows).
  function wireTable(table) {
    var ths = table.tHead ? table.tHead.querySelectorAll("th[data-col]") : [];
    each(ths, function (th) {
      var col = Number(th.getAttribute("data-col"));
      function go() {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        each(ths, function (o) { o.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        sortBy(table, col, asc);
      }
      th.addEventListener("click", go);
      th.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); go(); }
      });
    });
  }

  // ------------------------------------------------------------------ legend filters
  function wireLegend() {
    each(document.querySelectorAll(".lg-arch"), function (btn) {
      btn.addEventListener("click", function () {
        var arch = btn.getAttribute("data-arch");
        var off = btn.classList.toggle("off");
        each(document.querySelectorAll("svg.panel"), function (p) {
          if (p.getAttribute("data-arch") === arch) { p.classList.toggle("off", off); }
        });
      });
    });
    each(document.querySelectorAll(".lg-mode"), function (btn) {
      btn.addEventListener("click", function () {
        var mode = btn.getAttribute("data-flossing");
        var off = btn.classList.toggle("off");
        each(document.querySelectorAll("svg.panel .series"), function (g) {
          if (g.getAttribute("data-flossing") === mode) { g.classList.toggle("off", off); }
        });
      });
    });
  }

  // ------------------------------------------------------------------ learning curves
  var data;  // parsed on the first click, not at load
  function curves() {
    if (data === undefined) {
      var el = document.getElementById("curves-data");
      data = el ? JSON.parse(el.textContent) : null;
    }
    return data;
  }
  function steps(s, n) {  // [first, stride] stands for an evenly spaced run (render._steps)
    if (s.length === n) { return s; }
    var out = [];
    for (var k = 0; k < n; k++) { out.push(s[0] + k * s[1]); }
    return out;
  }
  function esc(t) {
    return String(t).replace(/[&<>"']/g, function (c) { return "&#" + c.charCodeAt(0) + ";"; });
  }
  function fmt(v) {
    var a = Math.abs(v);
    return a !== 0 && (a >= 1e5 || a < 1e-3) ? v.toExponential(0) : String(Number(v.toPrecision(3)));
  }
  function niceTicks(lo, hi, n) {
    var raw = (hi - lo) / Math.max(n - 1, 1), mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 2.5, 5, 10].map(function (m) { return m * mag; }).filter(function (s) { return s >= raw; })[0];
    var out = [];
    for (var t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) { out.push(Number(t.toPrecision(12))); }
    return out;
  }
  var STATUS_COLOR = {solved: "#228833", unsolved: "#777777", diverged: "#cc3311"};
  var W = 480, H = 190, ML = 52, MR = 12, MT = 12, MB = 34;

  // One chart: a line per run of series[i] = {x: [...], y: [...], color}; log y when asked.
  function chart(series, ylabel, unitRange, logY) {
    var xs = [], ys = [];
    series.forEach(function (s) {
      s.x.forEach(function (x, i) { var y = s.y[i]; if (y !== null && (!logY || y > 0)) { xs.push(x); ys.push(y); } });
    });
    if (!ys.length) { return '<p class="cv-empty">no finite values of ' + esc(ylabel) + "</p>"; }
    var x0 = 0, x1 = Math.max.apply(null, xs) || 1;
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    if (unitRange && y0 >= 0 && y1 <= 1) { y0 = 0; y1 = 1; }
    if (logY) { y0 = Math.log10(y0); y1 = Math.log10(y1); }
    if (y1 - y0 < 1e-12) { y0 -= 0.5; y1 += 0.5; }
    var pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad;
    function px(x) { return ML + (x - x0) / (x1 - x0) * (W - ML - MR); }
    function py(y) { var v = logY ? Math.log10(y) : y; return MT + (y1 - v) / (y1 - y0) * (H - MT - MB); }
    var out = ['<svg class="cv-chart" viewBox="0 0 ' + W + " " + H + '" role="img" aria-label="' + esc(ylabel) + ' against step">'];
    out.push('<rect class="plotbg" x="' + ML + '" y="' + MT + '" width="' + (W - ML - MR) + '" height="' + (H - MT - MB) + '"/>');
    var yt = logY ? niceTicks(Math.ceil(y0), Math.floor(y1), 5).filter(function (t) { return t === Math.round(t); })
                    .map(function (t) { return Math.pow(10, t); })
                  : niceTicks(y0, y1, 5);
    yt.forEach(function (t) {
      var y = py(t).toFixed(1);
      out.push('<line class="grid" x1="' + ML + '" x2="' + (W - MR) + '" y1="' + y + '" y2="' + y + '"/>' +
               '<text class="tick" x="' + (ML - 5) + '" y="' + (Number(y) + 3.5) + '" text-anchor="end">' + fmt(t) + "</text>");
    });
    niceTicks(x0, x1, 6).forEach(function (t) {
      var x = px(t).toFixed(1);
      out.push('<text class="tick" x="' + x + '" y="' + (H - MB + 14) + '" text-anchor="middle">' + fmt(t) + "</text>");
    });
    out.push('<path class="axis" d="M' + ML + " " + MT + "V" + (H - MB) + "H" + (W - MR) + '"/>');
    out.push('<text class="alabel" x="' + ((ML + W - MR) / 2) + '" y="' + (H - 4) + '" text-anchor="middle">training step</text>');
    out.push('<text class="alabel" transform="translate(12 ' + ((MT + H - MB) / 2) + ') rotate(-90)" text-anchor="middle">' +
             esc(ylabel) + (logY ? " (log)" : "") + "</text>");
    series.forEach(function (s) {
      var pts = [];
      s.x.forEach(function (x, i) {
        var y = s.y[i];
        if (y === null || (logY && y <= 0)) { return; }
        pts.push(px(x).toFixed(1) + "," + py(y).toFixed(1));
      });
      if (pts.length > 1) {
        out.push('<polyline points="' + pts.join(" ") + '" fill="none" stroke="' + s.color + '" stroke-width="1.6">' +
                 "<title>" + esc(s.name) + "</title></polyline>");
      }
      pts.forEach(function (p) {
        var xy = p.split(",");
        out.push('<circle cx="' + xy[0] + '" cy="' + xy[1] + '" r="2.2" fill="' + s.color + '"/>');
      });
    });
    out.push("</svg>");
    return out.join("");
  }

  function showCurves(cfg) {
    var viewer = document.getElementById("curve-viewer");
    var title = document.getElementById("cv-title"), body = document.getElementById("cv-body");
    var all = curves();
    var entry = all && all.cfg[cfg];
    viewer.hidden = false;
    viewer.setAttribute("data-shown", cfg);
    if (!all) {
      title.textContent = "Learning curves";
      body.innerHTML = '<p class="cv-empty">Learning curves are not available on this page: no curves.csv was read for it.</p>';
      return;
    }
    if (!entry) {
      title.textContent = "Learning curves";
      body.innerHTML = '<p class="cv-empty">No learning curve was recorded for this configuration.</p>';
      return;
    }
    var l = entry.label;
    title.textContent = l[0] + " \u00b7 " + l[1] + " \u00b7 horizon " + l[2] + " \u00b7 flossing " + l[3];
    var metric = [], loss = [], keys = [];
    entry.runs.forEach(function (r) {
      var status = r[1] === null ? "" : all.status[r[1]];
      var color = STATUS_COLOR[status] || "#4477aa";
      var x = steps(r[2], r[3].length);
      var name = "seed " + r[0] + " (" + status + ")";
      metric.push({x: x, y: r[3], color: color, name: name});
      loss.push({x: x, y: r[4], color: color, name: name});
      keys.push('<span class="cv-key"><i style="background:' + color + '"></i>seed ' + esc(r[0]) + " (" + esc(status) + ")</span>");
    });
    var positive = loss.every(function (s) { return s.y.every(function (v) { return v === null || v > 0; }); });
    var finite = [].concat.apply([], loss.map(function (s) { return s.y.filter(function (v) { return v !== null; }); }));
    var logY = positive && finite.length > 0 && Math.max.apply(null, finite) / Math.min.apply(null, finite) > 10;
    body.innerHTML =
      '<div class="cv-keys">' + keys.join("") + "</div>" +
      chart(metric, "validation " + (entry.metric || "metric"), true, false) +
      chart(loss, "training loss", false, logY);
  }
  function wireCurves() {
    document.addEventListener("click", function (ev) {
      var target = ev.target.closest ? ev.target.closest("[data-cfg]") : null;
      if (target && !target.closest("#curve-viewer")) { showCurves(target.getAttribute("data-cfg")); }
    });
    var viewer = document.getElementById("curve-viewer");
    document.getElementById("cv-close").addEventListener("click", function () { viewer.hidden = true; });
    document.addEventListener("keydown", function (ev) { if (ev.key === "Escape") { viewer.hidden = true; } });
  }

  function init() {
    each(document.querySelectorAll("table.sortable"), wireTable);
    wireLegend();
    wireCurves();
    var board = document.getElementById("board");
    var root = document.documentElement;
    root.setAttribute("data-board-rows", board ? String(board.tBodies[0].rows.length) : "0");
    root.setAttribute("data-leaderboard-js", "ready");
  }
  // The script sits at the end of <body>, so the DOM it wires is already parsed: run now,
  // not at DOMContentLoaded, so the page is sortable as soon as it paints.
  init();
  window.zooShowCurves = showCurves;  // for a test or a console: open a configuration's curves
})();
