"""Effects planted in a generated KDQ catalog, so that a research conclusion can be checked against a known answer.

The default :class:`Plant` plants nothing: the catalog is byte-identical to one generated
without it. Each field plants one effect, by construction:

``inert_fields``
    User profile columns written *shuffled across users* after behaviour was drawn from the
    true profile: the written column has the same values and frequencies, and no effect on
    behaviour at all (e.g. "this sign-up question cannot help").
``random_occupation``
    Users listing this occupation pick topics and styles uniformly at random and engage with a
    constant probability: their positives follow popularity and nothing else (e.g. "the
    curation fails this group"). The ground truth knows it, so the oracle is their true ceiling.
``hidden_taste``
    Scale of every hidden, personal part of taste (topic taste, style taste, content-type
    taste, price sensitivity) between 0 and 1. At 0 the profile carries all the signal that
    history could add; at 1 (the default) the catalog is as usual.

Plants draw their own random numbers (a stream of their own), so an effect never moves the
rest of the catalog.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from kdq_lab.checks import check_number
from kdq_lab.errors import KdqError

#: User columns of the catalog a plant may make inert.
PROFILE_COLUMNS = ("occupations", "interests", "goals", "coding_experience", "age_band", "region")
#: Engagement probability of an exposure for users who behave at random.
RANDOM_ENGAGEMENT = 0.3


@dataclass(frozen=True)
class Plant:
    """Effects planted in a generated catalog (see the module docstring); the default plants nothing."""

    inert_fields: tuple[str, ...] = ()
    random_occupation: str | None = None
    hidden_taste: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "inert_fields", tuple(self.inert_fields))
        unknown = sorted(set(self.inert_fields) - set(PROFILE_COLUMNS))
        if unknown or len(set(self.inert_fields)) != len(self.inert_fields):
            raise KdqError(
                f"inert fields {list(self.inert_fields)}: each must be one of {', '.join(PROFILE_COLUMNS)}, once"
            )
        check_number("plant", "hidden_taste", self.hidden_taste, 0, high=1)

    @property
    def empty(self) -> bool:
        """Whether nothing is planted (the catalog is the usual one)."""
        return self == NOTHING

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["inert_fields"] = list(self.inert_fields)
        return data


def check_occupation(plant: Plant, occupations: list[str]) -> None:
    """Refuse a random occupation the catalog does not have."""
    if plant.random_occupation is not None and plant.random_occupation not in occupations:
        raise KdqError(
            f"random_occupation {plant.random_occupation!r} is not an occupation of the catalog; "
            f"choose one of {', '.join(occupations)}"
        )


def mix(values: np.ndarray, typical: np.ndarray | float, scale: float) -> np.ndarray:
    """``values`` moved towards ``typical`` by the hidden-taste ``scale`` (returned unchanged at 1)."""
    return values if scale == 1.0 else scale * values + (1.0 - scale) * np.asarray(typical)


def shuffle_inert(users: pd.DataFrame, plant: Plant, rng: np.random.Generator) -> pd.DataFrame:
    """The user table with each inert column permuted across users (one permutation per column)."""
    if not plant.inert_fields:
        return users
    out = users.copy()
    for column in plant.inert_fields:
        out[column] = out[column].to_numpy()[rng.permutation(len(out))]
    return out


#: The plant of every usual catalog: nothing.
NOTHING = Plant()
