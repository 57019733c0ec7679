"""Interactive tables for the report: sortable, searchable and paged in the page itself.

itables in its offline mode: `init()` embeds DataTables (its JavaScript and CSS, about 1 MB) in the
notebook's output once, so the exported HTML opens without network; `to_html()` then gives a
DataFrame as a DataTable that needs nothing else.
"""

from __future__ import annotations

from collections.abc import Callable

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
    # (Selectors more specific than the template's own.)
    "css": (
        ".jp-RenderedHTMLCommon table.dataTable :is(th, td) {text-align: left}"
        " .jp-RenderedHTMLCommon table.dataTable :is(th, td).dt-type-numeric {text-align: right}"
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
    """The HTML of `frame` as a DataTable whose <table> has the id `name`."""
    # Missing text shows as an empty cell, not "NaN"; numbers keep their NaN so they still sort.
    text = frame.select_dtypes(exclude="number").columns
    frame = frame.astype({column: object for column in text}).fillna({column: "" for column in text})
    # itables formats floats with pandas' own formatter (shown formatted, sorted by value).
    with pd.option_context("display.float_format", float_format):
        return to_html_datatable(
            frame,
            table_id=name,
            pageLength=page_length,
            lengthMenu=[10, 25, 100, {"label": "All", "value": -1}],
            **OPTIONS,
        )
