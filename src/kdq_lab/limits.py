"""Every bound on what a file or flag can ask for, in one place (the README lists them).

Nothing a user writes may make the lab run for minutes or use gigabytes before it refuses:
each size below is checked up front, from the YAML, a flag, a header or a file's metadata,
before the work it would cost starts. The bounds are far above what the lab's own data needs
(the ``large`` catalog: 1.2M users, 120k items, 22M events) and below what would exhaust a
machine or overflow what numpy and LightFM accept.
"""

from __future__ import annotations

from typing import Any

from kdq_lab.errors import KdqError

# ----------------------------------------------------------------------------- experiments and flags

#: Largest seed: numpy's ``RandomState`` (LightFM's ``random_state``, Optuna's sampler) takes 32 bits.
MAX_SEED = 2**32 - 1
#: Seeds per experiment.
MAX_SEEDS = 100
#: Splits per experiment.
MAX_SPLITS = 50
#: Revealed positives per held-out user of a ``warm_up`` split (``shots``, ``max_shots``).
MAX_SHOTS = 1000
#: Extra notebooks an experiment runs once each (``notebooks:``).
MAX_NOTEBOOKS = 50
#: Distinct k values per experiment.
MAX_K_VALUES = 20
#: Largest k (experiments, ``kdq-lab recommend --k``, ``kdq-lab train --k``): a top-k list, not a catalog dump.
MAX_K = 1000
#: Bootstrap resamples per interval (each costs a pass over the users).
MIN_BOOTSTRAP_SAMPLES, MAX_BOOTSTRAP_SAMPLES = 100, 100_000
#: Default of ``--max-runs``: trainings (runs after grid expansion × splits × seeds) an experiment may ask for.
MAX_TRAININGS = 1000
#: The most ``--max-runs`` may allow (counting the trainings is arithmetic; running them is not).
MAX_TRAININGS_CEILING = 100_000
#: Processes or threads a flag or parameter may ask for (``--jobs``, ``num_threads``).
MAX_WORKERS = 256
#: Values of a search space's ``choice`` list (each is checked against the model's configuration).
MAX_CHOICES = 1000
#: Tuning budget per run × split: trials, and seconds (a week).
MAX_TRIALS, MAX_TUNING_SECONDS = 10_000, 7 * 24 * 3600
#: Resubmissions of a run on a cluster (``--retries``) and benchmark repeats (``--repeats``).
MAX_RETRIES, MAX_REPEATS = 100, 100
#: Shuffles per field of permutation importance (``ablation.permutations``; each ranks every evaluated user again).
MAX_PERMUTATIONS = 1000

# ----------------------------------------------------------------------------- datasets

#: Rows of a users or items table (also the most users ``sample_users.n`` or a model may sample).
MAX_ENTITY_ROWS = 10_000_000
#: Rows of an interactions table (read in chunks, but each row costs time).
MAX_INTERACTION_ROWS = 50_000_000
#: Feature columns declared per side (categorical + multi-valued + numeric).
MAX_FEATURE_COLUMNS = 100
#: Quantile ``bins`` of a numeric feature, and explicit ``edges``.
MAX_BINS, MAX_EDGES = 1000, 1000
#: Distinct feature values per side (the vocabulary), checked when it is built or loaded.
MAX_VOCABULARY = 5_000_000
#: Columns of a CSV header or a Parquet schema.
MAX_COLUMNS = 1000
#: Bytes of a CSV line, the header included (a line longer than this is refused before pandas reads it).
MAX_LINE_BYTES = 1 << 20
#: A Parquet table may decode to at most this many times its size on disk (a decompression bomb) ...
MAX_EXPANSION = 200
#: ... once it decodes to more than this many bytes (small files may compress well).
EXPANSION_FLOOR = 64 << 20
#: Bytes of a Parquet footer (its metadata), read before any data.
MAX_PARQUET_FOOTER_BYTES = 16 << 20

# ----------------------------------------------------------------------------- structured files

#: Bytes of a YAML file: the lab's are a few kB, and PyYAML composes about 0.2 MB a second.
MAX_YAML_BYTES = 1 << 20
#: Nesting depth of YAML (mappings and lists inside each other).
MAX_YAML_DEPTH = 64
#: Bytes of a JSON record (summaries, manifests, vocabularies).
MAX_JSON_BYTES = 16 << 20
#: Bytes of a saved model's ``model.json`` (it lists every user and item id: 10 million ids fit).
MAX_MODEL_JSON_BYTES = 256 << 20
#: Arrays in one ``.npz`` file.
MAX_NPZ_MEMBERS = 64
#: Elements of one array in an ``.npz`` file, whatever sizes its companion files declare.
MAX_ARRAY_ELEMENTS = 1 << 31

# ----------------------------------------------------------------------------- model parameters

#: LightFM: embedding size, epochs, negatives sampled per positive (WARP).
MAX_COMPONENTS, MAX_EPOCHS, MAX_SAMPLED = 1024, 10_000, 1000
#: Learning rate, and L2 penalties per sample (LightFM's ``item_alpha`` / ``user_alpha``): LightFM takes these,
#: and values far too large end in a clear divergence error after an epoch.
MAX_LEARNING_RATE, MAX_ALPHA = 1e6, 1e6
#: Weights that scale features or parts of a score (``identity_weight``, ``history_weight``).
MAX_WEIGHT = 1e6
#: ItemKNN: neighbours kept per item, and the shrink term.
MAX_NEIGHBORS, MAX_SHRINK = 100_000, 1e9
#: EASE: items of its dense items × items matrix (50,000² float64 is 20 GB), and its L2 penalty.
MAX_EASE_ITEMS, MAX_L2 = 50_000, 1e12
#: Popularity's recent window (a century).
MAX_WINDOW_DAYS = 36_500


def too_many(count: int, limit: int, what: str) -> str | None:
    """Why ``count`` ``what`` are refused (``None`` within ``limit``), e.g. ``10,000 seeds: at most 100``."""
    return None if count <= limit else f"{count:,} {what}: at most {limit:,} are allowed"


def check_at_most(owner: str, count: int, limit: int, what: str) -> None:
    """Raise :class:`KdqError` naming ``owner`` when ``count`` ``what`` exceed ``limit``."""
    problem = too_many(count, limit, what)
    if problem:
        raise KdqError(f"{owner}: {problem}")


def size_of(value: Any) -> int:
    """How many entries a YAML value asks for: a list's or mapping's length, 1 for a scalar, 0 for null."""
    if value is None:
        return 0
    return len(value) if isinstance(value, (list, dict)) else 1
