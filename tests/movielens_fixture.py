"""Write a small folder in the exact MovieLens-100k format (no real data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

GENRES = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]
OCCUPATIONS = ["administrator", "artist", "doctor", "educator", "engineer", "other", "student", "writer"]


def write_ml100k(folder: Path, n_users: int = 40, n_items: int = 60, per_user: int = 15, seed: int = 0) -> Path:
    """Users with >= 10 ratings each, latin-1 ``u.item`` titles, and ``ua``/``ub`` splits (10 test ratings per user)."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(GENRES)) + "\n", encoding="latin-1")
    (folder / "u.occupation").write_text("".join(f"{o}\n" for o in OCCUPATIONS), encoding="latin-1")
    users = [
        f"{u}|{rng.integers(12, 70)}|{'MF'[u % 2]}|{OCCUPATIONS[u % len(OCCUPATIONS)]}|{rng.integers(10000, 99999)}"
        for u in range(1, n_users + 1)
    ]
    users[2] = users[2].rsplit("|", 1)[0] + "|T8H1N"  # a Canadian zip, as in the real file
    (folder / "u.user").write_text("\n".join(users) + "\n", encoding="latin-1")
    lines = []
    for i in range(1, n_items + 1):
        flags = ["0"] * len(GENRES)
        for g in rng.choice(np.arange(1, len(GENRES)), size=rng.integers(1, 3), replace=False):
            flags[g] = "1"
        title = f"Film {i} ({1960 + i % 40})" if i != 3 else "Café Étoile (1995)"
        date = f"01-Jan-{1960 + i % 40}" if i != 5 else ""
        lines.append("|".join([str(i), title, date, "", f"http://us.imdb.com/M/title-exact?{i}", *flags]))
    (folder / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    rows = []
    for u in range(1, n_users + 1):
        items = rng.choice(np.arange(1, n_items + 1), size=per_user, replace=False)
        times = np.sort(rng.integers(874_724_710, 893_286_638, size=per_user))
        rows += [(u, int(i), int(rng.integers(1, 6)), int(t)) for i, t in zip(items, times)]
    text = "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows)
    (folder / "u.data").write_text(text, encoding="latin-1")
    for split, offset in (("ua", 0), ("ub", 5)):
        base, test = [], []
        for u in range(1, n_users + 1):
            mine = [r for r in rows if r[0] == u]
            chosen = {(mine[(offset + k) % len(mine)][1]) for k in range(10)}
            for r in mine:
                (test if r[1] in chosen else base).append(r)
        for name, part in (("base", base), ("test", test)):
            (folder / f"{split}.{name}").write_text(
                "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in part), encoding="latin-1"
            )
    return folder
