"""Sweeps over the training scripts and what comes out of them.

- ``results``: every run below a directory as one pandas row (``collect``), read from the
  runs' small files, never their stats pickles; the summary over seeds;
- ``figures``: the paper's figures (forgetting histogram, removal curves, removal window)
  from sorting files and results tables;
- ``datamap``: the dataset-cartography data map from the runs' stats files.
"""
