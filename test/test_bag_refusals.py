"""Hostile replay inputs refused by name (#19): labels CSV values, exit codes as docs/replay.md says.

Regression tests for what generated inputs found: a labels CSV with text where numbers belong
crashed ``tgp bag eval`` with a traceback; when every bag was refused it exited 1, while
docs/replay.md promises 2 ("exit code 2 only if nothing could be evaluated").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tactile_grasp_predictor.errors import BagError
from tactile_grasp_predictor.replay.evaluate import LabelTable, evaluate_bag
from training.bag_record import RecordOptions, synthetic_recordings, write_bag
from training.cli import main


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bags") / "b"
    write_bag(path, synthetic_recordings(2, seed=1, size_hw=(8, 8), no_part=0.0), RecordOptions(),
              progress=False)
    return path


@pytest.mark.parametrize(("text", "says"), [
    ("t_start,t_end,label\nsoon,2,1\n", r"l\.csv:2: column 't_start': 'soon' is not a number"),
    ("t_start,t_end,label\n1,2,1\n3,later,0\n", r"l\.csv:3: column 't_end': 'later' is not a number"),
    ("t_start,t_end,label\n1,inf,1\n", r"l\.csv:2: column 't_end': 'inf' is not a finite time"),
    ("t_start,t_end,label\n2,1,1\n", r"l\.csv:2: window t_start 2\.0 is not before t_end 1\.0"),
    ("t_start,t_end,label\n1,,1\n", r"l\.csv:2: a window needs both"),
    ("grasp,label\none,1\n", r"l\.csv:2: column 'grasp': 'one' is not a grasp number"),
    ("grasp,label\n0,1\n", r"l\.csv:2: column 'grasp': '0' is not a grasp number"),
    ("grasp_id,label\n²,1\n", r"l\.csv:2: column 'grasp_id': '²' is not a grasp number"),
    ("grasp,label\n1,1,extra\n", r"l\.csv:2: more fields than the header"),
    ("grasp,label\n,1\n", r"l\.csv:2: neither a grasp number nor"),
    ("grasp,label\n1,maybe\n", r"l\.csv:2: label 'maybe'"),
])
def test_labels_csv_values_are_checked_with_file_and_line(tmp_path: Path, text: str, says: str) -> None:
    (tmp_path / "l.csv").write_text(text, encoding="utf-8")
    with pytest.raises(BagError, match=says):
        LabelTable.read(tmp_path / "l.csv")


def test_labels_csv_that_is_not_text_is_refused(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_bytes(b"grasp,label\n1,\xff\xfe\n")
    with pytest.raises(BagError, match=r"l\.csv: cannot read labels"):
        LabelTable.read(tmp_path / "l.csv")


def test_checked_labels_apply_as_before(bag: Path, tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text("grasp,label\n2, lift \n1,0\n", encoding="utf-8")
    res = evaluate_bag(bag, None, labels=LabelTable.read(tmp_path / "l.csv"))
    assert [g.label for g in res.grasps] == [False, True]


def test_bad_labels_end_tgp_bag_eval_with_its_error_not_a_traceback(
        bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Regression (#19): ``t_start`` = ``soon`` crashed ``tgp bag eval`` with a ValueError."""
    (tmp_path / "l.csv").write_text("t_start,t_end,label\nsoon,2,1\n", encoding="utf-8")
    code = main(["bag", "eval", str(bag), "--labels", str(tmp_path / "l.csv"), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "tgp bag: error:" in err and "l.csv:2: column 't_start'" in err
    assert "Traceback" not in err


def test_exit_code_is_2_only_when_nothing_could_be_evaluated(
        bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Regression (#19): every bag refused gave exit code 1; docs/replay.md says 2."""
    missing = tmp_path / "missing"
    assert main(["bag", "eval", str(missing), "--out", str(tmp_path / "r1")]) == 2
    assert f"REFUSED {missing.name}" in capsys.readouterr().err
    assert main(["bag", "eval", str(missing), str(bag), "--out", str(tmp_path / "r2")]) == 0
    assert main(["bag", "eval", str(missing), str(bag), "--strict", "--out", str(tmp_path / "r3")]) == 2


def test_garbled_metadata_is_refused_naming_the_field(bag: Path, tmp_path: Path) -> None:
    """Found by make fuzz (#19): a message count that YAML reads as text crashed the replay."""
    import re
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(bag, copy)
    meta = copy / "metadata.yaml"
    meta.write_text(re.sub(r"- message_count: \d+", "- message_count: lots", meta.read_text(), count=1))
    with pytest.raises(BagError, match=r"metadata\.yaml: topic '.*': message_count 'lots' is not a count"):
        evaluate_bag(copy, None)


@pytest.mark.parametrize(("column", "value"),
                         [("timestamp", "'soon'"), ("timestamp", "1.5"), ("data", "'text'")])
def test_garbled_sqlite3_rows_are_skipped_by_name(tmp_path: Path, column: str, value: str) -> None:
    """Found by make fuzz (#19): a sqlite3 row whose log time is text crashed the replay (TypeError).

    sqlite3 columns hold any type, so garbled bytes can turn an integer log time or a data blob
    into text or a float; such a row is skipped and named, and the other messages replay.
    """
    import sqlite3

    path = tmp_path / "b"
    write_bag(path, synthetic_recordings(1, seed=1, size_hw=(8, 8), no_part=0.0),
              RecordOptions(storage="sqlite3"), progress=False)
    good = evaluate_bag(path, None)
    (db,) = path.glob("*.db3")
    with sqlite3.connect(db) as con:
        row = con.execute("SELECT m.id, t.name FROM messages m JOIN topics t ON m.topic_id = t.id "
                          "ORDER BY m.timestamp LIMIT 1 OFFSET 3").fetchone()
        con.execute(f"UPDATE messages SET {column} = {value} WHERE id = ?", (row[0],))
    res = evaluate_bag(path, None)
    assert res.skipped[row[1]] == good.skipped[row[1]] + 1
    assert f"b:{row[1]}#" in res.skipped_first[row[1]] and "corrupt record" in res.skipped_first[row[1]]
    assert len(res.grasps) == len(good.grasps) == 1
