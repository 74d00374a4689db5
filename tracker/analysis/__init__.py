"""What the records mean: standings against the expected levels, trajectories, calibration, the
graduation forecast (queries in SQL, forecast the model), coverage of the assessment plan (coverage) and overdue work
(overdue). Every read is scoped to its viewer. May import: access, storage, core, data_models.
"""
