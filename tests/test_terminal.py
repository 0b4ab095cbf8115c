"""Text the lab prints reaches a terminal escaped: no title, id, value or path can drive it.

Every control character (C0, DEL, C1) and bidirectional override is shown as an escape
(``\\x1b``, ``\\r``, ``\\u009b``, ``\\u202e``) in `validate` problems, `recommend` lists, warnings
and error messages; `recommend --json` stays valid JSON meaning the same strings.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pandas as pd
import pytest

from kdq_lab.errors import DataError, Problem, format_problems
from kdq_lab.terminal import BIDI_CONTROLS, safe, safe_json

ROOT = Path(__file__).resolve().parents[1]
ARTIST = ROOT / "notebooks" / "personas" / "njob_artist.yaml"

#: What a hostile title, id or value may hold, and how each must be shown
HOSTILE = {
    "\x1b]0;pwned\x07": "\\x1b]0;pwned\\x07",  # sets the window title
    "\x1b[2J": "\\x1b[2J",  # clears the screen
    "\r": "\\r",
    "\x07": "\\x07",
    "\x08": "\\x08",
    "\t": "\\t",
    "\x00": "\\x00",
    "\x7f": "\\x7f",
    "\u009b2J": "\\u009b2J",  # C1 CSI: clears the screen on some terminals
    "\u202e": "\\u202e",  # right-to-left override
    "\u2066": "\\u2066",  # left-to-right isolate
}


def raw_controls(text: str, newlines: bool = True) -> list[str]:
    """The control characters and bidi overrides in ``text`` (newlines allowed when ``newlines``)."""
    return [
        repr(c)
        for c in text
        if (unicodedata.category(c) == "Cc" and not (newlines and c == "\n")) or ord(c) in BIDI_CONTROLS
    ]


def decoded(data: bytes) -> str:
    """Command output as text: it must be UTF-8 (a lone C1 byte would not be)."""
    return data.decode("utf-8")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kdq_lab.cli", *args], capture_output=True, cwd=ROOT)


@pytest.mark.parametrize("raw, shown", list(HOSTILE.items()))
def test_every_control_character_is_shown_escaped(raw, shown):
    text = f"강의 {raw} 끝"
    assert safe(text) == f"강의 {shown} 끝"
    assert raw_controls(safe(text)) == [] and safe(safe(text)) == safe(text)


def test_all_c0_del_c1_and_bidi_controls_are_escaped_and_nothing_else():
    controls = [chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0), *BIDI_CONTROLS)]
    assert raw_controls(safe("".join(controls)), newlines=False) == []
    plain = "큰당큐 — AI 영상 · café ½ ü \\x1b already escaped"
    assert safe(plain) == plain and safe(plain, multiline=True) == plain


def test_newlines_are_kept_only_in_multiline_messages():
    assert safe("a\nb") == "a\\nb"
    assert safe("a\nb\x1b[2J", multiline=True) == "a\nb\\x1b[2J"


@pytest.mark.parametrize("raw", list(HOSTILE))
def test_json_stays_valid_and_means_the_same(raw):
    data = {"title": f"제목 {raw}", "items": [raw, "강의"]}
    text = safe_json(json.dumps(data, ensure_ascii=False, indent=2))
    assert json.loads(text) == data and raw_controls(text) == []


@pytest.mark.parametrize(
    "field",
    ["file", "column", "value", "message"],
)
def test_a_problem_is_one_escaped_line_whatever_field_holds_the_controls(field):
    parts = {"file": "users.csv", "line": 3, "column": "title", "value": "x", "message": "bad"}
    parts[field] = f"{parts[field]}\x1b]0;pwned\x07\n\u202e"
    problem = Problem(**parts)  # type: ignore[arg-type]
    text = str(problem)
    assert raw_controls(text, newlines=False) == [] and "\\x1b]0;pwned\\x07\\n\\u202e" in text
    listed = format_problems([problem] * 25, "invalid dataset data/\x1b[2Jbad")
    assert raw_controls(listed) == [] and "data/\\x1b[2Jbad" in listed
    assert raw_controls(str(DataError([problem]))) == []


# ----------------------------------------------------------------------------- the command


def hostile_csv_catalog(catalog: Path) -> Path:
    """The tiny catalog with controls in an interaction's user id, item id, event and timestamp."""
    path = catalog / "interactions.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.loc[1, "user_id"] += "\x1b]0;pwned\x07"
    table.loc[5, "item_id"] += "\u202e"
    table.loc[7, "event"] = "like\x1b[2J\u009b2J"
    table.loc[9, "occurred_at"] = "\x072026-03-18T04:05:16+09:00\x08"
    table.to_csv(path, index=False)
    return catalog


@pytest.mark.slow  # starts another Python process
def test_validate_prints_hostile_values_escaped(catalog_copy):
    proc = cli("validate", str(hostile_csv_catalog(catalog_copy)))
    assert proc.returncode == 2
    out = decoded(proc.stdout) + decoded(proc.stderr)
    assert raw_controls(out) == [], out
    for shown in ("\\x1b]0;pwned\\x07", "\\u202e", "like\\x1b[2J\\u009b2J", "\\x072026-03-18T04:05:16+09:00\\x08"):
        assert shown in out


