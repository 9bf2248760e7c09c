"""Body-order statistics along trajectories: readers, logger, statistics, reports."""

from .logger import BodyOrderLogger
from .ranges import read_ranges, training_ranges, training_share_ranges
from .readers import BodyOrderTrace, read_ase_log, read_ipi_extras, read_ipi_properties, read_run
from .report import WatchResult, load_trace, report_text, share_ranges, watch, write_plots
from .statistics import SeriesStatistics, autocorrelation_time, mean_and_error

__all__ = [
    "BodyOrderLogger",
    "BodyOrderTrace",
    "SeriesStatistics",
    "WatchResult",
    "autocorrelation_time",
    "load_trace",
    "mean_and_error",
    "read_ase_log",
    "read_ipi_extras",
    "read_ipi_properties",
    "read_ranges",
    "read_run",
    "report_text",
    "share_ranges",
    "training_ranges",
    "training_share_ranges",
    "watch",
    "write_plots",
]
