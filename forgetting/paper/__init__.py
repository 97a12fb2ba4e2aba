"""reproduce_paper.py's library: every experiment of the paper as the project's own commands.

``scales`` (the paper's setting and the miniature on the bundled digits), ``experiments`` (the
experiment table: ids, what each shows, the paper's numbers), ``commands`` (the steps: sweeps,
orderings, tables, figures, shared between experiments), ``runner`` (run them, skipping what is
finished) and ``compare`` (the paper's numbers beside ours). Needs files/, sweep/ and
analysis/measured.py; the steps themselves are the scripts, run as child processes.
"""
