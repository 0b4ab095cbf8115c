"""An experiment: its YAML read into a validated :class:`~kdq_lab.experiment.schema.Experiment`
(:mod:`~kdq_lab.experiment.schema`), and the :class:`~kdq_lab.experiment.plan.Plan` of what it executes
(:mod:`~kdq_lab.experiment.plan`)."""
