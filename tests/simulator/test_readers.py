"""Trace readers: openb and the generic CSV format; malformed rows are reported with file, line and field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lepton_simulator.readers import (
    parse_generic_jobs,
    parse_generic_nodes,
    parse_openb_nodes,
    parse_openb_pods,
    parse_text,
    read_generic,
    read_openb,
)
from lepton_simulator.scenario import load_sample
from lepton_simulator.trace import TraceError

JOBS_HEADER = "submit_s,duration_s,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_model,workers,priority,name\n"


def test_generic_jobs_with_defaults_and_sorting() -> None:
    text = "submit_s,duration_s,cpu_milli,memory_mib,num_gpu\n60,10,2000,4096,1\n0,3600,500,512,0\n"
    jobs = parse_text(parse_generic_jobs, text, "jobs.csv")
    assert jobs.submit_s.tolist() == [0.0, 60.0]  # sorted by submit time
    assert jobs.gpu_milli.tolist() == [0, 1000]  # a whole GPU unless gpu_milli says otherwise
    assert jobs.workers.tolist() == [1, 1]
    assert jobs.name == ("job-3", "job-2")  # unnamed jobs are named after their line


def test_generic_jobs_all_columns() -> None:
    text = JOBS_HEADER + "5,10,1000,1024,1,250,V100M16|V100M32,4,7,train\n"
    jobs = parse_text(parse_generic_jobs, text)
    assert jobs.gpu_models == (frozenset({"V100M16", "V100M32"}),)
    assert (int(jobs.workers[0]), int(jobs.priority[0]), jobs.name[0]) == (4, 7, "train")
    assert jobs.gpu_fraction.tolist() == [0.25]


def test_generic_nodes_get_profile_labels() -> None:
    text = (
        "name,cpu_milli,memory_mib,gpu,gpu_model,labels\n"
        "a,96000,393216,8,V100M32,zone=west;team=ml\n"
        "b,32000,65536,0,,\n"
    )
    nodes = parse_text(parse_generic_nodes, text)
    assert nodes[0].labels == {
        "zone": "west",
        "team": "ml",
        "lepton.ai/gpu-model": "V100M32",
        "lepton.ai/node-class": "gpu",
    }
    assert nodes[1].labels == {"lepton.ai/node-class": "cpu-small"}


H6 = "submit_s,duration_s,cpu_milli,memory_mib,num_gpu,gpu_milli\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("0,10,abc,1024,0,0\n", "jobs.csv:2: cpu_milli: not a number: 'abc'"),
        ("0,10,1.5,1024,0,0\n", "jobs.csv:2: cpu_milli: not a whole number"),
        ("0,-1,1000,1024,0,0\n", "jobs.csv:2: duration_s: must be a finite, non-negative number"),
        ("0,10,1000,1024,0,0\n0,10,1000,1024,2,500\n", "jobs.csv:3: gpu_milli: a share of a GPU needs num_gpu = 1"),
        ("0,10,1000,1024,0,5\n", "jobs.csv:2: gpu_milli: must be 0 when num_gpu is 0"),
        ("0,10,1000\n", "jobs.csv:2: num_gpu: missing value"),
        ("0,10,1000,1024,0,0,extra\n", "jobs.csv:2: more fields than the header has columns"),
        ("nan,10,1000,1024,0,0\n", "jobs.csv:2: submit_s: must be a finite number"),
        ("0,10,1000,1024,1,0\n", "jobs.csv:2: gpu_milli: must be in 1..1000 per GPU"),
        ('0,10,"1000\n2000",1024,0,0\n', "jobs.csv:3: cpu_milli: not a number"),
    ],
)
def test_malformed_job_rows_name_line_and_field(body: str, message: str) -> None:
    with pytest.raises(TraceError) as info:
        parse_text(parse_generic_jobs, H6 + body, "jobs.csv")
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "jobs.csv:1: empty file"),
        ("submit_s,duration_s\n", "jobs.csv:1: missing column(s) cpu_milli, memory_mib, num_gpu"),
        (
            "submit_s,duration_s,cpu_milli,memory_mib,num_gpu,gpu_mili\n",
            "jobs.csv:1: unknown column(s) gpu_mili",
        ),
        ("submit_s,submit_s,duration_s,cpu_milli,memory_mib,num_gpu\n", "duplicate column(s) submit_s"),
    ],
)
def test_bad_headers(text: str, message: str) -> None:
    with pytest.raises(TraceError) as info:
        parse_text(parse_generic_jobs, text, "jobs.csv")
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,cpu_milli,memory_mib,gpu,gpu_model\na,0,1024,0,\n", "nodes.csv:2: cpu_milli: must be positive"),
        ("name,cpu_milli,memory_mib,gpu,gpu_model\na,1000,1024,2,\n", "nodes.csv:2: gpu_model: a node with GPUs"),
        ("name,cpu_milli,memory_mib,gpu,gpu_model\na,1000,1024,0,\na,1000,1024,0,\n", "nodes.csv:3: name: duplicate"),
        (
            "name,cpu_milli,memory_mib,gpu,gpu_model,labels\na,1000,1024,0,,oops\n",
            "nodes.csv:2: labels: expected key=value",
        ),
        ("name,cpu_milli,memory_mib,gpu,gpu_model\n", "nodes.csv: no nodes"),
    ],
)
def test_malformed_node_rows(text: str, message: str) -> None:
    with pytest.raises(TraceError) as info:
        parse_text(parse_generic_nodes, text, "nodes.csv")
    assert message in str(info.value)


def test_openb_rows_and_errors() -> None:
    header = (
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
        "creation_time,deletion_time,scheduled_time\n"
    )
    ok = header + "p0,8000,30517,1,470,,BE,Running,100,1707,120\np1,4000,1024,0,0,G2|T4,LS,Pending,50,80,\n"
    jobs = parse_text(parse_openb_pods, ok, "pods.csv")
    assert jobs.name == ("p1", "p0")
    assert jobs.duration_s.tolist() == [30.0, 1587.0]  # pending: deletion − creation; else − scheduled
    assert jobs.gpu_models[0] == frozenset({"G2", "T4"})
    bad = header + "p0,8000,30517,1,470,,BE,Running,100,90,100\n"
    with pytest.raises(TraceError, match=r"pods.csv:2: deletion_time: before the pod started"):
        parse_text(parse_openb_pods, bad, "pods.csv")
    nodes = parse_text(parse_openb_nodes, "sn,cpu_milli,memory_mib,gpu,model\nn0,96000,786432,8,V100M32\n", "n.csv")
    assert nodes[0].labels == {"lepton.ai/node-class": "gpu", "lepton.ai/gpu-model": "V100M32"}


def test_files_on_disk_and_unreadable_files(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.csv"
    nodes = tmp_path / "nodes.csv"
    jobs.write_text("submit_s,duration_s,cpu_milli,memory_mib,num_gpu\n0,1,1,1,0\n")
    nodes.write_bytes(b"name,cpu_milli,memory_mib,gpu,gpu_model\n\xff\xfe,1,1,0,\n")
    with pytest.raises(TraceError, match=r"nodes\.csv: not UTF-8"):
        read_generic(jobs, nodes)
    with pytest.raises(TraceError, match="cannot read"):
        read_generic(tmp_path / "missing.csv", nodes)
    with pytest.raises(TraceError, match="multigpu50 has no creation/deletion times"):
        read_openb(tmp_path, "multigpu50")


def test_the_embedded_sample_is_small_real_openb_with_attribution() -> None:
    trace = load_sample()
    assert 1000 <= len(trace.jobs) <= 2000
    assert 40 <= len(trace.nodes) <= 80
    folder = Path(__file__).resolve().parents[2] / "src" / "lepton_simulator" / "data"
    assert sum(p.stat().st_size for p in folder.glob("*.csv")) < 200_000
    attribution = (folder / "ATTRIBUTION.md").read_text()
    assert "alibaba/clusterdata" in attribution and "Beware of Fragmentation" in attribution


def test_full_openb_default_trace(shared_data: Path) -> None:
    jobs, nodes = read_openb(shared_data / "alibaba-openb-2023", "default")
    assert (len(jobs), len(nodes)) == (8152, 1523)
    assert (jobs.duration_s >= 0).all()
    spec_jobs, _ = read_openb(shared_data / "alibaba-openb-2023", "gpuspec33")
    assert sum(m is not None for m in spec_jobs.gpu_models) > 1000


# --- fuzzing ------------------------------------------------------------------------------------------


def _parses_or_names_the_file(parse: Callable[[], object], source: str) -> None:
    """Either a result or a ``TraceError`` that starts with the file name; any other exception fails."""
    try:
        parse()
    except TraceError as exc:
        message = str(exc)
    else:
        return
    assert message.startswith(source)


_cells = st.one_of(
    st.integers(-5, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", " ", "abc", "1e309", "0x10", "V100|", "|", "=", "k=v;", '"', "\n"]),
    st.text(max_size=6),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(rows=st.lists(st.lists(_cells, min_size=0, max_size=12), max_size=6))
def test_fuzz_generic_jobs_never_crash(rows: list[list[str]]) -> None:
    text = JOBS_HEADER + "\n".join(",".join(r) for r in rows)
    _parses_or_names_the_file(lambda: parse_text(parse_generic_jobs, text, "fuzz.csv"), "fuzz.csv")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(rows=st.lists(st.lists(_cells, min_size=0, max_size=8), max_size=6))
def test_fuzz_generic_nodes_never_crash(rows: list[list[str]]) -> None:
    text = "name,cpu_milli,memory_mib,gpu,gpu_model,labels\n" + "\n".join(",".join(r) for r in rows)
    _parses_or_names_the_file(lambda: parse_text(parse_generic_nodes, text, "fuzz.csv"), "fuzz.csv")


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(text=st.text(max_size=300))
def test_fuzz_any_text_as_openb(text: str) -> None:
    for parser in (parse_openb_pods, parse_openb_nodes, parse_generic_jobs):
        _parses_or_names_the_file(lambda p=parser: p(iter(text.splitlines(keepends=True)), "any.csv"), "any.csv")