@pytest.mark.slow  # starts another Python process
def test_validate_prints_a_hostile_folder_name_escaped(tiny_catalog, tmp_path):
    folder = Path(shutil.copytree(tiny_catalog, tmp_path / "kdq\r\x1b[2J\u202e-tiny"))
    proc = cli("validate", str(folder))
    assert proc.returncode == 0, proc.stderr
    assert decoded(proc.stdout) == f"{tmp_path}/kdq\\r\\x1b[2J\\u202e-tiny: valid\n"


@pytest.fixture(scope="module")
def hostile_model(tiny_parquet_catalog, tmp_path_factory) -> Path:
    """A model trained on the tiny catalog whose item titles, glosses and some ids hold control characters."""
    folder = Path(shutil.copytree(tiny_parquet_catalog, tmp_path_factory.mktemp("hostile") / "kdq-tiny"))
    items = pd.read_parquet(folder / "items.parquet")
    events = pd.read_parquet(folder / "interactions.parquet")
    marks = list(HOSTILE)
    items["title"] = [f"{t[:12]} {marks[i % len(marks)]}" if i % 3 else "" for i, t in enumerate(items["title"])]
    items["title_en"] = [f"{marks[(i + 1) % len(marks)]}{t[:8]}" for i, t in enumerate(items["title_en"])]
    renamed = {old: f"{old}{marks[i % len(marks)]}" for i, old in enumerate(items["item_id"])}
    items["item_id"] = items["item_id"].map(renamed)
    events["item_id"] = events["item_id"].map(renamed)
    items.to_parquet(folder / "items.parquet", index=False)
    events.to_parquet(folder / "interactions.parquet", index=False)
    out = tmp_path_factory.mktemp("models") / "hostile"
    proc = cli("train", str(folder), "--set", "no_components=8", "--set", "epochs=3", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.slow  # starts another Python process
def test_recommend_prints_titles_and_ids_escaped(hostile_model):
    proc = cli("recommend", "--model", str(hostile_model), "--profile", str(ARTIST), "--k", "30")
    assert proc.returncode == 0, proc.stderr
    out = decoded(proc.stdout)
    assert raw_controls(out) == [], out
    assert [int(line.split(".")[0]) for line in out.splitlines() if re.match(r" ?\d+\. ", line)] == list(range(1, 31))
    shown = [escape for escape in HOSTILE.values() if escape in out]
    assert len(shown) == len(HOSTILE), f"escapes shown: {shown}"


@pytest.mark.slow  # starts another Python process
def test_recommend_json_is_valid_and_keeps_the_strings(hostile_model):
    proc = cli("recommend", "--model", str(hostile_model), "--profile", str(ARTIST), "--k", "30", "--json")
    assert proc.returncode == 0, proc.stderr
    text = decoded(proc.stdout)
    assert raw_controls(text) == []
    items = json.loads(text)["items"]
    held = "".join(item["item_id"] + item["title"] + item["title_en"] for item in items)
    assert all(mark in held for mark in HOSTILE), "the JSON strings are the data's own"


@pytest.mark.slow  # starts another Python process
def test_warnings_and_errors_print_escaped(hostile_model, tmp_path):
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"interests": ["AI 영상", "\x1b]0;pwned\x07", "\u202e음악"]}))
    lenient = cli("recommend", "--model", str(hostile_model), "--profile", str(profile), "--lenient", "--k", "2")
    assert lenient.returncode == 0, lenient.stderr
    assert raw_controls(decoded(lenient.stderr)) == [] and "\\x1b]0;pwned\\x07" in decoded(lenient.stderr)
    strict = cli("recommend", "--model", str(hostile_model), "--profile", str(profile))
    assert strict.returncode == 2 and raw_controls(decoded(strict.stderr)) == []
    assert "\\u202e음악" in decoded(strict.stderr)
    missing = cli("recommend", "--model", str(tmp_path / "no\x1b[2Jmodel"), "--profile", str(ARTIST))
    assert missing.returncode == 2 and "no\\x1b[2Jmodel" in decoded(missing.stderr)
    assert raw_controls(decoded(missing.stderr)) == []


@pytest.mark.slow  # starts another Python process
@pytest.mark.parametrize(
    "args, escaped",
    [
        (["validate", "a", "\x1b]0;pwned\x07"], "\\x1b]0;pwned\\x07"),  # argparse: unrecognized arguments
        (["prepare", "x", "--split", "\x1b[2J"], "\\x1b[2J"),  # argparse: invalid choice
        (["run", "/no/such/\r\x1b[2J.yaml", "--dry-run"], "\\r\\x1b[2J"),
        (["prepare", "no-such-\u202e-dataset"], "no-such-\\u202e-dataset"),
    ],
)
def test_argument_and_input_errors_print_escaped(args, escaped):
    proc = cli(*args)
    assert proc.returncode == 2
    err = decoded(proc.stderr)
    assert raw_controls(err) == [] and "Traceback" not in err and escaped in err, err


def test_python_warnings_print_escaped_and_the_printer_is_restored(tiny_catalog, monkeypatch, capsys):
    import warnings

    from kdq_lab import cli as command
    from kdq_lab.data import validate

    def warning_check(folder):
        warnings.warn(f"odd value \x1b]0;pwned\x07 in {folder}\u202e", UserWarning, stacklevel=1)
        return [], []

    monkeypatch.setattr(validate, "check_dataset", warning_check)
    printer = warnings.showwarning
    assert command.main(["validate", str(tiny_catalog)]) == 0
    err = capsys.readouterr().err
    assert "odd value \\x1b]0;pwned\\x07" in err and "\\u202e" in err and raw_controls(err) == []
    assert warnings.showwarning is printer
