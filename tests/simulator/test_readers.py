"""Trace readers: every shared format, tolerant of layout, strict on bad rows."""

from __future__ import annotations

import os

import pytest

from hub_ext.simulator.data import TRACES, resolve
from hub_ext.simulator.readers import detect_format, read_trace
from hub_ext.simulator.trace import TraceError

from .helpers import NO_SHARED, SHARED_TRACES, write

PHILLY_HEADER = "timestamp,duration,num_gpus,gpu_time,cluster\n"


def test_shipped_philly_sample_reads_with_teams_and_times_from_zero():
    trace = read_trace(resolve("philly-sample", TRACES))
    assert trace.format == "philly"
    assert len(trace.jobs) == 1670
    assert trace.jobs[0].submitted_at == 0
    times = [j.submitted_at for j in trace.jobs]
    assert times == sorted(times)
    assert times[-1] < 3 * 86400
    assert "6214e9" in trace.teams and len(trace.teams) > 5
    assert all(j.gpus >= 1 and j.duration >= 0 for j in trace.jobs)
    assert trace.origin.startswith("2017-09-29")


def test_bad_value_names_file_row_and_column(tmp_path):
    path = write(
        tmp_path,
        "bad.csv",
        PHILLY_HEADER + "2017-10-01 00:00:00,60,1,60,vc1\n2017-10-01 00:01:00,sixty,1,60,vc1\n",
    )
    with pytest.raises(TraceError) as e:
        read_trace(path)
    message = str(e.value)
    assert "bad.csv" in message and "row 2" in message and "line 3" in message
    assert "duration" in message and "sixty" in message


@pytest.mark.parametrize(
    "row, complaint",
    [
        ("2017-10-01 00:01:00,60,0,0,vc1", "num_gpus"),  # no GPUs
        ("2017-10-01 00:01:00,60,1.5,60,vc1", "whole number"),
        ("2017-10-01 00:01:00,-5,1,60,vc1", "below 0"),
        ("not-a-date,60,1,60,vc1", "date-time"),
        ("2017-10-01 00:01:00,60,1,60,", "cluster"),  # no team
        ("2017-10-01 00:01:00,60,1", "fields"),  # short row
        ("2017-10-01 00:01:00,nan,1,60,vc1", "finite"),
    ],
)
def test_each_kind_of_bad_row_is_an_error(tmp_path, row, complaint):
    path = write(tmp_path, "t.csv", PHILLY_HEADER + "2017-10-01 00:00:00,60,1,60,vc1\n" + row + "\n")
    with pytest.raises(TraceError, match=complaint) as e:
        read_trace(path)
    assert "row 2" in str(e.value)


def test_skip_bad_rows_only_when_asked_and_counts_them(tmp_path):
    path = write(tmp_path, "t.csv", PHILLY_HEADER + "2017-10-01 00:00:00,60,1,60,vc1\nx,y,z,w,v\n2017-10-01 00:02:00,30,2,60,vc2\n")
    trace = read_trace(path, skip_bad_rows=True)
    assert [j.duration for j in trace.jobs] == [60, 30]
    assert sum(trace.excluded.values()) == 1
    assert any("row 2" in n for n in trace.notes)


def test_tolerates_bom_crlf_comments_blank_lines_extra_and_reordered_columns(tmp_path):
    text = "\ufeff# exported 2017\r\nCluster, Num_GPUs ,extra,Timestamp,Duration\r\n\r\nvc1,2,zzz,2017-10-01 00:00:10,100\r\nvc2,1,,2017-10-01 00:00:00,50\r\n"
    path = write(tmp_path, "t.csv", text)
    trace = read_trace(path)
    assert trace.format == "philly"
    assert [(j.team, j.gpus, j.duration, j.submitted_at) for j in trace.jobs] == [("vc2", 1, 50, 0), ("vc1", 2, 100, 10)]


def test_missing_column_and_unknown_format_are_clear(tmp_path):
    with pytest.raises(TraceError, match="cannot tell the trace format"):
        read_trace(write(tmp_path, "t.csv", "a,b,c\n1,2,3\n"))
    with pytest.raises(TraceError, match="header lacks column"):
        read_trace(write(tmp_path, "u.csv", "timestamp,num_gpus,cluster\n2017-10-01 00:00:00,1,vc\n"), "philly")
    with pytest.raises(TraceError, match="empty"):
        read_trace(write(tmp_path, "e.csv", "\n"))
    with pytest.raises(TraceError, match="no such trace file"):
        read_trace(str(tmp_path / "missing.csv"))


