"""The results side: a run's evaluation tables and MLPerf log, the summaries (runs.csv,
settings.csv, ...), FLOPs and energy columns, result sets read from elsewhere, and the ratios
with their intervals and verdicts.

May import: pandas, numpy, scipy, mlperf-logging, and mnistbench's data and measures sides and
shared modules; never a framework, nor the training side (tests/test_layers.py imports it with
the frameworks blocked), nor the report side.
"""
