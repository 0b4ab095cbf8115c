"""The comparison report: tables (:mod:`~kdq_lab.report.comparison`), Findings, figures, HTML and its checks.

Depends only on the typed run records, the experiment's description and the evaluation's statistics.
"""
