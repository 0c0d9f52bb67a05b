/* crmlink HTML report (directory form): printing, and the index's filter and sort over
   every account. The rows are the JSON in #account-data; a page of them is drawn at a time. */
(function () {
  "use strict";

  /* Print every folded table too. */
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details").forEach(function (d) { d.dataset.wasOpen = d.open ? "1" : ""; d.open = true; });
  });
  window.addEventListener("afterprint", function () {
    document.querySelectorAll("details").forEach(function (d) { d.open = d.dataset.wasOpen === "1"; });
  });

  var source = document.getElementById("account-data");
  if (!source) { return; }
  var data = JSON.parse(source.textContent);
  /* The fields of a row, in the order crmlink/core/report/htmldir.py writes them. */
  var HREF = 0, NAME = 1, TIER = 2, OWNER = 3, SCORES = 4, WORST = 5, CODES = 6, ASSESSMENT = 7,
      EVIDENCE = 8, COUNT = 9, BAND = 10;
  var TIER_ORDER = { S: 0, A: 1, B: 2, C: 3, none: 4 };
  var SEVERITY_ORDER = { critical: 0, high: 1, medium: 2, low: 3, info: 4 };
  var ASSESSMENT_ORDER = { assessable: 0, partial: 1, not_assessable: 2 };
  var rows = data.rows.map(function (row, i) { row.rank = i; return row; });
  var form = document.getElementById("account-filter");
  var table = document.getElementById("account-table");
  var body = table.querySelector("tbody");
  var count = document.getElementById("account-count");
  var info = document.getElementById("page-info");
  var prev = document.getElementById("page-prev");
  var next = document.getElementById("page-next");
  var state = { sort: "rank", descending: false, page: 0, shown: rows };

  function value(id) {
    var field = document.getElementById(id);
    return field ? field.value : "";
  }

  function matches(filter) {
    return function (row) {
      if (filter.tier && row[TIER] !== filter.tier) { return false; }
      if (filter.band && row[BAND] !== filter.band) { return false; }
      if (filter.owner && row[OWNER] !== filter.owner) { return false; }
      if (filter.severity && row[WORST] !== filter.severity) { return false; }
      if (filter.assessment && row[ASSESSMENT] !== filter.assessment) { return false; }
      if (filter.code === "*" && !row[COUNT]) { return false; }
      if (filter.code === "-" && row[COUNT]) { return false; }
      if (filter.code && filter.code !== "*" && filter.code !== "-" && row[CODES].indexOf(filter.code) < 0) { return false; }
      if (!filter.words.length) { return true; }
      var text = [row[NAME], row[OWNER] || "", row[CODES].join(" "), "tier " + row[TIER]].join(" ").toLowerCase();
      return filter.words.every(function (w) { return text.indexOf(w) >= 0; });
    };
  }

  /* Sort keys: a missing score (no evidence) sorts after every known one either way. */
  function key(name) {
    if (name === "name") { return function (r) { return r[NAME].toLowerCase(); }; }
    if (name === "owner") { return function (r) { return (r[OWNER] || "\uffff").toLowerCase(); }; }
    if (name === "tier") { return function (r) { return TIER_ORDER[r[TIER]]; }; }
    if (name === "evidence") { return function (r) { return ASSESSMENT_ORDER[r[ASSESSMENT]]; }; }
    if (name === "findings") { return function (r) { return r[COUNT]; }; }
    if (name.indexOf("score-") === 0) {
      var i = Number(name.slice(6));
      return function (r) { return r[SCORES][i]; };
    }
    return function (r) { return r.rank; };
  }

  function sorted(list) {
    var get = key(state.sort), sign = state.descending ? -1 : 1;
    return list.slice().sort(function (a, b) {
      var x = get(a), y = get(b);
      if (x === null || x === undefined) { return (y === null || y === undefined) ? a.rank - b.rank : 1; }
      if (y === null || y === undefined) { return -1; }
      if (x < y) { return -sign; }
      if (x > y) { return sign; }
      return a.rank - b.rank;
    });
  }

  function cell(tr, text, className) {
    var td = document.createElement("td");
    td.textContent = text;
    if (className) { td.className = className; }
    tr.appendChild(td);
    return td;
  }

  /* A whole number as the account pages write it (Python rounds halves to even). */
  function score(v) {
    if (v === null || v === undefined) { return "\u2013"; }
    var r = Math.round(v);
    if (Math.abs(v % 1) === 0.5 && r % 2) { r -= 1; }
    return String(r);
  }

  function draw() {
    var pages = Math.max(1, Math.ceil(state.shown.length / data.page));
    state.page = Math.min(state.page, pages - 1);
    var start = state.page * data.page, slice = state.shown.slice(start, start + data.page);
    var fragment = document.createDocumentFragment();
    slice.forEach(function (row) {
      var tr = document.createElement("tr");
      tr.dataset.tier = row[TIER];
      cell(tr, String(row.rank + 1));
      var th = document.createElement("th");
      th.scope = "row";
      var a = document.createElement("a");
      a.href = row[HREF];
      a.textContent = row[NAME];
      th.appendChild(a);
      tr.appendChild(th);
      cell(tr, row[TIER] === "none" ? "-" : row[TIER]);
      row[SCORES].forEach(function (v) { cell(tr, score(v)); });
      cell(tr, row[OWNER] || "-");
      cell(tr, row[EVIDENCE]);
      var td = cell(tr, "", "codes");
      if (row[WORST]) {
        var sev = document.createElement("span");
        sev.className = "sev sev-" + row[WORST];
        sev.textContent = row[WORST];
        td.appendChild(sev);
        td.appendChild(document.createTextNode(" " + row[CODES].join(", ")));
      } else {
        td.textContent = "none";
      }
      fragment.appendChild(tr);
    });
    body.replaceChildren(fragment);
    var total = rows.length, n = state.shown.length;
    count.textContent = (n === total ? total + " accounts" : n + " of " + total + " accounts match") +
      (state.sort === "rank" && !state.descending ? ", in the order they need attention." : ".");
    info.textContent = n ? "rows " + (start + 1) + "\u2013" + (start + slice.length) + " of " + n : "no account matches";
    prev.disabled = state.page === 0;
    next.disabled = state.page >= pages - 1;
  }

  function refilter() {
    var filter = {
      words: value("f-text").toLowerCase().split(/\s+/).filter(Boolean), tier: value("f-tier"),
      band: value("f-band"), owner: value("f-owner"), code: value("f-code"),
      severity: value("f-severity"), assessment: value("f-assessment")
    };
    state.shown = sorted(rows.filter(matches(filter)));
    state.page = 0;
    draw();
  }

  table.querySelectorAll("th[data-sort] button").forEach(function (button) {
    button.addEventListener("click", function () {
      var th = button.parentNode, name = th.dataset.sort;
      state.descending = state.sort === name ? !state.descending : name.indexOf("score-") === 0 || name === "findings";
      state.sort = name;
      table.querySelectorAll("th[data-sort]").forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", state.descending ? "descending" : "ascending");
      state.shown = sorted(state.shown);
      state.page = 0;
      draw();
    });
  });
  form.addEventListener("input", refilter);
  form.addEventListener("change", refilter);
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  form.addEventListener("reset", function () { window.setTimeout(refilter, 0); });
  prev.addEventListener("click", function () { state.page -= 1; draw(); });
  next.addEventListener("click", function () { state.page += 1; draw(); });
  refilter();
}());
