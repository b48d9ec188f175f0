"""Paired comparisons over seeds: the statistics of the quality benchmarks."""

import math
import statistics
from typing import Dict, Tuple

__all__ = ['paired_difference']


def paired_difference(
    values: Dict[int, float], reference: Dict[int, float]
) -> Tuple[float, float, float]:
    """``values - reference`` over the seeds both have: the mean difference
    and its 95% confidence interval (Student's t), ``(mean, low, high)``;
    the interval is NaN with fewer than two seeds."""
    diffs = [values[s] - reference[s] for s in values if s in reference]
    mean = statistics.mean(diffs)
    if len(diffs) < 2:
        return mean, float('nan'), float('nan')
    from scipy.stats import t

    half = float(t.ppf(0.975, len(diffs) - 1)) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return mean, mean - half, mean + half
