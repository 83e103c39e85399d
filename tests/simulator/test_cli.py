"""``gpupool simulate`` as a user runs it."""

from __future__ import annotations

import json

from hub_ext.cli.main import main

from .helpers import write


def test_simulate_prints_summary_and_writes_json_and_png(tmp_path, capsys):
    out_json, out_png = tmp_path / "run.json", tmp_path / "run.png"
    code = main(
        [
            "simulate", "--trace", "philly-sample", "--cluster", "seed-dgx", "--policy", "pool,static",
            "--days", "0.25", "--checkpoint-interval", "600", "--json", str(out_json), "--plot", str(out_png), "--no-progress",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "policy pool" in printed and "policy static" in printed
    assert "unfinished at the end" in printed and "work-conserving bound" in printed
    doc = json.loads(out_json.read_text())
    assert [r["policy"] for r in doc["runs"]] == ["pool", "static"]
    for run in doc["runs"]:
        assert run["jobs"] == run["finished"] + run["unfinished"] > 0
        assert 0 < run["utilisation"] <= 1
        assert run["checkpoint_interval_s"] == 600
        assert set(run["teams"]) and all("share_of_quota" in t for t in run["teams"].values())
        assert len(run["series"]["utilisation"]) == len(run["series"]["queue"]) > 0
    assert 0 < doc["work_conserving_utilisation"] <= 1
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out_png.stat().st_size > 10_000


def test_simulate_reports_a_bad_row_and_exits_2(tmp_path, capsys):
    trace = write(tmp_path, "mine.csv", "timestamp,duration,num_gpus,gpu_time,cluster\n2017-10-01 00:00:00,60,1,60,a\n2017-10-01 00:00:05,60,two,60,a\n")
    cluster = write(tmp_path, "c.yaml", "nodes:\n  - {name: n, gpus: 8}\n")
    assert main(["simulate", "--trace", trace, "--cluster", cluster, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "mine.csv, row 2 (line 3)" in err and "num_gpus" in err
    # Asked to skip it, the replay runs and says what it skipped.
    assert main(["simulate", "--trace", trace, "--cluster", cluster, "--skip-bad-rows", "--no-progress"]) == 0
    assert "1 x bad row" in capsys.readouterr().out


def test_simulate_refuses_an_unknown_policy(capsys):
    assert main(["simulate", "--trace", "philly-sample", "--cluster", "seed-dgx", "--policy", "lottery"]) == 2
    assert "lottery" in capsys.readouterr().err


def test_simulate_closed_loop_counts_experiments_per_policy(tmp_path, capsys):
    out_json = tmp_path / "closed.json"
    code = main(
        [
            "simulate", "--closed-loop", "--trace", "philly-sample", "--cluster", "case-study-dgx", "--policy", "pool,static",
            "--days", "2", "--groups", "3", "--power-in-flight", "20", "--think-hours", "1", "--json", str(out_json), "--no-progress",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "closed loop: 2 days on case-study-dgx" in printed and "= 64 GPUs" in printed
    doc = json.loads(out_json.read_text())
    assert set(doc) == {"pool", "static"}
    for run in doc.values():
        assert len(run["by_team"]) == 3 and run["experiments"] == sum(run["by_team"].values()) > 0
        assert run["submitted"] >= run["experiments"] and 0 < run["utilisation"] <= 1
    assert main(["simulate", "--closed-loop", "--trace", "philly-sample", "--cluster", "case-study-dgx", "--in-flight", "0"]) == 2
    assert "--in-flight" in capsys.readouterr().err


def test_simulate_least_attained_service_and_notice_are_the_services_and_can_be_turned_off(tmp_path, capsys):
    """By default the replay runs as the service does (least attained service, 120 s notice); --no-las
    and --notice 0 give the replay without them, and the figures differ where long jobs queue."""
    def run(*extra):
        out = tmp_path / f"run{len(extra)}{'-'.join(extra)}.json"
        assert main(["simulate", "--trace", "philly-sample", "--cluster", "seed-dgx", "--days", "1", "--predict-starts", "0",
                     "--json", str(out), "--no-progress", *extra]) == 0
        return json.loads(out.read_text())["runs"][0]
    default, off = run(), run("--no-las", "--notice", "0")
    assert (default["preemptions"], default["mean_jct_s"]) != (off["preemptions"], off["mean_jct_s"])
    assert main(["simulate", "--trace", "philly-sample", "--cluster", "seed-dgx", "--notice", "-5"]) == 2
    assert "--notice" in capsys.readouterr().err
