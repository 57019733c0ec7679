"""The report's tables and figures, one module per part of it; the notebook only arranges them
with captions.

labels: setting labels (the settings that vary in the grid) and spreads; key_results: the
opening lines; dimensions: one section per swept setting; tables: runs, settings and the seed
documents; time_to_accuracy: times to each accuracy target; figures: the remaining figures.
"""

from mnistbench.report.plots.dimensions import (
    DimensionSection,
    dimension_figure,
    dimension_sections,
    how_to_read,
    swept_dimensions,
)
from mnistbench.report.plots.figures import (
    accuracy_vs_train_time,
    bounded_settings,
    confusion_heatmap,
    learning_curves,
    pareto_front,
    phase_breakdown,
    seed_spread,
    seed_spread_plot,
    train_time_spread,
)
from mnistbench.report.plots.key_results import key_results
from mnistbench.report.plots.labels import finished, model_label, setting_label, spread
from mnistbench.report.plots.tables import machine_table, run_table, seed_comparison, settings_table

__all__ = [
    "DimensionSection",
    "accuracy_vs_train_time",
    "bounded_settings",
    "confusion_heatmap",
    "dimension_figure",
    "dimension_sections",
    "finished",
    "how_to_read",
    "key_results",
    "learning_curves",
    "machine_table",
    "model_label",
    "pareto_front",
    "phase_breakdown",
    "run_table",
    "seed_comparison",
    "seed_spread",
    "seed_spread_plot",
    "setting_label",
    "settings_table",
    "spread",
    "swept_dimensions",
    "train_time_spread",
]
