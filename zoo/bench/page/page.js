(function () {
  "use strict";
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
  function wireTable(table) {
    var ths = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(ths, function (th, col) {
      function go() {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(ths, function (o) { o.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        sortBy(table, col, asc);
      }
      th.addEventListener("click", go);
      th.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); go(); }
      });
    });
  }
  function wireLegend() {
    var buttons = document.querySelectorAll(".lg-arch");
    Array.prototype.forEach.call(buttons, function (btn) {
      btn.addEventListener("click", function () {
        var arch = btn.getAttribute("data-arch");
        var off = btn.classList.toggle("off");
        var series = document.querySelectorAll("svg.panel .series");
        Array.prototype.forEach.call(series, function (g) {
          if (g.getAttribute("data-arch") === arch) { g.classList.toggle("off", off); }
        });
      });
    });
  }
  function init() {
    var tables = document.querySelectorAll("table.sortable");
    Array.prototype.forEach.call(tables, wireTable);
    wireLegend();
    var board = document.getElementById("board");
    var root = document.documentElement;
    root.setAttribute("data-board-rows", board ? String(board.tBodies[0].rows.length) : "0");
    root.setAttribute("data-leaderboard-js", "ready");
  }
  // The script sits at the end of <body>, so the DOM it wires is already parsed: run now,
  // not at DOMContentLoaded, so the page is sortable as soon as it paints.
  init();
})();
