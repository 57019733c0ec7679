"""Ratios of medians between two samples of repeats, with a bootstrap interval and a verdict, as
pyperf's compare_to and asv compare judge them: the one statistic of compare, the report's
dimension sections and the merge of many machines.

A difference counts only when it is both statistically clear (the interval excludes 1) and
larger than a threshold (asv's factor of 1.1 by default): noise on a shared machine easily
moves a median by a few percent, and such a change is not worth a verdict.
"""

from __future__ import annotations

import numpy as np

RESAMPLES = 2000
# Pairs bootstrapped at once: their resamples take CHUNK x RESAMPLES x repeats numbers.
CHUNK = 256


def ratio_intervals(pairs, confidence: float, seed: int = 0) -> np.ndarray:
    """Percentile bootstrap intervals of median(new) / median(base), one (low, high) row per pair
    (new, base) of arrays: NaN with fewer than 2 repeats on a side, the ratio itself where neither
    side has any spread. Pairs of the same sizes share one draw of resample indices (as one seed per
    pair would give them), so that thousands of settings take seconds, not one call each."""
    pairs = [(np.asarray(new, float), np.asarray(base, float)) for new, base in pairs]
    intervals = np.full((len(pairs), 2), np.nan)
    by_size: dict[tuple[int, int], list[int]] = {}
    for index, (new, base) in enumerate(pairs):
        if len(new) < 2 or len(base) < 2:
            continue
        if np.ptp(new) == 0 and np.ptp(base) == 0:  # no spread at all: the ratio is exact
            intervals[index] = np.median(new) / np.median(base)
            continue
        by_size.setdefault((len(new), len(base)), []).append(index)
    tail = 100 * (1 - confidence) / 2
    for (n_new, n_base), indices in by_size.items():
        rng = np.random.default_rng(seed)
        draw_new = rng.integers(0, n_new, size=(RESAMPLES, n_new))
        draw_base = rng.integers(0, n_base, size=(RESAMPLES, n_base))
        for start in range(0, len(indices), CHUNK):
            chunk = indices[start : start + CHUNK]
            new = np.stack([pairs[i][0] for i in chunk])  # (pairs, repeats)
            base = np.stack([pairs[i][1] for i in chunk])
            with np.errstate(invalid="ignore", divide="ignore"):  # inf / inf: NaN, no interval
                ratios = np.median(new[:, draw_new], axis=2) / np.median(base[:, draw_base], axis=2)
                intervals[chunk] = np.percentile(ratios, [tail, 100 - tail], axis=1).T
    return intervals


def ratio_interval(new, base, confidence: float, seed: int = 0) -> tuple[float, float]:
    """Bootstrap interval of median(new) / median(base); NaN with fewer than 2 on a side."""
    low, high = ratio_intervals([(new, base)], confidence, seed)[0]
    return float(low), float(high)


# The verdict where there is no interval: fewer than 2 repeats on a side tell nothing of the
# spread, so neither a difference nor its absence can be told.
TOO_FEW = "too few repeats"
VERDICTS = ("faster", "same", "slower", TOO_FEW)


def verdict(ratio: float, low: float, high: float, threshold: float) -> str:
    """faster / slower only when the interval excludes 1 and the change passes the threshold; same
    otherwise; TOO_FEW where there is no interval (fewer than 2 repeats on a side)."""
    if np.isnan(low) or np.isnan(high):
        return TOO_FEW
    if high < 1 and ratio <= 1 / threshold:
        return "faster"
    if low > 1 and ratio >= threshold:
        return "slower"
    return "same"
