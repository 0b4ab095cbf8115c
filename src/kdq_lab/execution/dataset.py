"""The dataset a plan reads, made ready before any notebook starts: generated (a built-in catalog), validated once,
stored as its validated copy, and bound into the plan (its prepared-split folders, its tuned runs' studies)."""

from __future__ import annotations

from kdq_lab.data.registry import resolve_dataset
from kdq_lab.data.validate import raw_hashes
from kdq_lab.data.validated import store_validated
from kdq_lab.errors import KdqError
from kdq_lab.experiment.plan import Plan, bind_dataset


def prepare_dataset(plan: Plan, progress: bool = True) -> Plan:
    """Generate the plan's dataset if it is a built-in still to be generated, validate it (every problem listed,
    before any notebook starts) and store its validated copy, which every notebook then loads; the plan, bound.

    A plan made for a dataset that exists keeps its raw files' hashes (they are not computed twice).
    """
    folder = resolve_dataset(plan.experiment.dataset, plan.paths, progress=progress)
    if folder != plan.dataset_dir:  # only a file system changed under the lab gets here
        raise KdqError(f"the dataset {plan.experiment.dataset!r} moved from {plan.dataset_dir} to {folder}")
    hashes = plan.hashes if plan.hashes is not None else raw_hashes(folder)
    store_validated(folder, plan.paths.processed, hashes)
    return plan if plan.hashes is not None else bind_dataset(plan, hashes)
