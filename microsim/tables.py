"""Results as tables: rows of plain values, an HTML table for notebooks, a pandas DataFrame when pandas is there.

pandas is optional (``pip install microsim[pandas]``); nothing here imports it
until :func:`dataframe` is called.
"""
from __future__ import annotations

import html
import math
from typing import Sequence


def _cell(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return format(value, ".4g")
    if isinstance(value, (list, tuple)):
        return " + ".join(map(str, value))
    return str(value)


def html_table(rows: Sequence[dict], columns: Sequence[str], caption: str = "") -> str:
    """An HTML table of ``rows`` (dicts) with the given columns, numbers to 4 significant digits.

    >>> html_table([{"a": 1.23456, "b": True}], ["a", "b"])[:7]
    '<table>'
    """
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{html.escape(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr></thead><tbody>")
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c, '')))}</td>" for c in columns) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def dataframe(rows: Sequence[dict], index: Sequence[str] = ()):
    """A pandas DataFrame of ``rows``, indexed by the ``index`` columns; needs pandas (an optional extra)."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("to_dataframe() needs pandas, which microsim does not install by itself: "
                          "pip install pandas (or microsim[pandas])") from None
    df = pd.DataFrame(list(rows))
    if index:
        df = df.set_index(list(index))
    return df
