/* Long tables a reader can search and sort, offline: no library, no network.
   Inlined into every published page and allowed by the page's Content-Security-Policy by its hash
   (crm_analytics.publish.TABLE_SCRIPT, csp()); keep it ASCII so the hash is the same everywhere.
   - every table scrolls sideways inside its own box, so a phone-width page never does;
   - a table with more than 10 body rows gets a search box (rows kept when they hold every word typed,
     case-insensitive with the casing rules of the page's language: Turkish I/i) and header buttons that
     sort by a column (as numbers when its cells read as numbers in the page's locale, as text otherwise;
     missing values last) with aria-sort. */
(function () {
  "use strict";
  var MIN_ROWS = 11;
  var doc = document;
  var lang = (doc.documentElement.getAttribute("lang") || "en").trim() || "en";
  var turkish = /^tr(-|$)/i.test(lang);
  var WORDS = turkish
    ? {search: "Bu tabloda ara", shown: "G\u00f6sterilen sat\u0131r: "}
    : {search: "Search this table", shown: "Rows shown: "};
  /* the locale's decimal mark; the other mark groups thousands */
  var DECIMAL = /^(tr|de|fr|es|it|pt|nl|ru|pl|cs|da|fi|nb|no|sv|el|id|ro|hu|uk|az)(-|$)/i.test(lang) ? "," : ".";
  var collator = (function () {
    try { return new Intl.Collator(lang, {numeric: true, sensitivity: "base"}); }
    catch (e) { return new Intl.Collator("en", {numeric: true, sensitivity: "base"}); }
  }());

  function lower(text) {
    try { return text.toLocaleLowerCase(lang); } catch (e) { return text.toLowerCase(); }
  }

  function cellText(cell) {
    return (cell.textContent || "").replace(/\s+/g, " ").trim();
  }

  var MISSING = /^(|\u2013|\u2014|-|\u2212|nan|NaN|None|null|<NA>|NaT)$/;

  function digits(body, decimal) {
    var group = decimal === "," ? "." : ",";
    var g = group === "." ? "\\." : ",";
    var d = decimal === "." ? "\\." : ",";
    var grouped = new RegExp("^\\d{1,3}(" + g + "\\d{3})+(" + d + "\\d+)?$");
    var plain = new RegExp("^(\\d+(" + d + "\\d*)?|" + d + "\\d+)([eE][+-]?\\d+)?$");
    if (!grouped.test(body) && !plain.test(body)) { return NaN; }
    return parseFloat(body.split(group).join("").replace(decimal, "."));
  }

  /* A cell's number, NaN for text, null when missing: '1,234.5' / '1.234,5', '12%' / '%12',
     '-3' / '\u22123', '<0.0001', '\u221e', currency signs; the page's locale first, then the other one. */
  function parseNumber(raw) {
    var t = raw.replace(/[\s\u00a0\u202f\u2009]/g, "");
    if (MISSING.test(t)) { return null; }
    var sign = 1, nudge = 0, m;
    if ((m = /^([<>\u2264\u2265])(.*)$/.exec(t))) {
      nudge = (m[1] === "<" || m[1] === "\u2264") ? -1 : 1;
      t = m[2];
    }
    if ((m = /^([-\u2212+])(.*)$/.exec(t))) { sign = m[1] === "+" ? 1 : -1; t = m[2]; }
    t = t.replace(/^[\u20ba$\u20ac\u00a3]/, "").replace(/([\u20ba$\u20ac\u00a3]|TL|TRY)$/, "");
    if ((m = /^%(.*)$/.exec(t)) || (m = /^(.*)%$/.exec(t))) { t = m[1]; }
    if ((m = /^([-\u2212+])(.*)$/.exec(t))) { sign *= m[1] === "+" ? 1 : -1; t = m[2]; }
    if (t === "\u221e") { return sign * Infinity; }
    var v = digits(t, DECIMAL);
    if (isNaN(v)) { v = digits(t, DECIMAL === "," ? "." : ","); }
    if (isNaN(v)) { return NaN; }
    v = sign * v;
    return nudge ? v + nudge * Math.max(Math.abs(v), 1) * 1e-9 : v;
  }

  /* Body cells spanning several rows are repeated in each row, so that any row can be hidden or moved. */
  function expandRowSpans(rows) {
    var carry = [];
    function carriedFrom(col) {
      for (var c = col; c < carry.length; c++) { if (carry[c] && carry[c].left > 0) { return true; } }
      return false;
    }
    rows.forEach(function (row) {
      var cells = Array.prototype.slice.call(row.cells), ordered = [], col = 0, k = 0;
      while (k < cells.length || carriedFrom(col)) {
        var held = carry[col];
        if (held && held.left > 0) {
          var copy = held.cell.cloneNode(true);
          copy.removeAttribute("id");
          held.left -= 1;
          ordered.push(copy);
          col += copy.colSpan || 1;
        } else if (k < cells.length) {
          var cell = cells[k++];
          if (cell.rowSpan > 1) {
            carry[col] = {cell: cell, left: cell.rowSpan - 1};
            cell.rowSpan = 1;
          }
          ordered.push(cell);
          col += cell.colSpan || 1;
        } else {
          col += 1;
        }
      }
      ordered.forEach(function (cell) { row.appendChild(cell); });
    });
  }

  /* The cell of *row* in column *index* (counting colspans), or null. */
  function cellAt(row, index) {
    var col = 0;
    for (var i = 0; i < row.cells.length; i++) {
      var span = row.cells[i].colSpan || 1;
      if (index >= col && index < col + span) { return span === 1 ? row.cells[i] : null; }
      col += span;
    }
    return null;
  }

  /* Per column, the lowest header cell that names it alone (a cell spanning several columns names a
     group; pandas puts the name of the column labels above the index's name, in the same column). */
  function headerColumns(headRows) {
    var taken = [], byColumn = [];
    headRows.forEach(function (row, r) {
      var col = 0;
      Array.prototype.forEach.call(row.cells, function (cell) {
        while (taken[r] && taken[r][col]) { col += 1; }
        var span = cell.colSpan || 1, down = Math.max(cell.rowSpan || 1, 1);
        for (var rr = r; rr < r + down; rr++) {
          taken[rr] = taken[rr] || [];
          for (var cc = col; cc < col + span; cc++) { taken[rr][cc] = true; }
        }
        if (span === 1 && cellText(cell) !== "") { byColumn[col] = cell; }
        col += span;
      });
    });
    var found = [];
    byColumn.forEach(function (cell, index) { if (cell) { found.push({cell: cell, index: index}); } });
    return found;
  }

  function compareKeys(a, b) {
    if (a.missing || b.missing) { return a.missing === b.missing ? 0 : (a.missing ? 1 : -1); }
    var an = !isNaN(a.number), bn = !isNaN(b.number);
    if (an && bn) { return a.number < b.number ? -1 : (a.number > b.number ? 1 : 0); }
    if (an !== bn) { return an ? -1 : 1; }
    return collator.compare(a.text, b.text);
  }

  function sortKey(cell) {
    var text = cell ? cellText(cell) : "";
    var number = parseNumber(text);
    return {text: text, number: number === null ? NaN : number, missing: number === null};
  }

  var uid = 0;

  function enhance(table) {
    var body = table.tBodies[0];
    if (!body || table.tBodies.length !== 1) { return; }
    var headRows = table.tHead ? Array.prototype.slice.call(table.tHead.rows) : [];
    var rows = Array.prototype.slice.call(body.rows);
    if (!headRows.length && rows.length && Array.prototype.every.call(rows[0].cells, function (c) {
      return c.tagName === "TH";
    })) {
      headRows = [rows.shift()];
    }
    if (rows.length < MIN_ROWS) { return; }
    expandRowSpans(rows);
    /* a row's text, its cells apart: a word typed never matches across two cells */
    var texts = rows.map(function (row) {
      return lower(Array.prototype.map.call(row.cells, cellText).join("\n"));
    });
    uid += 1;
    table.classList.add("crm-enhanced");

    var tools = doc.createElement("div");
    tools.className = "crm-table-tools";
    var label = doc.createElement("label");
    var input = doc.createElement("input");
    input.type = "search";
    input.id = "crm-table-search-" + uid;
    input.setAttribute("autocomplete", "off");
    input.setAttribute("aria-controls", table.id || (table.id = "crm-table-" + uid));
    label.htmlFor = input.id;
    label.textContent = WORDS.search;
    var count = doc.createElement("span");
    count.className = "crm-table-count";
    count.setAttribute("aria-live", "polite");
    tools.appendChild(label);
    tools.appendChild(input);
    tools.appendChild(count);
    var box = table.parentNode.classList.contains("crm-table-scroll") ? table.parentNode : table;
    box.parentNode.insertBefore(tools, box);

    function filter() {
      var words = lower(input.value).split(/\s+/).filter(Boolean), shown = 0;
      rows.forEach(function (row, i) {
        var keep = words.every(function (w) { return texts[i].indexOf(w) !== -1; });
        row.hidden = !keep;
        if (keep) { shown += 1; }
      });
      count.textContent = words.length ? WORDS.shown + shown + " / " + rows.length : "";
    }
    input.addEventListener("input", filter);

    var headers = headerColumns(headRows);
    headers.forEach(function (h) {
      var button = doc.createElement("button");
      button.type = "button";
      button.className = "crm-sort";
      while (h.cell.firstChild) { button.appendChild(h.cell.firstChild); }
      h.cell.appendChild(button);
      h.cell.setAttribute("aria-sort", "none");
      var keys = rows.map(function (row) { return sortKey(cellAt(row, h.index)); });
      var numeric = keys.some(function (k) { return !k.missing; }) &&
        keys.every(function (k) { return k.missing || !isNaN(k.number); });
      h.cell.setAttribute("data-sort-type", numeric ? "number" : "text");
      button.addEventListener("click", function () {
        var descending = h.cell.getAttribute("aria-sort") === "ascending";
        headers.forEach(function (other) { other.cell.setAttribute("aria-sort", "none"); });
        h.cell.setAttribute("aria-sort", descending ? "descending" : "ascending");
        var order = rows.map(function (row, i) { return i; });
        order.sort(function (a, b) {
          var ka = keys[a], kb = keys[b], c = compareKeys(ka, kb);
          if (descending && !ka.missing && !kb.missing) { c = -c; }
          return c || a - b;
        });
        order.forEach(function (i) { body.appendChild(rows[i]); });
      });
    });
  }

  function addStyle() {
    if (doc.getElementById("crm-table-style")) { return; }
    var style = doc.createElement("style");
    style.id = "crm-table-style";
    style.textContent = [
      ".crm-table-scroll{overflow-x:auto;max-width:100%;-webkit-overflow-scrolling:touch}",
      ".crm-table-tools{display:flex;flex-wrap:wrap;gap:.3rem .6rem;align-items:center;margin:.6rem 0 .3rem;font-size:.9rem}",
      ".crm-table-tools input{font:inherit;padding:.2rem .4rem;min-width:0;max-width:100%;flex:0 1 16rem}",
      ".crm-table-count{color:#59636e}",
      "table.crm-enhanced tr[hidden]{display:none}",
      "button.crm-sort{font:inherit;font-weight:inherit;color:inherit;background:none;border:0;padding:0;",
      "cursor:pointer;text-align:inherit}",
      "button.crm-sort:focus-visible{outline:2px solid #0b5cad;outline-offset:2px}",
      "th[aria-sort] button.crm-sort::after{content:'\\00a0\\2195';color:#8c959f;font-size:.85em}",
      "th[aria-sort=ascending] button.crm-sort::after{content:'\\00a0\\25b2';color:inherit}",
      "th[aria-sort=descending] button.crm-sort::after{content:'\\00a0\\25bc';color:inherit}"
    ].join("\n");
    (doc.head || doc.documentElement).appendChild(style);
  }

  function start() {
    addStyle();
    Array.prototype.forEach.call(doc.querySelectorAll("table"), function (table) {
      if (!table.parentNode.classList || !table.parentNode.classList.contains("crm-table-scroll")) {
        var wrap = doc.createElement("div");
        wrap.className = "crm-table-scroll";
        table.parentNode.insertBefore(wrap, table);
        wrap.appendChild(table);
      }
      enhance(table);
    });
  }

  if (doc.readyState === "loading") {
    doc.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