def test_tiresias_teams_are_model_families(tmp_path):
    path = write(
        tmp_path,
        "60.csv",
        "job_id,num_gpu,submit_time,iterations,model_name,duration,interval\n0,1,0,606,vgg19,164,30\n1,8,30,133,resnet50,147,23\n",
    )
    trace = read_trace(path)
    assert trace.format == "tiresias"
    assert [(j.team, j.gpus, j.duration) for j in trace.jobs] == [("vgg", 1, 164), ("resnet", 8, 147)]


def test_pollux_duration_model_elastic_range_and_workload_choice(tmp_path):
    path = write(
        tmp_path,
        "p.csv",
        "workload,name,time,application,num_replicas,batch_size\n"
        "workload-1,cifar10-0,107,cifar10,6,2048\n"
        "workload-6,imagenet-3,200,imagenet,16,1024\n"
        "workload-6,ncf-4,210,ncf,1,32768\n",
    )
    trace = read_trace(path)  # workload-6 by default
    assert [j.id for j in trace.jobs] == ["pollux-workload-6/imagenet-3", "pollux-workload-6/ncf-4"]
    imagenet, ncf = trace.jobs
    # More GPU-hours for a bigger model, spread over its replicas.
    assert imagenet.gpu_seconds > 100 * ncf.gpu_seconds
    assert (imagenet.min_gpus, imagenet.max_gpus, imagenet.gpus) == (1, 16, 16)
    assert ncf.min_gpus is None  # one replica: nothing to scale
    assert any("modelled" in n for n in trace.notes)
    assert len(read_trace(path, pollux_workload=None).jobs) == 3
    bad = write(tmp_path, "q.csv", "workload,name,time,application,num_replicas\nworkload-6,x-1,5,gpt9,2\n")
    with pytest.raises(TraceError, match="gpt9"):
        read_trace(bad)


def test_alibaba_fractions_exclusions_and_teams(tmp_path):
    header = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n"
    path = write(
        tmp_path,
        "a.csv",
        header
        + "p0,1000,1,1,460,,LS,Running,100,1100,200\n"  # 0.46 of a card, ran 900 s
        + "p1,1000,1,0,0,,BE,Running,0,50,0\n"  # CPU only
        + "p2,1000,1,2,1000,,BE,Succeeded,10,70,20\n"  # two whole GPUs
        + "p3,1000,1,1,1000,,LS,Pending,30,60,\n",  # never scheduled
    )
    trace = read_trace(path)
    assert trace.format == "alibaba"
    assert [(j.id, j.gpus, j.duration, j.team, j.submitted_at) for j in trace.jobs] == [
        ("alibaba-p2", 2, 50, "BE", 0),
        ("alibaba-p0", 0.46, 900, "LS", 90),
    ]
    assert sorted(trace.excluded.values()) == [1, 1]
    bad = write(tmp_path, "b.csv", header + "p0,1,1,1,1500,,LS,Running,0,10,0\n")
    with pytest.raises(TraceError, match="row 1.*gpu_milli"):
        read_trace(bad)


def test_window_shifts_and_cuts():
    trace = read_trace(resolve("philly-sample", TRACES))
    day2 = trace.window(86400, 86400)
    assert day2.jobs and all(0 <= j.submitted_at < 86400 for j in day2.jobs)
    assert len(day2.jobs) < len(trace.jobs)


@pytest.mark.skipif(not os.path.isdir(SHARED_TRACES), reason=NO_SHARED)
@pytest.mark.parametrize(
    "name, fmt, jobs",
    [
        ("philly_2017-09-04_2017-10-22.csv", "philly", 44250),
        ("tiresias_60_job.csv", "tiresias", 60),
        ("pollux_workloads.csv", "pollux", 160),
        ("alibaba_openb_pod_list_default.csv", "alibaba", None),
    ],
)
def test_every_shared_trace_reads(name, fmt, jobs):
    path = os.path.join(SHARED_TRACES, name)
    assert detect_format(path) == fmt
    trace = read_trace(path)
    if jobs is not None:
        assert len(trace.jobs) == jobs
    if fmt == "alibaba":
        assert any(0 < j.gpus < 1 for j in trace.jobs)  # fractional pods
        assert sum(trace.excluded.values()) + len(trace.jobs) == 8152  # every pod accounted for
