"""Sweeps over the training scripts: expansion and execution only (what comes out of them is
read by forgetting/analysis).

- ``grid``: ``--grid`` axes expanded into the commands a shell loop runs;
- ``plan``: the grid checked against the script's own flags, and each run's state (to start,
  to continue with --resume, finished) read from its files;
- ``connect``: the sweep's own local Ray, or a cluster joined with a bounded wait;
- ``execute``: the runs as Ray tasks (retries, logs, progress, Ctrl-C); ``progress``: what
  it shows meanwhile.
"""
