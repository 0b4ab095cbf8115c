"""npz files are judged from their headers before any array is read: bombs, objects, FIFOs and lies are refused."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from kdq_lab.errors import DataError, KdqError
from kdq_lab.npzfile import read_csr, read_npz

ROOT = Path(__file__).resolve().parents[1]


def npy_header(shape: tuple[int, ...], dtype: str = "<f8") -> bytes:
    """The bytes of an ``.npy`` header claiming ``shape`` (no data follows unless the caller adds it)."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": dtype, "fortran_order": False, "shape": shape})
    return out.getvalue()


def write_zip(path: Path, members: dict[str, bytes], compress: bool = False) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(f"{name}.npy", data)
    return path


def npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, array, allow_pickle=True)
    return out.getvalue()


def problem_of(caught: pytest.ExceptionInfo, array: str) -> str:
    (problem,) = [p for p in caught.value.problems if p.column == array]
    return problem.message


def test_arrays_within_their_bounds_load(tmp_path):
    path = tmp_path / "ok.npz"
    np.savez_compressed(path, a=np.arange(10), b=np.ones((3, 4), dtype=np.float32))
    arrays = read_npz(path, {"a": 10, "b": 12})
    assert arrays["a"].tolist() == list(range(10)) and arrays["b"].shape == (3, 4)


@pytest.mark.parametrize(
    "shape, fragment",
    [
        ((10**13,), "claims 10,000,000,000,000 values (shape (10000000000000,)); an array the lab reads has at most"),
        ((10**6, 10**6), "claims 1,000,000,000,000 values"),
        ((11,), "claims 11 values (shape (11,)); the sizes it should have allow at most 10"),
        ((2, 3, 2), "claims 12 values"),
    ],
)
def test_a_header_claiming_more_than_the_bound_is_refused_before_reading(tmp_path, shape, fragment):
    path = write_zip(tmp_path / "bomb.npz", {"a": npy_header(shape)})  # a few bytes: no data at all
    with pytest.raises(DataError) as caught:
        read_npz(path, {"a": 10})
    assert fragment in problem_of(caught, "a") and str(path) in str(caught.value)


def test_a_header_that_does_not_match_its_data_is_refused(tmp_path):
    path = write_zip(tmp_path / "lie.npz", {"a": npy_header((8,)) + np.zeros(2).tobytes()})
    with pytest.raises(DataError) as caught:
        read_npz(path, {"a": 10})
    assert "claims 8 values of 8 bytes, but the zip entry holds" in problem_of(caught, "a")


@pytest.mark.parametrize(
    "array",
    [np.array([{"x": 1}], dtype=object), np.array([[1, "a"]], dtype=object), np.zeros(2, dtype=[("f", "O")])],
    ids=["dict", "mixed", "object-field"],
)
def test_object_arrays_are_refused_without_unpickling(tmp_path, array):
    path = write_zip(tmp_path / "objects.npz", {"a": npy(array)})
    with pytest.raises(DataError) as caught:
        read_npz(path, {"a": 100})
    assert "holds Python objects" in problem_of(caught, "a")


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_unexpected_and_repeated_members_are_refused(tmp_path):
    path = tmp_path / "extra.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.npy", npy(np.zeros(2)))
        archive.writestr("payload.npy", npy(np.zeros(2)))
        archive.writestr("b.npy", npy(np.zeros(2)))
        archive.writestr("b.npy", npy(np.zeros(2)))
    with pytest.raises(DataError) as caught:
        read_npz(path, {"a": 2, "b": 2})
    assert "not an array expected here (expected: a, b)" in problem_of(caught, "payload")
    assert "stored twice" in caught.value.problems[-1].message


def test_too_many_members_are_refused(tmp_path):
    path = write_zip(tmp_path / "many.npz", {f"a{i}": npy(np.zeros(1)) for i in range(65)})
    with pytest.raises(DataError, match=r"65 arrays.*at most 64 are read"):
        read_npz(path, {f"a{i}": 1 for i in range(65)})


def test_data_inflating_beyond_the_ratio_is_refused(tmp_path, monkeypatch):
    import kdq_lab.npzfile as npzfile

    monkeypatch.setattr(npzfile, "EXPANSION_FLOOR", 1000)  # the real floor is 64 MB: the rule, on a small file
    path = write_zip(tmp_path / "zeros.npz", {"a": npy(np.zeros(200_000))}, compress=True)
    with pytest.raises(DataError) as caught:
        read_npz(path, {"a": 200_000})
    assert "inflates" in problem_of(caught, "a") and "times (at most 200)" in problem_of(caught, "a")
    random = write_zip(tmp_path / "random.npz", {"a": npy(np.random.default_rng(0).random(2000))}, compress=True)
    assert len(read_npz(random, {"a": 2000})["a"]) == 2000


