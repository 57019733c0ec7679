"""Log axes that read as plain numbers: ticks at 1, 2 and 5 of each decade (0.2, 0.5, 1, 2, 5 s),
labelled "0.2" rather than "2e-01", no two labels alike, minor ticks unlabelled. Every log axis of
the report, compare.html and the merged report goes through log_axis."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.ticker import Formatter, Locator, LogLocator, MaxNLocator, NullFormatter

# 1, 2 and 5 of each decade while their labels fit the axis; beyond that one tick a decade (or
# fewer: LogLocator then strides over decades), so that labels never run into each other.
FINE_SUBS = (1.0, 2.0, 5.0)


def plain_number(value: float, digits: int = 6) -> str:
    """0.2 as "0.2", 5000 as "5000", 1e-05 as "0.00001": never in powers of ten."""
    if not np.isfinite(value) or value <= 0:
        return ""
    # `digits` significant digits hide float noise (0.20000000000000001), then positional notation.
    return np.format_float_positional(float(f"{value:.{digits}g}"), trim="-")


class PlainFormatter(Formatter):
    """Tick labels as plain numbers, with as many significant digits as it takes to tell every tick
    of the axis from the others (3.00001 and 3.00002, never two "3")."""

    def __call__(self, value, position=None):
        return plain_number(value)

    def format_ticks(self, values):
        for digits in range(6, 17):
            labels = [plain_number(value, digits) for value in values]
            if len(set(labels)) == len(labels):
                break
        return labels


class PlainLogLocator(Locator):
    """Major ticks at 1, 2 and 5 of each decade when that many labels fit the axis (matplotlib's own
    estimate of the ticks that fit: Axis.get_tick_space), otherwise at powers of ten."""

    def __call__(self):
        low, high = self.axis.get_view_interval()
        return self.tick_values(low, high)

    def tick_values(self, vmin, vmax):
        vmin, vmax = sorted((vmin, vmax))
        if vmin <= 0 or not np.isfinite(vmax):
            return LogLocator().tick_values(max(vmin, 1e-300), vmax)
        room = self.axis.get_tick_space() if self.axis is not None else 9
        decades = np.arange(math.floor(math.log10(vmin)) - 1, math.ceil(math.log10(vmax)) + 2)
        ticks = np.outer(10.0**decades, FINE_SUBS).ravel()
        inside = ((ticks >= vmin) & (ticks <= vmax)).sum()
        if inside > room:  # too many to label: powers of ten (LogLocator strides over decades)
            locator = LogLocator(base=10, subs=(1.0,), numticks=max(room, 2))
            if self.axis is not None:
                locator.set_axis(self.axis)
            ticks = np.asarray(locator.tick_values(vmin, vmax))
            inside = ((ticks >= vmin) & (ticks <= vmax)).sum()
        if inside < 2:
            # A range narrower than one 1-2-5 step (0.55 to 0.65 s): a few evenly spaced ticks, half
            # as many as fit, since their labels ("0.625") are longer than the estimate assumes.
            ticks = np.asarray(MaxNLocator(nbins=max(2, room // 2)).tick_values(vmin, vmax))
        return ticks[ticks > 0]


def log_axis(ax, which: str) -> None:
    """Make the `which` ("x" or "y") axis of `ax` logarithmic with plain-number ticks at 1, 2 and 5."""
    getattr(ax, f"set_{which}scale")("log")
    axis = getattr(ax, f"{which}axis")
    axis.set_major_locator(PlainLogLocator())
    axis.set_major_formatter(PlainFormatter())
    axis.set_minor_formatter(NullFormatter())
