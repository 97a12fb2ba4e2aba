"""Sweeps over the training scripts and what comes out of them.

- ``grid``: ``--grid`` axes expanded into the commands a shell loop runs;
- ``plan``: the grid checked against the script's own flags, and each run's state (to start,
  to continue with --resume, finished) read from its files;
- ``execute``: the runs as Ray tasks (retries, logs, progress, Ctrl-C);
- ``results``: every run below a directory as one pandas row (``collect``), read from the
  runs' small files, never their stats pickles; the summary over seeds;
- ``figures``: the paper's figures (forgetting histogram, removal curves, removal window)
  from sorting files and results tables;
- ``datamap``: the dataset-cartography data map from the runs' stats files.
"""
