"""Measures that need no framework: FLOPs (by hand for the shipped models, layer by layer for
any built model), the machine's attributes and load, and the CPUs' energy counters.

May import: the standard library, numpy, psutil, py-cpuinfo, and mnistbench's data side and
shared modules; never a framework at import, nor the training, results or report sides (the
training side calls these; model_flops reads a model it is given).
"""
