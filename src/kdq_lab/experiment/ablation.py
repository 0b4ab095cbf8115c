"""The onboarding study an experiment declares: which profile fields earn their place (``ablation:``).

::

    ablation:
      run: lightfm_hybrid-identity=true-normalize=l1   # a run (after grid expansion), or a list of runs
      split: cold_users                                # the split it is studied on (default: every split)
      fields: [occupations, interests, goals, coding_experience, age_band, region]
      mode: [drop_one, only_one]                       # which retrained variants (default: both)
      permutations: 20                                 # shuffles per field for permutation importance (0: none)

Each mode generates ordinary runs, like grid expansion: ``<run>-drop=<field>`` (``user_columns``
without the field) and ``<run>-only=<field>`` (``user_columns`` the field alone), the base run's
other parameters kept; the plan, cache, backends and report treat them as any run. With
``permutations``, the base run also measures permutation importance of the fields on that split
(:mod:`kdq_lab.runs.importance`; feature-aware models only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kdq_lab import limits
from kdq_lab.checks import is_int
from kdq_lab.data.schema import DatasetSpec
from kdq_lab.models import model_spec
from kdq_lab.yamlfile import YamlChecker

ABLATION_KEYS = {"run", "split", "fields", "mode", "permutations"}
#: Variants an ablation can generate, and the suffix of their run names.
MODES = {"drop_one": "drop", "only_one": "only"}
#: The parameter a run's model must take for its profile fields to be chosen.
COLUMNS_PARAMETER = "user_columns"


@dataclass(frozen=True)
class Ablation:
    """A validated ``ablation:`` block: base runs, the split, the fields, the variants and the shuffles."""

    runs: tuple[str, ...]
    split: str | None
    fields: tuple[str, ...]
    modes: tuple[str, ...]
    permutations: int

    def variants(self, run: str, columns: tuple[str, ...]) -> dict[str, tuple[str, str, tuple[str, ...]]]:
        """Generated run name → (mode, field, ``user_columns``), given the base run's profile ``columns``."""
        out = {}
        for mode in self.modes:
            for field in self.fields:
                kept = tuple(c for c in columns if c != field) if mode == "drop_one" else (field,)
                out[f"{run}-{MODES[mode]}={field}"] = (mode, field, kept)
        return out

    def importance(self, run: str, split: str) -> dict[str, Any] | None:
        """What the base ``run`` on ``split`` measures by permutation (``None``: nothing)."""
        if run not in self.runs or not self.permutations or (self.split is not None and split != self.split):
            return None
        return {"fields": list(self.fields), "repeats": self.permutations}

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": list(self.runs),
            "split": self.split,
            "fields": list(self.fields),
            "mode": list(self.modes),
            "permutations": self.permutations,
        }


def count_variants(raw: Any) -> int:
    """Runs an ``ablation:`` block would generate, read from the YAML alone (for the size check)."""
    if not isinstance(raw, dict):
        return 0
    runs, fields = limits.size_of(raw.get("run")), limits.size_of(raw.get("fields"))
    return runs * fields * limits.size_of(raw.get("mode", list(MODES)))


def parse_ablation(
    check: YamlChecker, raw: Any, runs: dict[str, Any], splits: set[str], spec: DatasetSpec | None
) -> Ablation | None:
    """The ``ablation:`` block, or ``None`` with its problems added to ``check`` on the YAML line (``runs``:
    expanded run definitions with ``model`` and ``params``)."""
    before = len(check.problems)
    data = check.mapping(raw, ("ablation",), ABLATION_KEYS, {"run", "fields"})
    if not data or not {"run", "fields"} <= set(data):
        return None
    names = data["run"] if isinstance(data["run"], list) else [data["run"]]
    if not names or not all(isinstance(n, str) for n in names) or check.repeated(("ablation", "run"), names):
        check.add(("ablation", "run"), data["run"], "expected a run name or a list of run names, each once")
        return None
    available = spec.users.feature_columns if spec is not None else None
    fields = data["fields"]
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
        check.add(("ablation", "fields"), fields, "expected a non-empty list of user feature columns")
        return None
    if check.repeated(("ablation", "fields"), fields):
        return None
    for field in fields:
        if available is not None and field not in available:
            known = ", ".join(available) or "none"
            check.add(("ablation", "fields"), field, f"not a user feature column of the dataset; it has: {known}")
    for name in names:
        _check_run(check, name, runs, fields)
    split = data.get("split")
    if split is not None and split not in splits:
        check.add(("ablation", "split"), split, f"not a split of this experiment; splits: {', '.join(sorted(splits))}")
    modes = data.get("mode", list(MODES))
    modes = modes if isinstance(modes, list) else [modes]
    if not all(isinstance(m, str) and m in MODES for m in modes) or check.repeated(("ablation", "mode"), modes):
        check.add(("ablation", "mode"), data.get("mode"), f"expected a list of {', '.join(MODES)}, each once")
    permutations = data.get("permutations", 0)
    if not is_int(permutations) or not 0 <= permutations <= limits.MAX_PERMUTATIONS:
        check.add(
            ("ablation", "permutations"),
            permutations,
            f"expected an integer >= 0 (at most {limits.MAX_PERMUTATIONS:,}): shuffles per field",
        )
    if len(check.problems) > before:
        return None
    return Ablation(tuple(names), split, tuple(fields), tuple(modes), permutations)


def _check_run(check: YamlChecker, name: str, runs: dict[str, Any], fields: list[str]) -> None:
    """Problems of one base run: unknown (or a grid name that expands to several), no profile fields to choose,
    fields it does not read."""
    where = ("ablation", "run")
    if name not in runs:
        expanded = [r for r in runs if r.startswith(f"{name}-")]
        hint = f"; it expands to {', '.join(expanded)}: name one" if expanded else f"; runs: {', '.join(runs)}"
        check.add(where, name, f"not a run of this experiment{hint}")
        return
    run = runs[name]
    if COLUMNS_PARAMETER not in model_spec(run.model).parameter_names():
        check.add(
            where,
            name,
            f"model {run.model!r} has no {COLUMNS_PARAMETER} parameter: its profile fields cannot be chosen",
        )
        return
    chosen = run.params.get(COLUMNS_PARAMETER)
    outside = [f for f in fields if chosen is not None and f not in chosen]
    if outside:
        check.add(where, name, f"fields {outside} are not among the run's {COLUMNS_PARAMETER} {list(chosen)}")
