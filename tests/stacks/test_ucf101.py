"""UCF101 split files, case-insensitive paths, and the mini-UCF101 layout."""

import pytest

from flowapps.stacks.mini_ucf101 import test_groups as split_test_groups
from flowapps.stacks.mini_ucf101 import write_mini_ucf101
from flowapps.stacks.ucf101 import Video, read_class_index, read_split, read_video_list, resolve_videos


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return write_mini_ucf101(tmp_path_factory.mktemp("ucf"), classes=("MoveLeft", "MoveRight", "Expand"),
                             num_groups=6, clips_per_group=1, num_frames=4, size=(48, 64))


def test_official_group_rule():
    # 25 groups: split k tests groups 7(k-1)+1 .. 7k.
    assert split_test_groups(25, 1) == list(range(1, 8))
    assert split_test_groups(25, 3) == list(range(15, 22))
    assert split_test_groups(6, 2) == [3, 4]


def test_split_files_are_crlf_and_parse(mini):
    raw = (mini.split_dir / "trainlist01.txt").read_bytes()
    assert b"\r\n" in raw
    assert read_class_index(mini.split_dir) == {"MoveLeft": 0, "MoveRight": 1, "Expand": 2}
    test = read_split(mini.split_dir, 1, "test")
    train = read_split(mini.split_dir, 1, "train")
    assert {v.group for v in test} == {1, 2}
    assert {v.group for v in train} == {3, 4, 5, 6, 1}  # group 1 only for the broken video
    assert mini.broken in [v.rel for v in train]
    assert all(v.label == {"MoveLeft": 0, "MoveRight": 1, "Expand": 2}[v.rel.split("/")[0]] for v in train)
    assert not {v.rel for v in train} & {v.rel for v in test}


def test_case_insensitive_resolution(mini):
    # The first class's files differ in case from the split files, as
    # HandstandPushups/v_HandStandPushups_* does in the real dataset.
    listed = [v.rel for v in read_split(mini.split_dir, 1, "test")]
    found, missing = resolve_videos(mini.video_root, listed)
    assert missing == []
    assert any(f != rel for f, rel in zip(found, listed))
    assert all((mini.video_root / f).is_file() for f in found)
    _, missing = resolve_videos(mini.video_root, ["MoveLeft/v_Nope_g01_c01.avi"])
    assert missing == ["MoveLeft/v_Nope_g01_c01.avi"]


def test_video_properties():
    v = Video("Skiing/v_Skiing_g18_c02.avi", 3)
    assert v.frame_dir == "Skiing/v_Skiing_g18_c02" and v.group == 18


def test_errors_name_the_file(tmp_path, mini):
    with pytest.raises(FileNotFoundError, match="trainlist01.txt"):
        read_split(tmp_path, 1, "train") if (tmp_path / "classInd.txt").write_text("1 A\r\n") else None
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "classInd.txt").write_text("1 A\r\n")
    (bad / "trainlist01.txt").write_text("B/v_B_g01_c01.avi 1\r\n")
    with pytest.raises(ValueError, match=r"trainlist01.txt:1: class folder"):
        read_split(bad, 1, "train")
    (bad / "trainlist01.txt").write_text("A/v_A_g01_c01.avi 2\r\n")
    with pytest.raises(ValueError, match="disagrees"):
        read_split(bad, 1, "train")
    with pytest.raises(ValueError, match="split must be"):
        read_split(mini.split_dir, 4, "train")
    lst = tmp_path / "list.txt"
    lst.write_text("a/b.avi 3\nc/d.mp4\n")
    assert read_video_list(lst) == [Video("a/b.avi", 3), Video("c/d.mp4", -1)]
    lst.write_text("a/b.avi x y\n")
    with pytest.raises(ValueError, match="list.txt:1"):
        read_video_list(lst)


@pytest.mark.parametrize("where, text, message", [
    ("classInd.txt", "1 A\r\n2 a\r\n", r"classInd.txt:2: class a is already listed on line 1"),
    ("trainlist01.txt", "A/v_A_g01_c01.avi 1\r\nA/v_A_g02_c01.avi 1\r\nA/V_A_G01_C01.avi 1\r\n",
     r"trainlist01.txt:3: A/V_A_G01_C01.avi is already listed on line 1"),
    ("trainlist01.txt", "A/v_A_g01_c01.avi one\r\n", r"trainlist01.txt:1: expected"),
    ("trainlist01.txt", "A/v_A_g01_c01.avi -1\r\n", r"trainlist01.txt:1: expected"),
])
def test_split_files_refuse_duplicates_and_bad_labels_naming_the_line(tmp_path, where, text, message):
    (tmp_path / "classInd.txt").write_text("1 A\r\n")
    (tmp_path / "trainlist01.txt").write_text("A/v_A_g01_c01.avi 1\r\n")
    (tmp_path / where).write_text(text)
    with pytest.raises(ValueError, match=message):
        read_split(tmp_path, 1, "train")


@pytest.mark.parametrize("text, message", [
    ("a/b.avi 3\nc/d.avi 1\na/b.avi 3\n", r"list.txt:3: a/b.avi is already listed on line 1"),
    ("a/b.avi 3\na/b.avi 4\n", r"list.txt:2: a/b.avi is already listed on line 1"),   # conflicting labels
    ("a/b.avi -2\n", r"list.txt:1: expected '<relative path> \[label ≥ 0\]'"),
])
def test_video_lists_refuse_duplicates_and_negative_labels(tmp_path, text, message):
    lst = tmp_path / "list.txt"
    lst.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_video_list(lst)


def test_annotation_lists_refuse_duplicates(tmp_path):
    from flowapps.action.data import read_annotations

    lst = tmp_path / "train.txt"
    lst.write_text("A/v1 10 0\nA/v2 12 0\nA/v1 10 1\n")
    with pytest.raises(ValueError, match=r"train.txt:3: A/v1 is already listed on line 1"):
        read_annotations(lst)
