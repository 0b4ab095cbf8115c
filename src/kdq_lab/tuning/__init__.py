"""Fair tuning with Optuna: search spaces (:mod:`~kdq_lab.tuning.space`) and studies (:mod:`~kdq_lab.tuning.study`)."""
