"""A copy of a dataset with small predefined split files (for the ``predefined`` split kind on the tiny catalog)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from kdq_lab.data.schema import read_spec, write_spec

#: Split files written by :func:`with_predefined`: ``fixed`` lists train and test pairs, ``with_validation`` also
#: validation pairs. Both leave a tenth of the pairs unlisted (their events belong to no period).
SPLIT_FILES = {"fixed": ("train", "test"), "with_validation": ("train", "validation", "test")}


def with_predefined(dataset: Path, out: Path) -> Path:
    """Copy ``dataset`` to ``out`` with the split files of :data:`SPLIT_FILES` (seeded, so always the same)."""
    out = Path(shutil.copytree(dataset, out))
    spec = read_spec(out)
    table = pd.read_csv(out / spec.interactions.file, dtype=str, keep_default_na=False)
    pairs = table[[spec.interactions.user, spec.interactions.item]].drop_duplicates()
    pairs = pairs.sort_values([spec.interactions.user, spec.interactions.item]).reset_index(drop=True)
    (out / "splits").mkdir()
    files = {}
    for seed, (name, parts) in enumerate(SPLIT_FILES.items()):
        draw = np.random.default_rng(seed).random(len(pairs))
        part = np.select([draw < 0.2, draw < 0.3], ["test", parts[1]], "train")  # validation, or more test
        listed = draw < 0.9  # the last tenth of the draws is not listed
        pairs.assign(part=part)[listed].to_csv(out / "splits" / f"{name}.csv", index=False)
        files[name] = f"splits/{name}.csv"
    write_spec(replace(spec, predefined_splits=files), out)
    return out
