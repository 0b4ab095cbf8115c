"""The KDQ default catalog: a deterministic synthetic copy of KDQ's content and people.

How people behave (the generative story, also written out as ground truth):

* Each user has topic tastes ``log θ_u`` = occupation affinities + goal affinities
  + age-band affinities + a hidden personal part. Declared interests are drawn from
  θ_u, so profile features carry real but incomplete signal.
* Each user also has hidden style tastes ρ_u over ``STYLES`` item styles, content-type
  preferences (partly from goals), a coding level and a price sensitivity.
* An exposure at time t picks a topic from θ_u(t) (topics drift: AI topics grow),
  a style from ρ_u, then an item of that topic and style published before t, in
  proportion to its long-tailed popularity.
* The engagement funnel (view → like / save / enroll → complete) then depends on
  the true affinity: topic taste, style taste, content type, difficulty versus
  coding level, price and quality.
* Recent sign-ups have at most ``RECENT_MAX_EVENTS`` events: cold start is common.

:class:`GroundTruth` recomputes the probability of a positive event for any
user-item pair at the end of the period: the oracle ceiling.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from kdq_lab.data import catalog_vocab as V
from kdq_lab.data.plants import NOTHING, RANDOM_ENGAGEMENT, Plant, check_occupation, mix, shuffle_inert
from kdq_lab.data.schema import DatasetSpec, EntitySpec, InteractionSpec, NumericFeature, write_spec
from kdq_lab.files import atomic_dir
from kdq_lab.limits import MAX_ENTITY_ROWS
from kdq_lab.names import check_name
from kdq_lab.parquetfile import read_parquet

START = np.datetime64("2024-02-29T15:00:00", "s")  # 2024-03-01 00:00 KST, KDQ's launch
END = np.datetime64("2026-10-31T14:59:59", "s")  # 2026-10-31 23:59:59 KST, the snapshot
SPAN = int((END - START) / np.timedelta64(1, "s"))
DAY = 86_400
YEAR = 365 * DAY
STYLES = 4
RECENT_DAYS = 45
RECENT_MAX_EVENTS = 5
#: Bump when the generator's output changes; built-in datasets on disk are then regenerated.
GENERATOR_VERSION = 2
KST = np.timedelta64(9, "h")

N_TOPICS = len(V.TOPICS)
N_TYPES = len(V.CONTENT_TYPES)
TYPE_NAMES = [t[0] for t in V.CONTENT_TYPES]
ENROLLABLE = np.array([name in ("강의", "행사") for name in TYPE_NAMES])
# probability factors of each funnel step given engagement p
LIKE, SAVE, ENROLL = 0.45, 0.30, 0.55
COMPLETE_DIRECT = np.array([{"영상": 0.40, "아티클": 0.35, "인터뷰": 0.35}.get(name, 0.0) for name in TYPE_NAMES])


@dataclass(frozen=True)
class Scale:
    """Size of a generated catalog, and how its tables are stored (``csv`` or ``parquet``)."""

    users: int
    items: int
    exposures_per_user: float
    chunk_users: int
    file_format: str = "csv"


SCALES: dict[str, Scale] = {
    "tiny": Scale(users=400, items=160, exposures_per_user=9.0, chunk_users=400),
    "small": Scale(users=1_500, items=500, exposures_per_user=12.0, chunk_users=1_500),
    "default": Scale(users=5_000, items=1_500, exposures_per_user=19.0, chunk_users=5_000),
    "large": Scale(users=1_200_000, items=120_000, exposures_per_user=11.0, chunk_users=50_000, file_format="parquet"),
}


def catalog_spec(name: str, file_format: str = "csv") -> DatasetSpec:
    """The ``dataset.yaml`` of a generated KDQ catalog whose tables are stored as ``file_format``."""
    ext = "parquet" if file_format == "parquet" else "csv"
    return DatasetSpec(
        name=name,
        title="KDQ 기본 카탈로그 (synthetic KDQ catalog: courses, articles, videos, events, community posts)",
        timestamp_format="iso",
        separator="|",
        file_format="parquet" if file_format == "parquet" else "csv",
        users=EntitySpec(
            file=f"users.{ext}",
            id="user_id",
            timestamp="signed_up_at",
            categorical=("coding_experience", "age_band", "region"),
            multi_valued=("occupations", "interests", "goals"),
            labels={
                "occupations": "직업",
                "interests": "관심사",
                "goals": "목표",
                "coding_experience": "코딩 경험",
                "age_band": "연령대",
                "region": "지역",
            },
        ),
        items=EntitySpec(
            file=f"items.{ext}",
            id="item_id",
            timestamp="published_at",
            categorical=("content_type", "difficulty", "price", "language", "creator"),
            multi_valued=("topics", "tags"),
            numeric=(NumericFeature("duration_min", edges=(0, 10, 30, 60, 180, 600, 3000)),),
            text=("title", "title_en"),
            labels={
                "content_type": "유형",
                "topics": "주제",
                "tags": "태그",
                "difficulty": "난이도",
                "price": "가격",
                "language": "언어",
                "creator": "크리에이터",
                "duration_min": "길이(분)",
            },
        ),
        interactions=InteractionSpec(
            file=f"interactions.{ext}",
            user="user_id",
            item="item_id",
            timestamp="occurred_at",
            event="event",
            event_weights={"view": 1.0, "like": 2.0, "save": 2.0, "enroll": 3.0, "complete": 4.0},
            positive_events=("like", "save", "enroll", "complete"),
            not_before_item_timestamp=True,
            not_before_user_timestamp=True,
        ),
        ground_truth="ground_truth",
    )


# ----------------------------------------------------------------------------- helpers


def _iso(seconds: np.ndarray) -> np.ndarray:
    """Seconds since START as ISO 8601 text in Korean time (``+09:00``)."""
    stamps = START + seconds.astype("timedelta64[s]") + KST
    return np.char.add(np.datetime_as_string(stamps, unit="s"), "+09:00")


def _affinity_matrix(rows: list[dict[str, float]], index: dict[str, int], width: int) -> np.ndarray:
    out = np.zeros((len(rows), width))
    for r, row in enumerate(rows):
        for key, value in row.items():
            out[r, index[key]] = value
    return out


TOPIC_AFF_OCC = _affinity_matrix([o[2] for o in V.OCCUPATIONS], V.TOPIC_INDEX, N_TOPICS)
TOPIC_AFF_GOAL = _affinity_matrix([g[2] for g in V.GOALS], V.TOPIC_INDEX, N_TOPICS)
TYPE_AFF_GOAL = _affinity_matrix([g[3] for g in V.GOALS], {t: i for i, t in enumerate(TYPE_NAMES)}, N_TYPES)
TOPIC_AFF_AGE = _affinity_matrix([a[3] for a in V.AGE_BANDS], V.TOPIC_INDEX, N_TOPICS)
DRIFT = np.array([t[2] for t in V.TOPICS])
TECHNICAL = np.array([t[0] in V.TECHNICAL_TOPICS for t in V.TOPICS])


def _gumbel_top(logits: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Multi-hot rows: ``counts[r]`` distinct columns per row, drawn without replacement ∝ exp(logits)."""
    keys = logits + rng.gumbel(size=logits.shape)
    order = np.argsort(-keys, axis=1)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(logits.shape[1])[None, :].repeat(len(logits), 0), axis=1)
    return rank < counts[:, None]


