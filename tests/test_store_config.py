import json
import os
import threading

import pytest

from assay.config import load_settings
from assay.errors import UserError
from assay.store import RunStore, append_jsonl, read_jsonl, safe_name, write_json
from assay.types import Budget, BudgetExceeded, Candidate, Cost


def test_atomic_write_leaves_no_temp_files(tmp_path):
    path = tmp_path / "a" / "b.json"
    write_json(path, {"x": 1})
    write_json(path, {"x": 2})
    assert json.loads(path.read_text()) == {"x": 2}
    assert [p.name for p in path.parent.iterdir()] == ["b.json"]


def test_results_get_the_mode_any_new_file_gets(tmp_path):
    # not mkstemp's 0600: a result.py or a results JSON is meant to be read like any other file
    write_json(tmp_path / "r.json", {"x": 1})
    open(tmp_path / "plain", "w").close()
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777


def test_a_place_that_cannot_be_written_is_one_sentence_naming_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")  # a file where a directory should be: ENOTDIR for everything below it
    with pytest.raises(UserError, match=r"^cannot write .*/file/runs/r1 \(Not a directory\); choose a place"):
        RunStore(blocker / "runs", "r1")
    with pytest.raises(UserError, match=r"^cannot write .*/file/sub/out.json \(Not a directory\)"):
        write_json(blocker / "sub" / "out.json", {"x": 1})
    with pytest.raises(UserError, match=r"^cannot write .*/file/sub/t.jsonl \(Not a directory\)"):
        append_jsonl(blocker / "sub" / "t.jsonl", {"x": 1})
    store = RunStore(tmp_path / "runs", "r2")
    (store.dir / "task").write_text("")  # where the task's directory would go
    with pytest.raises(UserError, match=r"^cannot write .*/runs/r2/task \(File exists\)"):
        store.task_dir("task")


def test_store_roundtrip_and_resume_markers(tmp_path):
    store = RunStore(tmp_path, "run/1")
    assert store.dir.name == safe_name("run/1")
    assert store.load_candidates("HumanEval/0") is None  # not finished: must be regenerated
    c = Candidate(id="c0", task_id="HumanEval/0", content="def f(): pass")
    store.save_candidates("HumanEval/0", [c])
    assert store.load_candidates("HumanEval/0") is None  # written but not marked done
    store.mark_candidates_done("HumanEval/0")
    loaded = store.load_candidates("HumanEval/0")
    assert [Candidate.model_validate(x) for x in loaded] == [c]
    store.write_run_info({"a": 1})
    store.write_run_info({"a": 2})  # first write wins: run.json describes the original run
    assert json.loads((store.dir / "run.json").read_text()) == {"a": 1}


def test_append_jsonl_is_line_atomic_across_threads(tmp_path):
    path = tmp_path / "t.jsonl"

    def work(i):
        for j in range(50):
            append_jsonl(path, {"i": i, "j": j, "pad": "x" * 500})

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = read_jsonl(path)
    assert len(rows) == 200 and {(r["i"], r["j"]) for r in rows} == {(i, j) for i in range(4) for j in range(50)}


def test_settings_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home" / ".config" / "assay").mkdir(parents=True)
    (tmp_path / "home" / ".config" / "assay" / "config.toml").write_text('model = "user/m"\nworkers = 3\nseed = 9\n')
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "assay.toml").write_text('[assay]\nmodel = "proj/m"\nworkers = 4\n')
    monkeypatch.setenv("ASSAY_WORKERS", "5")
    s = load_settings({"model": "flag/m"}, cwd=tmp_path / "proj")
    assert (s.model, s.workers, s.seed) == ("flag/m", 5, 9)
    s = load_settings({}, cwd=tmp_path / "proj")
    assert s.model == "proj/m"


def test_bad_toml_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "assay.toml").write_text("model = [unclosed\n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_settings({}, cwd=tmp_path)


def test_a_setting_that_is_not_a_number_in_range_is_a_user_error_naming_where_it_came_from(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for k in [k for k in os.environ if k.startswith("ASSAY_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("ASSAY_WORKERS", "abc")
    with pytest.raises(UserError, match=r"^workers = 'abc' \(from ASSAY_WORKERS\) is not a whole number"):
        load_settings({}, cwd=tmp_path)
    monkeypatch.setenv("ASSAY_WORKERS", "0")
    with pytest.raises(UserError, match=r"^workers = '0' \(from ASSAY_WORKERS\) must be at least 1"):
        load_settings({}, cwd=tmp_path)
    monkeypatch.delenv("ASSAY_WORKERS")
    (tmp_path / "assay.toml").write_text("timeout_s = -1\n")
    with pytest.raises(UserError, match=r"^timeout_s = -1 \(in ./assay.toml\) must be more than 0"):
        load_settings({}, cwd=tmp_path)
    (tmp_path / "assay.toml").write_text("workers = 2.5\n")
    with pytest.raises(UserError, match=r"^workers = 2.5 \(in ./assay.toml\) is not a whole number"):
        load_settings({}, cwd=tmp_path)
    with pytest.raises(UserError, match=r"^max_usd = -0.5 \(on the command line\) must be at least 0"):
        load_settings({"max_usd": -0.5}, cwd=tmp_path / "elsewhere")
    (tmp_path / "assay.toml").write_text("timeout_s = 5\nworkers = 3\nmax_usd = 0\n")
    monkeypatch.setenv("ASSAY_MEMORY_MB", " 2048 ")
    s = load_settings({}, cwd=tmp_path)
    assert (s.timeout_s, s.workers, s.max_usd, s.memory_mb) == (5.0, 3, 0.0, 2048)
    assert type(s.timeout_s) is float and type(s.max_usd) is float


def test_budget_limits_and_unknown_prices():
    b = Budget(usd=0.01, calls=3)
    b.charge(Cost(tokens_in=10, tokens_out=5, usd=0.004, calls=1))
    b.check()
    b.charge(Cost(tokens_in=10, tokens_out=5, usd=None, calls=1))  # unknown price: recorded, no crash
    assert b.summary()["usd_partial"] is True
    b.charge(Cost(usd=0.007, calls=1))
    with pytest.raises(BudgetExceeded, match="USD"):
        b.check()
    b2 = Budget(calls=1)
    b2.charge(Cost(calls=1))
    with pytest.raises(BudgetExceeded, match="call"):
        b2.check()
