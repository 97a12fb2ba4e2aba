"""What comes out of runs: tables and figures, read from the runs' files (never training).

- ``results``: every run below a directory as one pandas row (``collect``), read from the
  runs' records and small files, never their stats pickles; the summary over seeds;
- ``figures``: the paper's figures (forgetting histogram, removal curves, removal window)
  from sorting files and results tables;
- ``datamap``: the dataset-cartography data map from the runs' stats files;
- ``tables``: stats and sorting files as pandas DataFrames (``forgetting.load_stats`` /
  ``load_sorting``).
- the paper's statistics over forgetting counts (docs/analyses.md), each a module of its own:
  ``first_learning`` (first learning event vs count), ``margin`` (misclassification margin vs
  forgetting events), ``stability`` (across seeds: pairwise and split-half), ``budgets``
  (counts after N epochs, unforgettable sets retrieving each other), ``correlation`` (Pearson,
  Spearman, precision/recall); ``stat_figures`` draws them and ``stat_commands`` is
  plot_figures.py's subcommands over them.
"""
