"""Execution of a plan: notebooks through papermill in warm kernels (:mod:`~kdq_lab.execution.notebooks`), where
units run (:mod:`~kdq_lab.execution.backends`, :mod:`~kdq_lab.execution.cluster`), the run cache, and the runner
that builds the report folder and its manifest (:mod:`~kdq_lab.execution.runner`)."""
