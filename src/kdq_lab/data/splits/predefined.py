"""``predefined``: a split shipped with the dataset (``predefined_splits`` in ``dataset.yaml``, e.g. MovieLens ``ua``).

The file lists (user, item, part) rows; events of pairs it does not list belong to no period.
Validation comes from the file when it lists validation pairs (then ``validation_fraction`` must be
0), or is carved per user temporally. ``test_fraction`` is not used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kdq_lab.data.splits.common import DROPPED, PARTS, TEST, TRAIN, VALIDATION, covers_pairs, lookup, pair_keys
from kdq_lab.data.splits.registry import Holdout, HoldoutRequest, SplitKind, SplitOptions, register
from kdq_lab.errors import KdqError

if TYPE_CHECKING:
    from kdq_lab.data.schema import DatasetSpec

NAME = "predefined"


@dataclass(frozen=True)
class PredefinedOptions(SplitOptions):
    """``predefined``: the split's name in the dataset's ``predefined_splits``."""

    predefined: str = field(default="", metadata={"help": "the split's name in dataset.yaml (e.g. ua)"})

    def __post_init__(self) -> None:
        if not self.predefined or not isinstance(self.predefined, str):
            raise KdqError(
                f"a predefined split needs 'predefined: <name>' (a split listed in dataset.yaml), "
                f"not {self.predefined!r}"
            )


def dataset_problems(options: PredefinedOptions, spec: DatasetSpec) -> list[tuple[str, Any, str]]:
    """The named split must be one of the dataset's."""
    if options.predefined in spec.predefined_splits:
        return []
    known = ", ".join(spec.predefined_splits) or "none"
    return [("predefined", options.predefined, f"the dataset has no such split; it has: {known}")]


def hold_out(request: HoldoutRequest) -> Holdout:
    """The file's test pairs; its validation pairs, if any, as the validation cut it gives."""
    assert isinstance(request.options, PredefinedOptions)
    raw, name, events = request.raw, request.options.predefined, request.events
    spec = raw.spec
    if name not in spec.predefined_splits:
        known = ", ".join(spec.predefined_splits) or "none"
        raise KdqError(f"dataset {raw.name} has no predefined split {name!r} (it has: {known})")
    table = pd.read_csv(raw.folder / spec.predefined_splits[name], dtype=str, keep_default_na=False)
    user, item = lookup(raw, table[spec.interactions.user], table[spec.interactions.item])
    n_items = request.shape[1]
    listed = pd.Series(pd.Index(PARTS).get_indexer(table["part"]), index=pair_keys(user, item, n_items))
    listed = listed[~listed.index.duplicated()]
    part = listed.reindex(pair_keys(events["user"].to_numpy(), events["item"].to_numpy(), n_items))
    part = part.fillna(DROPPED).to_numpy(dtype=np.int8)
    keys, parts = listed.index.to_numpy(), listed.to_numpy()
    everything = np.sort(keys)

    def cut(code: int, held: np.ndarray, validation: Holdout | None = None) -> Holdout:
        pairs = np.sort(keys[parts == code])
        return Holdout(NAME, held.astype(np.int8), pairs=pairs, listed=everything, validation=validation)

    validation = None
    if (parts == VALIDATION).any():
        if request.carve_validation:
            raise KdqError(
                f"split file {spec.predefined_splits[name]} already has a validation part; "
                "set validation_fraction: 0 to use it, or remove it from the file"
            )
        validation = cut(VALIDATION, part == VALIDATION)
    held = np.select([part == TEST, (part == TRAIN) | (part == VALIDATION)], [1, 0], -1)
    return cut(TEST, held, validation)


register(
    SplitKind(
        name=NAME,
        summary="a split file shipped with the dataset (e.g. MovieLens ua); validation from it or per user temporally",
        hold_out=hold_out,
        covers=covers_pairs,
        options=PredefinedOptions,
        validation_kind="user_temporal",
        dataset_problems=dataset_problems,
    )
)