@pytest.mark.parametrize("damage", ["half", "garbage", "empty"])
def test_truncated_or_garbage_files_are_named(tmp_path, damage):
    path = tmp_path / "x.npz"
    np.savez(path, a=np.arange(1000))
    blob = path.read_bytes()
    path.write_bytes({"half": blob[: len(blob) // 2], "garbage": os.urandom(300), "empty": b""}[damage])
    with pytest.raises(KdqError, match=f"{path}: truncated or corrupt"):
        read_npz(path, {"a": 1000})


@pytest.mark.slow  # starts another Python process
@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_only_regular_files_are_opened(tmp_path, kind):
    """In a subprocess with a deadline: a FIFO opened the ordinary way would wait for a writer forever."""
    path = tmp_path / "model.npz"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero")
    code = "import sys; from kdq_lab.npzfile import read_npz; read_npz(sys.argv[1], {'a': 1})"
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    expected = {"fifo": "a FIFO (named pipe)", "folder": "a folder", "device": "a device"}[kind]
    assert f"is {expected}, not a regular file" in proc.stderr


@pytest.mark.slow  # starts another Python process
def test_a_fifo_model_is_refused_by_recommend(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.json").write_text('{"format": 1, "kind": "lightfm", "config": {}}', encoding="utf-8")
    os.mkfifo(folder / "model.npz")
    profile = ROOT / "notebooks" / "personas" / "njob_artist.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "kdq_lab.cli", "recommend", "--model", str(folder), "--profile", str(profile)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "model.npz is a FIFO (named pipe), not a regular file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_csr_round_trip(tmp_path):
    matrix = sp.random(30, 20, density=0.2, format="csr", dtype=np.float32, random_state=0)
    sp.save_npz(tmp_path / "m.npz", matrix)
    loaded = read_csr(tmp_path / "m.npz", (30, 20), 120)
    assert (loaded != matrix).nnz == 0 and loaded.shape == (30, 20)


@pytest.mark.parametrize(
    "matrix, shape, entries, array, fragment",
    [
        (sp.csr_matrix(np.eye(4)), (4, 5), 100, "shape", "expected (4, 5)"),
        (sp.csr_matrix(np.eye(4)), (4, 4), 3, "data", "claims 4 values"),
        (sp.csr_matrix(np.eye(4)), (3, 4), 100, "indptr", "claims 5 values"),
        (sp.coo_matrix(np.eye(4)), (4, 4), 100, "row", "not an array expected here"),
        (sp.csc_matrix(np.eye(4)), (4, 4), 100, "format", "expected a CSR matrix"),
    ],
)
def test_csr_files_of_the_wrong_shape_or_kind_are_refused(tmp_path, matrix, shape, entries, array, fragment):
    sp.save_npz(tmp_path / "m.npz", matrix)
    with pytest.raises(DataError) as caught:
        read_csr(tmp_path / "m.npz", shape, entries)
    assert fragment in problem_of(caught, array)


def test_csr_indices_out_of_range_are_refused(tmp_path):
    np.savez(tmp_path / "m.npz", data=np.ones(2), indices=np.array([0, 9]), indptr=np.array([0, 1, 2]),
             shape=np.array([2, 3]), format=np.array(b"csr"))  # fmt: skip
    with pytest.raises(DataError) as caught:
        read_csr(tmp_path / "m.npz", (2, 3), 6)
    assert "1 column indices outside [0, 3)" in problem_of(caught, "indices")


def test_a_damaged_split_is_refused_before_loading(tiny_catalog, tmp_path):
    import shutil

    from kdq_lab.data.splits import SplitConfig
    from kdq_lab.data.store import load_split, prepare

    folder = Path(shutil.copytree(prepare(tiny_catalog, SplitConfig(kind="random"), tmp_path / "p"), tmp_path / "s"))
    write_zip(
        folder / "withheld.npz",
        {"until_test": npy_header((10**12,), "|b1"), "until_validation": npy(np.zeros(3, bool))},
    )
    with pytest.raises(DataError) as caught:
        load_split(folder)
    assert "claims 1,000,000,000,000 values" in problem_of(caught, "until_test")
    sp.save_npz(folder / "train.npz", sp.csr_matrix((3, 3)))
    with pytest.raises(DataError, match=r"train\.npz.*expected"):
        load_split(folder)
