"""The one table printer: aligned plain text for terminals and model cards, HTML for
notebooks. Numbers align right, text left; floats print with three decimals."""

from __future__ import annotations

import html
from dataclasses import dataclass, field


@dataclass
class Table:
    header: list[str]
    rows: list[list]
    title: str = ""
    footer: list[list] = field(default_factory=list)  # rows below a rule (totals, averages)

    @staticmethod
    def _cell(value) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    def __str__(self) -> str:
        body = [[self._cell(v) for v in row] for row in self.rows]
        foot = [[self._cell(v) for v in row] for row in self.footer]
        cells = body + foot
        widths = [max([len(str(h)), *(len(r[i]) for r in cells if i < len(r))]) for i, h in enumerate(self.header)]
        numeric = [bool(self.rows) and all(isinstance(r[i], (int, float)) for r in self.rows)
                   for i in range(len(self.header))]

        def line(row: list[str]) -> str:
            return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric)).rstrip()

        rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
        out = [self.title] if self.title else []
        out += [line([str(h) for h in self.header]), rule]
        out += [line(r) for r in body] or ["(none)"]
        if foot:
            out += [rule, *(line(r) for r in foot)]
        return "\n".join(out)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in self.header)
        rows = [[self._cell(v) for v in row] for row in [*self.rows, *self.footer]]
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
        if not rows:
            body = f'<tr><td colspan="{len(self.header)}"><i>(none)</i></td></tr>'
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        return str(self)
