"""The public file helpers: atomic writes and file hashes."""

from __future__ import annotations

import hashlib
import os
import threading

import numpy as np
import pytest

from flownet2_core.io import atomic_output, atomic_write_bytes, atomic_write_text, file_sha256


def test_atomic_output_renames_on_success(tmp_path):
    path = tmp_path / "a.bin"
    with atomic_output(path) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path)
        assert os.path.basename(tmp).startswith(".a.bin.") and tmp.endswith(".tmp")
        with open(tmp, "wb") as f:
            f.write(b"new")
        assert not path.exists()  # nothing under the final name until the block ends
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_atomic_output_keeps_old_file_and_cleans_up_on_error(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_output(path) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_atomic_output_suffix_and_unique_names(tmp_path):
    path = tmp_path / "scores.npz"
    names = []
    for _ in range(2):
        with atomic_output(path, suffix=".npz") as tmp:
            names.append(tmp)
            np.savez(tmp, x=np.arange(3))  # would append .npz to a name without it
    assert names[0] != names[1] and all(n.endswith(".npz") for n in names)
    with np.load(path) as z:
        assert z["x"].tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.npz"]


def test_concurrent_writers_of_one_path_never_mix(tmp_path):
    path = tmp_path / "shared.txt"
    texts = [f"{i}\n" * 20_000 for i in range(8)]
    errors = []

    def write(text):
        try:
            for _ in range(5):
                atomic_write_text(path, text)
        except Exception as exc:  # noqa: BLE001 — collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert path.read_text() in texts  # one writer's whole text, never a mixture
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.txt"]


def test_atomic_write_bytes_chunks_and_text(tmp_path):
    atomic_write_bytes(tmp_path / "b", b"ab", np.arange(3, dtype=np.uint8))
    assert (tmp_path / "b").read_bytes() == b"ab\x00\x01\x02"
    atomic_write_text(tmp_path / "t", "é\r\nx\n")
    assert (tmp_path / "t").read_bytes() == "é\r\nx\n".encode("utf-8")


def test_atomic_writes_need_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="parent directory"):
        atomic_write_text(tmp_path / "missing" / "a.txt", "x")
    with pytest.raises(IsADirectoryError):
        atomic_write_text(tmp_path, "x")


def test_file_sha256(tmp_path):
    data = os.urandom(3 * (1 << 20) + 17)  # more than one read block
    (tmp_path / "w.bin").write_bytes(data)
    assert file_sha256(tmp_path / "w.bin") == hashlib.sha256(data).hexdigest()
    with pytest.raises(FileNotFoundError):
        file_sha256(tmp_path / "nope")
    with pytest.raises(IsADirectoryError):
        file_sha256(tmp_path)


def test_remove_temporaries_removes_only_writes_in_progress(tmp_path):
    """What an interrupted command calls: the temporary files of open atomic_output blocks
    go, finished files and the final name of the unfinished one are untouched."""
    from flownet2_core.io import atomic_output, atomic_write_text, remove_temporaries

    atomic_write_text(tmp_path / "done.txt", "finished")
    with pytest.raises(RuntimeError):
        with atomic_output(tmp_path / "x.bin") as tmp:
            with open(tmp, "wb") as f:
                f.write(b"half")
            remove_temporaries()
            assert not os.path.exists(tmp)
            raise RuntimeError("the interrupted writer never finishes")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["done.txt"]
    assert (tmp_path / "done.txt").read_text() == "finished"
