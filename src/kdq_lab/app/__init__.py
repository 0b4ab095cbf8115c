"""What ``kdq-lab run`` and ``kdq-lab tune`` do, as Python functions: thin wiring of the experiment's plan, its
execution and tuning (:mod:`~kdq_lab.app.run`, :mod:`~kdq_lab.app.tune`)."""
