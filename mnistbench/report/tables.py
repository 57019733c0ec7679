"""Interactive tables for the report: sortable, searchable and paged in the page itself.

itables in its offline mode: `init()` embeds DataTables (its JavaScript and CSS, about 1 MB) in the
notebook's output once, so the exported HTML opens without network; `to_html()` then gives a
DataFrame as a DataTable that needs nothing else.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from itables import init_notebook_mode, to_html_datatable

# Passed with every table rather than set in itables.options, so that an itables.toml of the user's
# (which itables reads at import) cannot change them, and no other DataFrame output is affected.
OPTIONS = {
    # Tables load DataTables from the init() output, never from a CDN.
    "connected": False,
    # By default itables downsamples a table whose data exceed 64 KB (by its estimate of 8 bytes a
    # cell: the runs table from about 600 runs), dropping rows from the middle that the search box
    # then cannot find. The report lists every run, so downsampling is off: the page grows with the
    # grid instead (145 KB for 1000 rows of 6 columns).
    "maxBytes": 0,
    "maxRows": 0,
    "maxColumns": 0,
    # The count of matching rows sits next to the search box. (A non-default layout also keeps the
    # controls on tables that fit one page, which itables would otherwise strip.)
    "layout": {"topStart": "info", "topEnd": "search", "bottomStart": "pageLength", "bottomEnd": "paging"},
    "classes": "display compact",
    # Left-aligned under the controls, not centred between them.
    "style": "table-layout:auto;width:auto;margin:0",
    # The lab template right-aligns every cell; text reads better left-aligned, numbers stay right.
    # (Selectors more specific than the template's own.) A wide table scrolls sideways under its
    # controls rather than squeezing its columns: the setting column keeps each label on one line.
    "css": (
        ".jp-RenderedHTMLCommon table.dataTable :is(th, td) {text-align: left}"
        " .jp-RenderedHTMLCommon table.dataTable :is(th, td).dt-type-numeric {text-align: right}"
        " .jp-RenderedHTMLCommon table.dataTable :is(th, td).setting {white-space: nowrap}"
        " div.dt-container div.dt-layout-table {overflow-x: auto}"
    ),
    "showIndex": False,
    "show_dtypes": False,
    # A click anywhere on a column's header sorts by it (by default only its small arrow does).
    "text_in_header_can_be_selected": False,
    # The spinning logo links to itables.org; the page should not link out for a loading state.
    "display_logo_when_loading": False,
}


def init() -> None:
    """Embeds DataTables in the notebook's output; call once, before the first `to_html()`."""
    # all_interactive=False: only the tables made by to_html() become DataTables.
    init_notebook_mode(all_interactive=False, connected=False)


def to_html(
    frame: pd.DataFrame,
    name: str,
    page_length: int = 25,
    float_format: Callable[[float], str] | None = "{:.4g}".format,
) -> str:
    """The HTML of `frame` as a DataTable whose <table> has the id `name`. A missing number shows as
    "-", missing text as an empty cell: never NaN or None."""
    frame = without_missing(frame, float_format)
    setting = [index for index, column in enumerate(frame.columns) if column == "setting"]
    # itables formats floats with pandas' own formatter (shown formatted, sorted by value).
    with pd.option_context("display.float_format", float_format):
        return to_html_datatable(
            frame,
            table_id=name,
            pageLength=page_length,
            lengthMenu=[10, 25, 100, {"label": "All", "value": -1}],
            **({"columnDefs": [{"targets": setting, "className": "setting"}]} if setting else {}),
            **OPTIONS,
        )


# A missing number's cell. DataTables counts "-" as empty, so a column of numbers and "-" still
# sorts as numbers.
MISSING_NUMBER = "-"


def without_missing(frame: pd.DataFrame, float_format: Callable[[float], str] | None = "{:.4g}".format):
    """`frame` with no missing value left to print as NaN, None or <NA>: text columns hold "" there;
    number columns with a gap become text, each number formatted by float_format, "-" in the gap."""
    frame = frame.copy()
    for column in frame.columns:
        values = frame[column]
        if not values.isna().any():
            continue
        if _numbers(values):
            frame[column] = [MISSING_NUMBER if pd.isna(v) else _number_text(v, float_format) for v in values]
        else:
            frame[column] = values.astype(object).where(values.notna(), "")
    return frame


def _numbers(values: pd.Series) -> bool:
    """Whether a column holds numbers only (a float column, or an object one of numbers and None)."""
    if pd.api.types.is_bool_dtype(values):
        return False
    if pd.api.types.is_numeric_dtype(values):
        return True
    present = values.dropna()
    return len(present) > 0 and present.map(lambda v: isinstance(v, int | float | np.number)).all()


def _number_text(value, float_format) -> str:
    is_float = isinstance(value, float | np.floating)
    return float_format(value) if is_float and float_format else str(value)


def static_html(frame: pd.DataFrame, name: str, float_format=None, missing: str = MISSING_NUMBER) -> str:
    """A short table as plain HTML (class "dataframe", in a box that scrolls sideways when it is wider
    than the page), every missing value as `missing`, never NaN or None."""
    text = frame.select_dtypes(exclude="number").columns  # na_rep misses None in a text column
    filled = frame.astype({column: object for column in text}).fillna({column: missing for column in text})
    table = filled.to_html(table_id=name, index=False, na_rep=missing, float_format=float_format)
    return f'<div class="wide-table">{table}</div>'
