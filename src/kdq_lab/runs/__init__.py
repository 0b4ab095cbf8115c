"""One run: a model fitted, refitted and evaluated on one split over every seed (:mod:`~kdq_lab.runs.run`), and the
typed records the steps of an experiment exchange (:mod:`~kdq_lab.runs.records`)."""
