"""Trace readers: the Alibaba "openb" files and Lepton's generic CSV format.

Neighbours: builds ``lepton_simulator.trace`` objects; ``lepton_simulator.scenario`` decides which
files to read (``--trace openb[:VARIANT]``, ``--jobs/--nodes``, the embedded sample).

Every malformed row is reported as ``FILE:LINE: FIELD: what is wrong`` (a ``TraceError``), never as a
traceback; unknown columns in the generic format are errors too, so a typo cannot silently drop a field.

**openb** (github.com/alibaba/clusterdata, ``cluster-trace-gpu-v2023``; Weng et al., "Beware of
Fragmentation", USENIX ATC '23): a job is one pod; it is submitted at ``creation_time`` and runs for
``deletion_time − scheduled_time`` (``deletion_time − creation_time`` for pods the real cluster never
scheduled: they held their place in the queue that long). ``gpu_spec`` (``V100M16|V100M32``) limits the
GPU models. Priority is 0 for every pod (the trace's QoS classes are not Kubernetes priorities).

**Generic CSV** (one header row, comma-separated, UTF-8):

* jobs: ``submit_s``, ``duration_s``, ``cpu_milli``, ``memory_mib``, ``num_gpu`` (required); ``name``,
  ``gpu_milli`` (per GPU, default 1000 when ``num_gpu`` > 0), ``gpu_model`` (allowed models separated by
  ``|``), ``workers`` (default 1), ``priority`` (default 0) optional. Resources are per worker.
* nodes: ``name``, ``cpu_milli``, ``memory_mib``, ``gpu``, ``gpu_model`` (required; empty for CPU-only
  nodes); ``labels`` optional, as ``key=value;key=value``. Nodes get ``lepton.ai/gpu-model`` and
  ``lepton.ai/node-class`` labels unless the file gives them, so the shipped cost profiles match.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

from lepton_core.profiles import GPU_MODEL_LABEL
from lepton_simulator.trace import (
    GPU_MILLI_PER_GPU,
    NODE_CLASS_LABEL,
    JobRow,
    JobTable,
    NodeSpec,
    TraceError,
    default_labels,
)

T = TypeVar("T")

OPENB_VARIANTS: tuple[str, ...] = ("default", "gpuspec33", "gpushare40", "cpu050")
"""Pod lists with timestamps (``multigpu50`` has none and cannot be replayed in time)."""
OPENB_NODE_FILE = "openb_node_list_all_node.csv"

_OPENB_POD_COLUMNS = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "creation_time", "deletion_time")
_OPENB_NODE_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
_JOB_REQUIRED = ("submit_s", "duration_s", "cpu_milli", "memory_mib", "num_gpu")
_JOB_OPTIONAL = ("name", "gpu_milli", "gpu_model", "workers", "priority")
_NODE_REQUIRED = ("name", "cpu_milli", "memory_mib", "gpu", "gpu_model")
_NODE_OPTIONAL = ("labels",)


class _Row:
    """One CSV record with its line number; field accessors raise ``TraceError`` naming the field."""

    def __init__(self, source: str, line: int, values: Mapping[str, str | None]) -> None:
        self.source = source
        self.line = line
        self.values = values

    def error(self, fname: str, message: str) -> TraceError:
        return TraceError(f"{self.source}:{self.line}: {fname}: {message}")

    def text(self, fname: str, default: str | None = None) -> str:
        raw = self.values.get(fname)
        if raw is None:
            if default is not None:
                return default
            raise self.error(fname, "missing value (the row has fewer fields than the header)")
        return raw.strip()

    def number(self, fname: str, default: float | None = None) -> float:
        raw = self.text(fname, "" if default is not None else None)
        if raw == "" and default is not None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise self.error(fname, f"not a number: {raw!r}") from None
        if not math.isfinite(value):
            raise self.error(fname, f"must be a finite number (got {raw!r})")
        return value

    def whole(self, fname: str, default: int | None = None) -> int:
        value = self.number(fname, None if default is None else float(default))
        if value != math.floor(value) or abs(value) > 2**53:
            raise self.error(fname, f"not a whole number: {self.values.get(fname)!r}")
        return int(value)


def _records(
    lines: Iterable[str], source: str, required: tuple[str, ...], optional: tuple[str, ...] | None
) -> Iterator[_Row]:
    """Rows of a CSV text; checks the header (``optional=None``: extra columns are allowed)."""
    reader = csv.DictReader(lines)
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        raise TraceError(f"{source}:1: not a CSV header ({exc})") from None
    if not header:
        raise TraceError(f"{source}:1: empty file (expected a header with {', '.join(required)})")
    names = [h.strip() if h is not None else "" for h in header]
    reader.fieldnames = names
    missing = [c for c in required if c not in names]
    if missing:
        raise TraceError(f"{source}:1: missing column(s) {', '.join(missing)} (header: {', '.join(names)})")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise TraceError(f"{source}:1: duplicate column(s) {', '.join(dup)}")
    if optional is not None:
        unknown = [c for c in names if c not in required and c not in optional]
        if unknown:
            known = ", ".join((*required, *optional))
            raise TraceError(f"{source}:1: unknown column(s) {', '.join(unknown)} (known: {known})")
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise TraceError(f"{source}:{reader.line_num}: malformed CSV ({exc})") from None
        if None in values:
            raise TraceError(f"{source}:{reader.line_num}: more fields than the header has columns")
        yield _Row(source, reader.line_num, values)


def _build(row: _Row, make: Callable[..., T], **fields: object) -> T:
    """Call a constructor whose ``__post_init__`` raises ``ValueError('field: ...')``; add the line."""
    try:
        return make(**fields)
    except TraceError:
        raise
    except ValueError as exc:
        raise TraceError(f"{row.source}:{row.line}: {exc}") from None


def _read_text(path: Path) -> io.StringIO:
    try:
        with path.open(encoding="utf-8", newline="") as f:
            # Read whole (traces are small) so that a quoted field may span lines, as csv allows.
            return io.StringIO(f.read(), newline="")
    except UnicodeDecodeError as exc:
        raise TraceError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise TraceError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _named_nodes(records: Iterable[_Row], name_field: str, source: str) -> Iterator[tuple[_Row, str]]:
    """Each node row with its name; a name seen before is an error, and so is a file without nodes."""
    seen: set[str] = set()
    for r in records:
        name = r.text(name_field)
        if name in seen:
            raise r.error(name_field, f"duplicate node name {name!r}")
        seen.add(name)
        yield r, name
    if not seen:
        raise TraceError(f"{source}: no nodes")


def _models(text: str) -> frozenset[str] | None:
    parts = frozenset(p.strip() for p in text.split("|") if p.strip())
    return parts or None


# --- openb -------------------------------------------------------------------------------------------


def parse_openb_pods(lines: Iterable[str], source: str) -> JobTable:
    rows: list[JobRow] = []
    for r in _records(lines, source, _OPENB_POD_COLUMNS, None):
        created = r.number("creation_time")
        deleted = r.number("deletion_time")
        scheduled_raw = r.text("scheduled_time", "")
        started = r.number("scheduled_time") if scheduled_raw else created
        if started < created:
            raise r.error("scheduled_time", f"before creation_time ({started:g} < {created:g})")
        if deleted < started:
            raise r.error("deletion_time", f"before the pod started ({deleted:g} < {started:g})")
        num_gpu = r.whole("num_gpu")
        gpu_milli = r.whole("gpu_milli")
        rows.append(
            _build(
                r,
                JobRow,
                name=r.text("name") or f"line-{r.line}",
                submit_s=created,
                duration_s=deleted - started,
                cpu_milli=r.whole("cpu_milli"),
                memory_mib=r.whole("memory_mib"),
                num_gpu=num_gpu,
                gpu_milli=gpu_milli if num_gpu > 0 else 0,
                gpu_models=_models(r.text("gpu_spec", "")),
            )
        )
    return JobTable.from_rows(rows)


def parse_openb_nodes(lines: Iterable[str], source: str) -> tuple[NodeSpec, ...]:
    nodes: list[NodeSpec] = []
    for r, name in _named_nodes(_records(lines, source, _OPENB_NODE_COLUMNS, None), "sn", source):
        cpu = r.whole("cpu_milli")
        gpu = r.whole("gpu")
        model = r.text("model") if gpu > 0 else ""
        nodes.append(
            _build(
                r,
                NodeSpec,
                name=name,
                cpu_milli=cpu,
                memory_mib=r.whole("memory_mib"),
                gpu=gpu,
                gpu_model=model,
                labels=default_labels(cpu, gpu, model),
            )
        )
    return tuple(nodes)


def read_openb(folder: Path, variant: str = "default") -> tuple[JobTable, tuple[NodeSpec, ...]]:
    """Read ``openb_pod_list_<variant>.csv`` and the full node list from an openb folder."""
    if variant == "multigpu50":
        raise TraceError("openb:multigpu50 has no creation/deletion times and cannot be replayed in time")
    if variant not in OPENB_VARIANTS:
        raise TraceError(f"--trace openb:{variant}: unknown variant (have: {', '.join(OPENB_VARIANTS)})")
    pods = folder / f"openb_pod_list_{variant}.csv"
    nodes = folder / OPENB_NODE_FILE
    return parse_openb_pods(_read_text(pods), str(pods)), parse_openb_nodes(_read_text(nodes), str(nodes))


# --- generic CSV ---------------------------------------------------------------------------------------


def parse_generic_jobs(lines: Iterable[str], source: str) -> JobTable:
    rows: list[JobRow] = []
    for r in _records(lines, source, _JOB_REQUIRED, _JOB_OPTIONAL):
        num_gpu = r.whole("num_gpu")
        gpu_milli = r.whole("gpu_milli", GPU_MILLI_PER_GPU if num_gpu > 0 else 0)
        rows.append(
            _build(
                r,
                JobRow,
                name=r.text("name", "") or f"job-{r.line}",
                submit_s=r.number("submit_s"),
                duration_s=r.number("duration_s"),
                cpu_milli=r.whole("cpu_milli"),
                memory_mib=r.whole("memory_mib"),
                num_gpu=num_gpu,
                gpu_milli=gpu_milli,
                gpu_models=_models(r.text("gpu_model", "")),
                workers=r.whole("workers", 1),
                priority=r.whole("priority", 0),
            )
        )
    return JobTable.from_rows(rows)


def _labels(row: _Row) -> dict[str, str]:
    text = row.text("labels", "")
    out: dict[str, str] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise row.error("labels", f"expected key=value pairs separated by ';' (got {part.strip()!r})")
        out[key.strip()] = value.strip()
    return out


def parse_generic_nodes(lines: Iterable[str], source: str) -> tuple[NodeSpec, ...]:
    nodes: list[NodeSpec] = []
    for r, name in _named_nodes(_records(lines, source, _NODE_REQUIRED, _NODE_OPTIONAL), "name", source):
        cpu = r.whole("cpu_milli")
        gpu = r.whole("gpu")
        model = r.text("gpu_model")
        labels = _labels(r)
        defaults = default_labels(cpu, gpu, model)
        for key in (GPU_MODEL_LABEL, NODE_CLASS_LABEL):
            if key in defaults:
                labels.setdefault(key, defaults[key])
        nodes.append(
            _build(
                r,
                NodeSpec,
                name=name,
                cpu_milli=cpu,
                memory_mib=r.whole("memory_mib"),
                gpu=gpu,
                gpu_model=model,
                labels=labels,
            )
        )
    return tuple(nodes)


def read_generic(jobs: Path, nodes: Path) -> tuple[JobTable, tuple[NodeSpec, ...]]:
    return parse_generic_jobs(_read_text(jobs), str(jobs)), parse_generic_nodes(_read_text(nodes), str(nodes))


def parse_text(parser: Callable[[Iterable[str], str], T], text: str, source: str = "<text>") -> T:
    """Run a parser on a string (tests, fuzzing)."""
    return parser(io.StringIO(text, newline=""), source)