def _join(multi_hot: np.ndarray, names: list[str]) -> np.ndarray:
    """``|``-joined names of the set columns of each row (columns in vocabulary order)."""
    out = pd.Series([""] * len(multi_hot), dtype=object)
    for column, name in enumerate(names):
        has = multi_hot[:, column]
        out[has] = np.where(out[has] == "", name, out[has] + "|" + name)
    return out.to_numpy()


def _categorical(rng: np.random.Generator, p: np.ndarray, size: int) -> np.ndarray:
    return rng.choice(len(p), size=size, p=p / p.sum())


def _sample_rows(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One category per row of a row-stochastic matrix (inverse CDF)."""
    cumulative = np.cumsum(probabilities, axis=1)
    draws = rng.random(len(probabilities))[:, None] * cumulative[:, -1:]
    return np.minimum((cumulative < draws).sum(axis=1), probabilities.shape[1] - 1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _engagement_logit(
    topic_rel: np.ndarray,
    style_share: np.ndarray,
    type_pref: np.ndarray,
    skill: np.ndarray,
    difficulty: np.ndarray,
    technical: np.ndarray,
    paid: np.ndarray,
    price_sens: np.ndarray,
    popularity: np.ndarray,
) -> np.ndarray:
    """Log-odds that an exposure turns into engagement (shared by simulation and ground truth).

    ``topic_rel`` is log θ_u(t)[topic] minus the user's best topic (≤ 0); ``style_share``
    is ``STYLES * ρ_u[style]``; difficulty 0..2 is compared with coding level 0..3 on
    technical topics, and with 1 elsewhere.
    """
    level = np.where(technical, np.minimum(skill, 2), 1)
    too_hard = np.maximum(difficulty - level, 0)
    return (
        0.2
        + 0.9 * topic_rel
        + 1.1 * np.log(style_share)
        + type_pref
        - 0.9 * too_hard
        - price_sens * paid
        + 0.25 * np.log(popularity)
    )


def positive_probability(p: np.ndarray, content_type: np.ndarray) -> np.ndarray:
    """Probability that an engagement level ``p`` yields at least one positive event."""
    enroll = np.where(ENROLLABLE[content_type], ENROLL * p, 0.0)
    complete = COMPLETE_DIRECT[content_type] * p
    return 1.0 - (1 - LIKE * p) * (1 - SAVE * p) * (1 - enroll) * (1 - complete)


# ----------------------------------------------------------------------------- items


def _make_items(n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    types = _categorical(rng, np.array([t[2] for t in V.CONTENT_TYPES]), n)
    topic_share = np.exp(0.6 * DRIFT + rng.normal(0, 0.25, N_TOPICS))
    topic = _categorical(rng, topic_share, n)
    second = np.where(rng.random(n) < 0.35, (topic + rng.integers(1, N_TOPICS, n)) % N_TOPICS, -1)
    style = rng.integers(0, STYLES, n)
    diff_p = {"강의": [0.45, 0.4, 0.15], "영상": [0.6, 0.3, 0.1], "행사": [0.5, 0.4, 0.1]}
    difficulty = np.empty(n, dtype=int)
    for k, name in enumerate(TYPE_NAMES):
        mask = types == k
        difficulty[mask] = _categorical(rng, np.array(diff_p.get(name, [0.8, 0.18, 0.02])), int(mask.sum()))
    duration_mu = {
        "강의": (5.3, 0.6),
        "영상": (2.6, 0.7),
        "아티클": (2.2, 0.4),
        "인터뷰": (2.8, 0.4),
        "행사": (6.0, 0.9),
        "커뮤니티 글": (1.3, 0.5),
    }
    mu = np.array([duration_mu[t][0] for t in TYPE_NAMES])[types]
    sigma = np.array([duration_mu[t][1] for t in TYPE_NAMES])[types]
    duration = np.clip(np.round(np.exp(rng.normal(mu, sigma))), 1, 2880).astype(int)
    paid_p = np.array([{"강의": 0.55, "행사": 0.3, "영상": 0.1}.get(t, 0.02) for t in TYPE_NAMES])[types]
    paid = (rng.random(n) < paid_p).astype(int)
    language = _categorical(rng, np.array([lang[2] for lang in V.LANGUAGES]), n)

    # creators focus on one topic; 70% of items come from a creator of their topic
    n_creators = max(24, n // 12)
    creator_topic = _categorical(rng, topic_share, n_creators)
    creator_pop = np.exp(rng.normal(0, 0.6, n_creators))
    order = np.argsort(creator_topic, kind="stable")
    starts = np.searchsorted(creator_topic[order], np.arange(N_TOPICS))
    counts = np.bincount(creator_topic, minlength=N_TOPICS)
    own = (rng.random(n) < 0.7) & (counts[topic] > 0)
    creator = rng.integers(0, n_creators, n)
    pick = starts[topic] + np.floor(rng.random(n) * np.maximum(counts[topic], 1)).astype(int)
    creator[own] = order[np.minimum(pick, n_creators - 1)[own]]
    prefixes, kinds = V.CREATOR_PREFIXES, V.CREATOR_KINDS
    combos = len(prefixes) * len(kinds)
    cid = np.arange(n_creators)
    base = np.char.add(
        np.char.add(np.array([p[0] for p in prefixes])[cid % len(prefixes)], " "),
        np.array([k[0] for k in kinds])[(cid // len(prefixes)) % len(kinds)],
    )
    creator_names = np.where(cid < combos, base, np.char.add(np.char.add(base, " "), (cid // combos + 1).astype(str)))

    type_factor = np.array(
        [
            {"영상": 1.3, "강의": 1.0, "행사": 0.7, "커뮤니티 글": 0.6, "아티클": 0.8, "인터뷰": 0.7}[t]
            for t in TYPE_NAMES
        ]
    )
    popularity = np.exp(rng.normal(0, 1.1, n)) * creator_pop[creator] * type_factor[types]

    launch = rng.random(n) < 0.12
    published = np.where(launch, -rng.integers(1, 365 * DAY, n), (SPAN - DAY) * np.sqrt(rng.random(n))).astype(np.int64)

    # tags: 2-4 from the topic's pool, 1 from a second topic, sometimes a general tag, events get their kind
    pools = [V.TOPIC_TAGS[t[0]] for t in V.TOPICS]
    width = max(len(p) for p in pools)
    pool_size = np.array([len(p) for p in pools])
    keys = rng.random((n, width))
    keys[np.arange(width)[None, :] >= pool_size[topic][:, None]] = np.inf
    chosen = np.argsort(keys, axis=1)
    n_tags = np.minimum(rng.integers(2, 5, n), pool_size[topic])
    tag_names = sorted({tag for pool in pools for tag in pool} | set(V.GENERAL_TAGS) | set(V.EVENT_KINDS))
    tag_index = {tag[0]: i for i, tag in enumerate(tag_names)}
    pool_table = np.full((N_TOPICS, width), -1)
    for k, pool in enumerate(pools):
        pool_table[k, : len(pool)] = [tag_index[t[0]] for t in pool]
    tag_hot = np.zeros((n, len(tag_names)), dtype=bool)
    for slot in range(width):
        take = slot < n_tags
        tag_hot[np.flatnonzero(take), pool_table[topic[take], chosen[take, slot]]] = True
    has_second = second >= 0
    second_pick = np.floor(rng.random(n) * pool_size[np.maximum(second, 0)]).astype(int)
    tag_hot[np.flatnonzero(has_second), pool_table[second[has_second], second_pick[has_second]]] = True
    general = rng.random(n) < 0.3
    general_pick = np.array([tag_index[t[0]] for t in V.GENERAL_TAGS])[rng.integers(0, len(V.GENERAL_TAGS), n)]
    tag_hot[np.flatnonzero(general), general_pick[general]] = True
    is_event = types == TYPE_NAMES.index("행사")
    event_kind = rng.integers(0, len(V.EVENT_KINDS), n)
    event_kind = np.where(topic == V.TOPIC_INDEX["AI 영상"], np.where(rng.random(n) < 0.6, 1, event_kind), event_kind)
    kind_index = np.array([tag_index[k[0]] for k in V.EVENT_KINDS])
    tag_hot[np.flatnonzero(is_event), kind_index[event_kind[is_event]]] = True

    topic_hot = np.zeros((n, N_TOPICS), dtype=bool)
    topic_hot[np.arange(n), topic] = True
    topic_hot[np.flatnonzero(has_second), second[has_second]] = True

    title, title_en = _titles(rng, types, topic, tag_hot, tag_names, difficulty, published, event_kind)
    frame = pd.DataFrame(
        {
            "item_id": np.char.add("i", np.char.zfill(np.arange(1, n + 1).astype(str), 6)),
            "title": title,
            "title_en": title_en,
            "content_type": np.array(TYPE_NAMES)[types],
            "topics": _join(topic_hot, [t[0] for t in V.TOPICS]),
            "tags": _join(tag_hot, [t[0] for t in tag_names]),
            "difficulty": np.array([d[0] for d in V.DIFFICULTIES])[difficulty],
            "duration_min": duration,
            "price": np.array([p[0] for p in V.PRICES])[paid],
            "language": np.array([lang[0] for lang in V.LANGUAGES])[language],
            "creator": creator_names[creator],
            "published_at": _iso(published),
        }
    )
    params = pd.DataFrame(
        {
            "item_id": frame["item_id"],
            "topic": topic,
            "style": style,
            "popularity": popularity,
            "difficulty": difficulty,
            "paid": paid,
            "content_type": types,
            "published": published,
        }
    )
    return frame, params


def _titles(
    rng: np.random.Generator,
    types: np.ndarray,
    topic: np.ndarray,
    tag_hot: np.ndarray,
    tag_names: list[tuple[str, str]],
    difficulty: np.ndarray,
    published: np.ndarray,
    event_kind: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Korean titles with English glosses, assembled per content type."""
    n = len(types)
    projects = [V.TOPIC_PROJECTS[t[0]] for t in V.TOPICS]
    table_ko = np.array([[p[min(j, len(p) - 1)][0] for j in range(3)] for p in projects])
    table_en = np.array([[p[min(j, len(p) - 1)][1] for j in range(3)] for p in projects])
    variant = rng.integers(0, 3, n)
    ko, en = table_ko[topic, variant], table_en[topic, variant]
    # the title's tag: one of the item's tags that is not an event kind (those name events already)
    usable = tag_hot & ~np.isin([t[0] for t in tag_names], [k[0] for k in V.EVENT_KINDS])[None, :]
    first_tag = np.where(usable.any(axis=1), np.argmax(usable, axis=1), np.argmax(tag_hot, axis=1))
    with_ro = np.array([t[0] + _instrumental(t[0]) for t in tag_names])[first_tag]
    tag_en = np.array([t[1] for t in tag_names])[first_tag]
    topic_ko = np.array([t[0] for t in V.TOPICS])[topic]
    topic_en = np.array([t[1] for t in V.TOPICS])[topic]
    level_ko = np.array([d[0] for d in V.DIFFICULTIES])[difficulty]
    level_en = np.array([d[1] for d in V.DIFFICULTIES])[difficulty]
    year = (START + published.astype("timedelta64[s]")).astype("datetime64[Y]").astype(int) + 1970
    serial = rng.integers(1, 40, n).astype(str)
    person = np.array(V.INTERVIEWEES)[rng.integers(0, len(V.INTERVIEWEES), n)]
    kind_ko = np.array([k[0] for k in V.EVENT_KINDS])[event_kind]
    kind_en = np.array([k[1] for k in V.EVENT_KINDS])[event_kind]
    s = np.char.add
    by_type = {
        "강의": (
            s(s(s(s(s("[", level_ko), "] "), ko), " — "), s(serial, "기")),
            s(s(s(s(s("[", level_en), "] "), en), " — cohort "), serial),
        ),
        "아티클": (
            s(s(ko, ": 시작 전에 알아야 할 "), s(np.char.mod("%d", 3 + rng.integers(0, 8, n)), "가지")),
            s(s("Before you ", en), ": what to know"),
        ),
        "인터뷰": (
            s(s(s(topic_ko, " 크리에이터 인터뷰: "), person), s(" #", serial)),
            s(s(s(topic_en, " creator interview: "), person), s(" #", serial)),
        ),
        "영상": (
            s(s(s(with_ro, " "), ko), s(" (튜토리얼 EP.", s(serial, ")"))),
            s(s(s(en, " with "), tag_en), s(" (tutorial ep. ", s(serial, ")"))),
        ),
        "행사": (
            s(s(s(s(kind_ko, " "), year.astype(str)), ": "), topic_ko),
            s(s(s(s(kind_en, " "), year.astype(str)), ": "), topic_en),
        ),
        "커뮤니티 글": (s(ko, " 후기 공유합니다"), s("My experience: ", en)),
    }
    title = np.empty(n, dtype=object)
    title_en = np.empty(n, dtype=object)
    for k, name in enumerate(TYPE_NAMES):
        mask = types == k
        title[mask] = by_type[name][0][mask]
        title_en[mask] = by_type[name][1][mask]
    return title, title_en


def _instrumental(word: str) -> str:
    """Korean particle 로/으로 ("with") for a word: 으로 after a final consonant other than ㄹ."""
    last = word[-1]
    if "가" <= last <= "힣":
        final = (ord(last) - ord("가")) % 28
        return "으로" if final not in (0, 8) else "로"
    return "로"


# ----------------------------------------------------------------------------- users


def _make_users(
    first: int, n: int, rng: np.random.Generator, plant: Plant = NOTHING
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    n_occ = len(V.OCCUPATIONS)
    recent = rng.random(n) < 0.2
    older = (SPAN - RECENT_DAYS * DAY) * rng.random(n) ** 0.7
    signed = np.where(recent, SPAN - RECENT_DAYS * DAY * rng.random(n), older).astype(np.int64)

    occupations = np.zeros((n, n_occ), dtype=bool)
    multi = rng.random(n) < 0.24
    archetype = multi & (rng.random(n) < 0.45)
    arche_rows = np.zeros((len(V.NJOB_ARCHETYPES), n_occ), dtype=bool)
    for a, combo in enumerate(V.NJOB_ARCHETYPES):
        arche_rows[a, [V.OCCUPATION_INDEX[o] for o in combo]] = True
    occupations[archetype] = arche_rows[rng.integers(0, len(V.NJOB_ARCHETYPES), int(archetype.sum()))]
    random_multi = multi & ~archetype
    occupations[random_multi] = _gumbel_top(
        np.zeros((int(random_multi.sum()), n_occ)), rng.integers(2, 4, int(random_multi.sum())), rng
    )
    single = ~multi
    occupations[np.flatnonzero(single), rng.integers(0, n_occ, int(single.sum()))] = True
    n_jobs = occupations.sum(axis=1)

    age = _categorical(rng, np.array([a[2] for a in V.AGE_BANDS]), n)
    region = _categorical(rng, np.array([r[1] for r in V.REGIONS]), n)
    coding_prior = occupations @ np.array([o[3] for o in V.OCCUPATIONS]) / n_jobs
    skill = np.clip(np.round(coding_prior + rng.normal(0, 0.7, n)), 0, 3).astype(int)

    occ_aff = occupations @ TOPIC_AFF_OCC / np.sqrt(n_jobs)[:, None]
    goal_logits = 0.8 * occ_aff @ TOPIC_AFF_GOAL.T / 2.0
    goals = _gumbel_top(goal_logits, 1 + (rng.random(n) < 0.3), rng)
    hidden = mix(rng.normal(0, 0.9, (n, N_TOPICS)), 0.0, plant.hidden_taste)
    log_theta = occ_aff + goals @ TOPIC_AFF_GOAL + TOPIC_AFF_AGE[age] + hidden
    interests = _gumbel_top(log_theta, rng.integers(1, 5, n), rng)

    frame = pd.DataFrame(
        {
            "user_id": np.char.add("u", np.char.zfill(np.arange(first + 1, first + n + 1).astype(str), 7)),
            "signed_up_at": _iso(signed),
            "occupations": _join(occupations, [o[0] for o in V.OCCUPATIONS]),
            "interests": _join(interests, [t[0] for t in V.TOPICS]),
            "goals": _join(goals, [g[0] for g in V.GOALS]),
            "coding_experience": np.array([c[0] for c in V.CODING_LEVELS])[skill],
            "age_band": np.array([a[0] for a in V.AGE_BANDS])[age],
            "region": np.array([r[0] for r in V.REGIONS])[region],
        }
    )
    params = {
        "signed": signed,
        "log_theta": log_theta,
        "rho": mix(rng.dirichlet(np.full(STYLES, 0.6), n), 1.0 / STYLES, plant.hidden_taste),
        "type_pref": goals @ TYPE_AFF_GOAL + mix(rng.normal(0, 0.4, (n, N_TYPES)), 0.0, plant.hidden_taste),
        "skill": skill,
        "price_sens": mix(1.5 * rng.beta(2, 3, n), 0.6, plant.hidden_taste),
        "rate": np.exp(rng.normal(0, 1.0, n)),
        "recent": recent,
    }
    if plant.random_occupation is not None:  # behaves at random (see plants.py)
        params["random"] = occupations[:, V.OCCUPATION_INDEX[plant.random_occupation]]
    return frame, params


# ----------------------------------------------------------------------------- events


class _ItemSampler:
    """Draws items ∝ popularity within (topic, style), restricted to items published before t."""

    def __init__(self, items: pd.DataFrame):
        self.levels = [
            self._index(items["topic"].to_numpy() * STYLES + items["style"].to_numpy(), items),
            self._index(items["topic"].to_numpy(), items),
            self._index(np.zeros(len(items), dtype=int), items),
        ]

    @staticmethod
    def _index(group: np.ndarray, items: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        published = items["published"].to_numpy()
        key = group.astype(np.int64) * (4 * SPAN) + (published + SPAN)
        order = np.argsort(key, kind="stable")
        cumulative = np.concatenate([[0.0], np.cumsum(items["popularity"].to_numpy()[order])])
        return key[order], order, cumulative

    def draw(self, groups: list[np.ndarray], times: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = np.full(len(times), -1)
        for group, (keys, order, cumulative) in zip(groups, self.levels):
            todo = out < 0
            g = group[todo].astype(np.int64) * (4 * SPAN)
            lo = np.searchsorted(keys, g, side="left")
            hi = np.searchsorted(keys, g + times[todo] + SPAN, side="right")
            ok = hi > lo
            u = cumulative[lo] + rng.random(len(lo)) * (cumulative[hi] - cumulative[lo])
            pos = np.clip(np.searchsorted(cumulative, u, side="right") - 1, lo, np.maximum(hi - 1, lo))
            picked = np.where(ok, order[np.minimum(pos, len(order) - 1)], -1)
            out[np.flatnonzero(todo)] = picked
        return out


def _make_events(
    users: pd.DataFrame,
    up: dict[str, np.ndarray],
    items: pd.DataFrame,
    sampler: _ItemSampler,
    exposures_per_user: float,
    rng: np.random.Generator,
    planted: np.random.Generator | None = None,
) -> pd.DataFrame:
    """Events of ``users`` (``planted``: the plants' own random stream, for users who behave at random)."""
    n = len(users)
    tenure = (SPAN - up["signed"]) / DAY
    mean_rate = exposures_per_user / np.mean(up["rate"] * tenure)
    counts = rng.poisson(up["rate"] * tenure * mean_rate)
    counts = np.where(up["recent"], np.minimum(counts, rng.integers(0, 4, n)), counts)
    who = np.repeat(np.arange(n), counts)
    when = up["signed"][who] + (rng.random(len(who)) * (SPAN - up["signed"][who])).astype(np.int64)
    years = (when - SPAN / 2) / YEAR
    log_theta = up["log_theta"][who] + DRIFT[None, :] * years[:, None]
    theta = np.exp(log_theta - log_theta.max(axis=1, keepdims=True))
    topic = _sample_rows(theta, rng)
    style = _sample_rows(up["rho"][who], rng)
    random = up["random"][who] if "random" in up else None
    if random is not None and planted is not None:  # a planted group: topics and styles at random
        topic[random] = planted.integers(0, N_TOPICS, int(random.sum()))
        style[random] = planted.integers(0, STYLES, int(random.sum()))
    item = sampler.draw([topic * STYLES + style, topic, np.zeros_like(topic)], when, rng)
    keep = item >= 0
    who, when, item, log_theta = who[keep], when[keep], item[keep], log_theta[keep]
    random = random[keep] if random is not None else None

    it_topic = items["topic"].to_numpy()[item]
    it_type = items["content_type"].to_numpy()[item]
    rel = log_theta[np.arange(len(item)), it_topic] - log_theta.max(axis=1)
    logit = _engagement_logit(
        rel,
        STYLES * up["rho"][who, items["style"].to_numpy()[item]],
        up["type_pref"][who, it_type],
        up["skill"][who],
        items["difficulty"].to_numpy()[item],
        TECHNICAL[it_topic],
        items["paid"].to_numpy()[item],
        up["price_sens"][who],
        items["popularity"].to_numpy()[item],
    )
    p = _sigmoid(logit)
    if random is not None:
        p[random] = RANDOM_ENGAGEMENT
    m = len(item)
    enrolled = ENROLLABLE[it_type] & (rng.random(m) < ENROLL * p)
    course = it_type == TYPE_NAMES.index("강의")
    completed = np.where(
        course, enrolled & (rng.random(m) < 0.5 * p + 0.2), rng.random(m) < COMPLETE_DIRECT[it_type] * p
    )
    steps = [
        ("view", np.ones(m, dtype=bool), np.zeros(m)),
        ("like", rng.random(m) < LIKE * p, rng.uniform(5, 600, m)),
        ("save", rng.random(m) < SAVE * p, rng.uniform(5, 3600, m)),
        ("enroll", enrolled, rng.uniform(60, DAY, m)),
        ("complete", completed, np.where(course, rng.uniform(3 * DAY, 40 * DAY, m), rng.uniform(60, 3600, m))),
    ]
    frames = []
    for name, happened, delay in steps:
        t = when + delay.astype(np.int64)
        ok = happened & (t <= SPAN)
        frames.append(pd.DataFrame({"u": who[ok], "i": item[ok], "event": name, "t": t[ok]}))
    events = pd.concat(frames, ignore_index=True).sort_values(["u", "t", "i"], kind="stable")
    rank = events.groupby("u").cumcount().to_numpy()
    events = events[~(up["recent"][events["u"].to_numpy()] & (rank >= RECENT_MAX_EVENTS))]
    return pd.DataFrame(
        {
            "user_id": users["user_id"].to_numpy()[events["u"].to_numpy()],
            "item_id": items["item_id"].to_numpy()[events["i"].to_numpy()],
            "event": events["event"].to_numpy(),
            "occurred_at": _iso(events["t"].to_numpy()),
        }
    )


# ----------------------------------------------------------------------------- ground truth


@dataclass(frozen=True)
class GroundTruth:
    """The generator's hidden parameters, enough to recompute the true affinity."""

    user_ids: pd.Index
    item_ids: pd.Index
    users: pd.DataFrame
    items: pd.DataFrame

    @classmethod
    def load(cls, folder: Path) -> GroundTruth:
        folder = Path(folder)
        users = read_parquet(folder / "users.parquet", MAX_ENTITY_ROWS, "ground truth")
        items = read_parquet(folder / "items.parquet", MAX_ENTITY_ROWS, "ground truth")
        return cls(pd.Index(users["user_id"].astype(str)), pd.Index(items["item_id"].astype(str)), users, items)

    def scores(self, user_rows: np.ndarray, item_rows: np.ndarray | None = None) -> np.ndarray:
        """Log-probability of a positive event at the snapshot, users × items.

        Parameters
        ----------
        user_rows, item_rows
            Row positions in :attr:`user_ids` / :attr:`item_ids` (all items when ``None``).
        """
        items = self.items if item_rows is None else self.items.iloc[item_rows]
        topic = items["topic"].to_numpy()
        style = items["style"].to_numpy()
        popularity = self.items["popularity"].to_numpy()
        group_total = np.bincount(
            self.items["topic"] * STYLES + self.items["style"], weights=popularity, minlength=N_TOPICS * STYLES
        )
        users = self.users.iloc[user_rows]
        log_theta = users[[f"log_theta_{k}" for k in range(N_TOPICS)]].to_numpy() + DRIFT * (SPAN / 2 / YEAR)
        theta = np.exp(log_theta - log_theta.max(axis=1, keepdims=True))
        theta /= theta.sum(axis=1, keepdims=True)
        rho = users[[f"rho_{s}" for s in range(STYLES)]].to_numpy()
        type_pref = users[[f"type_pref_{t}" for t in range(N_TYPES)]].to_numpy()
        pop = items["popularity"].to_numpy()
        exposure = theta[:, topic] * rho[:, style] * (pop / group_total[topic * STYLES + style])[None, :]
        rel = log_theta[:, topic] - log_theta.max(axis=1, keepdims=True)
        logit = _engagement_logit(
            rel,
            STYLES * rho[:, style],
            type_pref[:, items["content_type"].to_numpy()],
            users["skill"].to_numpy()[:, None],
            items["difficulty"].to_numpy()[None, :],
            TECHNICAL[topic][None, :],
            items["paid"].to_numpy()[None, :],
            users["price_sens"].to_numpy()[:, None],
            pop[None, :],
        )
        p = _sigmoid(logit)
        if "random_behaviour" in users:  # a planted group: uniform topics and styles, constant engagement
            random = users["random_behaviour"].to_numpy(dtype=bool)
            uniform = (pop / group_total[topic * STYLES + style])[None, :] / (N_TOPICS * STYLES)
            exposure = np.where(random[:, None], uniform, exposure)
            p = np.where(random[:, None], RANDOM_ENGAGEMENT, p)
        positive = positive_probability(p, items["content_type"].to_numpy()[None, :])
        return np.log(exposure) + np.log(positive)


def _user_truth(users: pd.DataFrame, up: dict[str, np.ndarray]) -> pd.DataFrame:
    columns = {"user_id": users["user_id"].to_numpy()}
    columns |= {f"log_theta_{k}": up["log_theta"][:, k] for k in range(N_TOPICS)}
    columns |= {f"rho_{s}": up["rho"][:, s] for s in range(STYLES)}
    columns |= {f"type_pref_{t}": up["type_pref"][:, t] for t in range(N_TYPES)}
    columns |= {"skill": up["skill"], "price_sens": up["price_sens"]}
    if "random" in up:
        columns["random_behaviour"] = up["random"]
    return pd.DataFrame(columns)


# ----------------------------------------------------------------------------- entry point


class _TableWriter:
    """Appends chunks of a table to a CSV file, or to a Parquet file as text columns."""

    def __init__(self, path: Path, file_format: str):
        self.path, self.parquet = path, file_format == "parquet"
        self._csv = None if self.parquet else open(path, "w", encoding="utf-8")  # noqa: SIM115 (closed in close)
        self._parquet: pq.ParquetWriter | None = None
        self._first = True

    def write(self, frame: pd.DataFrame) -> None:
        if self._csv is not None:
            frame.to_csv(self._csv, index=False, header=self._first)
        else:
            table = pa.Table.from_pandas(frame.astype(str), preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema)
            self._parquet.write_table(table)
        self._first = False

    def close(self) -> None:
        if self._csv is not None:
            self._csv.close()
        if self._parquet is not None:
            self._parquet.close()


def generate_catalog(
    out: Path,
    scale: str = "default",
    seed: int = 7,
    name: str | None = None,
    progress: bool = True,
    force: bool = False,
    file_format: str | None = None,
    plant: Plant = NOTHING,
) -> Path:
    """Write a KDQ catalog dataset (tables, ``dataset.yaml``, ground truth) into ``out``.

    ``plant`` plants effects with a known answer (:mod:`kdq_lab.data.plants`); the default plants nothing.

    The same ``scale``, ``seed`` and ``file_format`` (default: the scale's, Parquet for
    ``large``) give byte-identical files. Users are generated in chunks of
    ``Scale.chunk_users``, so memory stays bounded at every scale. An existing ``out`` is
    replaced only if the lab made it, unless ``force``.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    size = SCALES[scale]
    file_format = file_format or size.file_format
    if file_format not in ("csv", "parquet"):
        raise ValueError(f"unknown file format {file_format!r}; choose csv or parquet")
    spec = catalog_spec(
        check_name(name or Path(out).name, "dataset name (by default the output folder's name)"), file_format
    )
    check_occupation(plant, [o[0] for o in V.OCCUPATIONS])
    out = Path(out)
    seeds = np.random.SeedSequence([seed, 20251125])
    item_seed, *chunk_seeds = seeds.spawn(1 + -(-size.users // size.chunk_users))
    plant_seeds = np.random.SeedSequence([seed, 20251125, 1]).spawn(len(chunk_seeds))  # the plants' own stream
    with atomic_dir(out, force) as tmp:
        items, item_params = _make_items(size.items, np.random.default_rng(item_seed))
        item_writer = _TableWriter(tmp / spec.items.file, file_format)
        item_writer.write(items)
        item_writer.close()
        sampler = _ItemSampler(item_params)
        truth = tmp / "ground_truth"
        truth.mkdir()
        item_params.drop(columns=["published"]).to_parquet(truth / "items.parquet", index=False)
        writer = None
        starts = range(0, size.users, size.chunk_users)
        users_out = _TableWriter(tmp / spec.users.file, file_format)
        events_out = _TableWriter(tmp / spec.interactions.file, file_format)
        try:
            for chunk, first in enumerate(tqdm(starts, desc=f"kdq-catalog {scale}", disable=not progress)):
                rng = np.random.default_rng(chunk_seeds[chunk])
                n = min(size.chunk_users, size.users - first)
                planted = np.random.default_rng(plant_seeds[chunk])
                users, up = _make_users(first, n, rng, plant)
                events = _make_events(users, up, item_params, sampler, size.exposures_per_user, rng, planted)
                users_out.write(shuffle_inert(users, plant, planted))
                events_out.write(events)
                table = pa.Table.from_pandas(_user_truth(users, up), preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(truth / "users.parquet", table.schema)
                writer.write_table(table)
        finally:
            users_out.close()
            events_out.close()
        assert writer is not None
        writer.close()
        (truth / "params.json").write_text(
            json.dumps(
                {
                    "styles": STYLES,
                    "topics": [t[0] for t in V.TOPICS],
                    "content_types": TYPE_NAMES,
                    "drift_per_year": DRIFT.tolist(),
                    "snapshot": str(END + KST) + "+09:00",
                    "seed": seed,
                    "scale": scale,
                    "generator_version": GENERATOR_VERSION,
                }
                | ({} if plant.empty else {"plant": plant.to_dict()}),
                ensure_ascii=False,
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        write_spec(spec, tmp)
    return out
