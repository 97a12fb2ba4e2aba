"""The training loop and what keeps it durable.

- ``loop``: ``TrainingJob``, ``train_epoch``, ``evaluate``, ``run_training``, ``run_job``;
- ``custom``: ``Recorder``, what the loop (and a user's own loop) records and saves through;
- ``sampling``: which positions each epoch presents (``UniformOrder``, the original's);
- ``recorder``: per-example loss, correctness and margin of every presentation;
- ``saver``: ``RunSaver``, resume, the commit thread, the final legacy pickle, signals;
- ``refresher``: the child process that keeps the legacy pickle near the run;
- ``resume_state``: the resume state file; ``optim``: optimisers and schedules.

Kept free of imports here: the refresher child imports this package and must start fast.
"""
