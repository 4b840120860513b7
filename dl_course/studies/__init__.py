"""The logic of each study in ``experiments/`` (launchers stay thin: config + one call here)."""
