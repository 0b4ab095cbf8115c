"""kdq_lab: the research lab behind KDQ (큰당큐) recommendations.

The package does the repeatable work (data contract, matrices, splits, models,
evaluation, reports); the notebooks in ``notebooks/`` narrate and plot.
"""

__version__ = "0.1.0"
