"""Files: every name and suffix (``naming``), atomic replacement (``atomic``), the run's stats
log (``stats_log``), the original's stats pickle (``stats_pickle``), the restricted loader
(``safe_pickle``), output directory checks (``outdir``), a resume state's plain entries
without its weights (``resume_scalars``), the lock that keeps two processes off one run
(``run_lock``). No torch here."""
