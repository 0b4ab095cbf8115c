"""Sortable, filterable HTML tables that work offline: escaped cells and a small inline script, no library.

Each table is self-contained: a filter box, the table (no index column; a cell may carry
a hover title and a link) and a script that sorts on a click on a column header (numbers
by value, text alphabetically; a second click reverses) and hides rows that do not
contain the filter text. Nothing is fetched from the network.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

#: The table behaviour, defined once per page and bound to each table by id.
SCRIPT = """
window.kdqTable = window.kdqTable || function (id) {
  var root = document.getElementById(id);
  var table = root.querySelector("table"), body = table.tBodies[0];
  var filter = root.querySelector("input");
  filter.addEventListener("input", function () {
    var text = filter.value.toLowerCase();
    Array.prototype.forEach.call(body.rows, function (row) {
      row.hidden = text !== "" && row.textContent.toLowerCase().indexOf(text) < 0;
    });
  });
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (head, column) {
    head.addEventListener("click", function () {
      var numeric = head.getAttribute("data-type") === "number";
      var order = head.getAttribute("aria-sort") === "descending" ? "ascending" : "descending";
      var sign = order === "ascending" ? 1 : -1;
      var key = function (row) {
        var cell = row.cells[column], value = cell.getAttribute("data-sort");
        if (value === null) { value = cell.textContent.trim(); }
        if (!numeric) { return value.toLowerCase(); }
        return value === "" ? NaN : parseFloat(value);
      };
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (numeric && isNaN(x) !== isNaN(y)) { return isNaN(x) ? 1 : -1; }
        return x < y ? -sign : x > y ? sign : 0;
      });
      rows.forEach(function (row) { body.appendChild(row); });
      Array.prototype.forEach.call(heads, function (other) { other.removeAttribute("aria-sort"); });
      head.setAttribute("aria-sort", order);
    });
  });
};
"""

STYLE = """
.kdq-table input { margin: 0.3em 0; padding: 0.2em 0.4em; min-width: 18em; }
.kdq-table table { border-collapse: collapse; font-size: 0.85em; }
.kdq-table th { cursor: pointer; user-select: none; background: #f3f3f3; position: sticky; top: 0; }
.kdq-table th[aria-sort=descending]::after { content: " \\25BC"; }
.kdq-table th[aria-sort=ascending]::after { content: " \\25B2"; }
.kdq-table th, .kdq-table td { padding: 0.2em 0.6em; border-bottom: 1px solid #ddd; text-align: left; }
.kdq-table td.num { text-align: right; font-variant-numeric: tabular-nums; }
.kdq-table caption { text-align: left; font-weight: bold; padding: 0.3em 0; }
"""


@dataclass(frozen=True)
class Cell:
    """One table cell: shown ``text``; ``sort`` key (numbers sort numerically); hover ``title``; link ``href``."""

    text: str
    sort: float | str | None = None
    title: str | None = None
    href: str | None = None


def number(value: float | None, digits: int = 4) -> Cell:
    """A numeric cell (empty when missing), sorted by its value."""
    if value is None or not math.isfinite(value):
        return Cell("", "")
    return Cell(f"{value:.{digits}f}", float(value))


def _cell(cell: Cell, numeric: bool) -> str:
    attributes = ' class="num"' if numeric else ""
    if cell.sort is not None:
        attributes += f' data-sort="{escape(str(cell.sort))}"'
    if cell.title:
        attributes += f' title="{escape(cell.title)}"'
    text = escape(cell.text)
    if cell.href:
        text = f'<a href="{escape(cell.href)}">{text}</a>'
    return f"<td{attributes}>{text}</td>"


def table_html(
    table_id: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    caption: str = "",
    numeric: Sequence[str] = (),
) -> str:
    """An offline sortable, filterable table (see the module docstring); every string is escaped.

    ``table_id`` is the element id the script binds to: letters, digits, ``_`` and ``-``.
    """
    if not re.fullmatch(r"[A-Za-z][\w-]*", table_id):
        raise ValueError(f"table id {table_id!r}: use letters, digits, _ and - (starting with a letter)")
    heads = "".join(
        f'<th data-type="{"number" if c in numeric else "text"}" title="정렬 (click to sort)">{escape(c)}</th>'
        for c in columns
    )
    kinds = [c in numeric for c in columns]
    body = "\n".join("<tr>" + "".join(_cell(c, n) for c, n in zip(row, kinds)) + "</tr>" for row in rows)
    caption_html = f"<caption>{escape(caption)}</caption>" if caption else ""
    return (
        f"<style>{STYLE}</style>"
        f'<div class="kdq-table" id="{escape(table_id)}">'
        '<input type="search" placeholder="필터 (filter)" aria-label="filter rows">'
        f"<table>{caption_html}<thead><tr>{heads}</tr></thead><tbody>\n{body}\n</tbody></table>"
        f"<script>{SCRIPT}window.kdqTable({json.dumps(table_id)});</script></div>"
    )
