"""Search spaces: where a run's hyperparameters may go, checked against the model's own configuration.

A run's ``search:`` block maps parameters to ranges::

    search:
      no_components: {int: [8, 128], log: true}
      learning_rate: {float: [0.005, 0.2], log: true}
      normalize: {choice: [none, l1]}

or says ``search: default``: the model's registered default space, without the
parameters the run fixes itself (``params:``, ``grid:``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kdq_lab.checks import first_repeat, is_finite, is_int, is_number
from kdq_lab.errors import KdqError
from kdq_lab.limits import MAX_CHOICES, too_many
from kdq_lab.models import ModelSpec

KINDS = ("int", "float", "choice")


@dataclass(frozen=True)
class Range:
    """Where one parameter may go: an integer or float interval (optionally log-scaled), or a choice."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """The value an Optuna trial proposes."""
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low or 0), int(self.high or 0), log=self.log)
        if self.kind == "float":
            return trial.suggest_float(self.name, float(self.low or 0), float(self.high or 0), log=self.log)
        return trial.suggest_categorical(self.name, list(self.choices))

    def to_dict(self) -> dict[str, Any]:
        """The YAML form."""
        if self.kind == "choice":
            return {"choice": list(self.choices)}
        return {self.kind: [self.low, self.high], **({"log": True} if self.log else {})}

    def values(self) -> list[Any]:
        """Values that must all be valid for the model: the bounds, or every choice."""
        return list(self.choices) if self.kind == "choice" else [self.low, self.high]

    def contains(self, value: Any) -> bool:
        """Whether a trial could have proposed ``value`` (a choice compares type and value: ``1`` is not ``true``)."""
        if self.kind == "choice":
            return any(type(choice) is type(value) and choice == value for choice in self.choices)
        wanted = is_int if self.kind == "int" else is_number
        return wanted(value) and float(self.low or 0) <= value <= float(self.high or 0)


def parse_range(name: str, raw: Any) -> Range:
    """One parameter's range from its YAML form; raises :class:`KdqError` saying what was expected."""
    if not isinstance(raw, dict) or not (set(raw) - {"log"}) or len(set(raw) - {"log"}) != 1:
        raise KdqError("expected one of {int: [low, high]}, {float: [low, high]} (each with optional log: true) "
                       "or {choice: [value, ...]}")  # fmt: skip
    (kind,) = set(raw) - {"log"}
    if kind not in KINDS:
        raise KdqError(f"unknown range kind {kind!r}; use int, float or choice")
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise KdqError(f"log must be true or false, not {log!r}")
    bounds = raw[kind]
    if kind == "choice":
        if log:
            raise KdqError("log applies to int and float ranges, not to a choice")
        if not isinstance(bounds, list) or not bounds:
            raise KdqError("a choice needs a non-empty list of values")
        if problem := too_many(len(bounds), MAX_CHOICES, "choices"):
            raise KdqError(problem)
        if repeat := first_repeat(bounds):
            raise KdqError(
                f"a choice lists a value twice: {bounds[repeat[1]]!r} is the same as {bounds[repeat[0]]!r} "
                "once YAML has read them (1, 01 and 0x1 are one number; l1 and 'l1' one text)"
            )
        return Range(name, "choice", choices=tuple(bounds))
    wanted = is_int if kind == "int" else is_finite
    if not isinstance(bounds, list) or len(bounds) != 2 or not all(wanted(b) for b in bounds):
        raise KdqError(f"{kind} expects [low, high] with two {'integers' if kind == 'int' else 'numbers'}, "
                       f"not {bounds!r}")  # fmt: skip
    low, high = bounds
    if not low < high:
        raise KdqError(f"empty range [{low}, {high}]: low must be below high")
    if log and low <= 0:
        raise KdqError(f"a log range must stay above 0, not start at {low}")
    return Range(name, kind, low, high, log)


def parse_space(
    raw: Any, spec: ModelSpec, fixed: dict[str, Any]
) -> tuple[dict[str, Range], list[tuple[str, Any, str]]]:
    """A run's search space and its problems as (parameter, value, message).

    ``raw`` is the run's ``search:`` value (``"default"`` or a mapping); ``fixed`` the
    parameters the run sets itself, which a space may not also search.
    """
    if raw == "default":
        raw = spec.default_search(fixed)
    if not isinstance(raw, dict) or not raw:
        return {}, [("", raw, "expected 'default' or a mapping parameter: range")]
    allowed = spec.parameter_names()
    space, problems = {}, []
    for name, value in raw.items():
        if name not in allowed:
            problems.append((str(name), name, f"not a parameter of {spec.kind}; allowed: {', '.join(allowed)}"))
            continue
        if name in fixed:
            problems.append((str(name), name, "the run fixes this parameter in params or grid; search it or fix it"))
            continue
        try:
            span = parse_range(str(name), value)
            for probe in span.values():
                spec.make({**fixed, name: probe})
        except KdqError as exc:
            problems.append((str(name), value, str(exc)))
            continue
        space[str(name)] = span
    return space, problems
