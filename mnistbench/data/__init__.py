"""The data side: what a dataset is, the readers of its formats, the verified sources it comes
from and the prepared file training loads (rules download and prepare).

May import: the standard library, numpy, pooch, and of mnistbench only its shared modules
(files, grid); never a framework, nor the training, measures, results or report sides.
"""
