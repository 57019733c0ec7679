"""The training side: what runs inside a training job and a ceiling job. The supervisor and
the training process, the models and their frame, the runtime (CPUs, threads, backend,
imports, seeds), the pipeline, compilation ahead, the epochs and their clocks, the run's
output files, and the ceiling probes.

May import: frameworks (lazily, in the training process only), the data and measures sides,
and mnistbench's shared modules; never the results or report sides.
"""
