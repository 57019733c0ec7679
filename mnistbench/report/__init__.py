"""The report side: the HTML report (papermill and nbconvert), its interactive tables, its
sections and figures (plots/), compare's and merge's pages, and the console's lines.

May import: pandas, matplotlib, seaborn, itables, papermill, nbconvert, and mnistbench's
results, measures and data sides and shared modules; never a framework, nor the training side
(tests/test_layers.py imports it with the frameworks blocked).
"""
