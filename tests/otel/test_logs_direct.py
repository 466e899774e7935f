"""The direct log path writes exactly the line the stdlib record path writes; orjson and json agree."""

from __future__ import annotations

import enum
import io
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter

import atoms_otel
from atoms_otel import LogContext, get_logger
from atoms_otel.otel.logs import format as log_format
from atoms_otel.otel.logs.bridge import OTelLogHandler
from atoms_otel.otel.logs.direct import JsonLineHandler, direct_targets

ROOT = Path(__file__).resolve().parents[2]


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


@dataclass
class Point:
    x: int


# Calls covering every field the line can carry, and values json and orjson would write differently.
CALLS: list[tuple[str, Callable[[Any], None]]] = [
    ("plain", lambda log: log.info("Processing request")),
    ("two fields", lambda log: log.info("Processing request", extra_fields={"action": "create", "item": 7})),
    ("keyword fields", lambda log: log.warning("slow", duration_ms=12.5, ok=True, none=None)),
    ("%-args", lambda log: log.info("retry %d of %d", 1, 3)),
    ("one mapping arg", lambda log: log.info("user %(name)s", {"name": "ada"})),
    ("bound", lambda log: log.bind(tenant="acme").error("quota low", left=0)),
    ("secret fields", lambda log: log.info("login", password="hunter2", profile={"api_key": "k", "n": 1})),
    ("secret in message", lambda log: log.info("login failed password=hunter2 for %s", "bob")),
    ("collisions", lambda log: log.info("real", extra_fields={"message": "fake", "level": "fake"})),
    (
        "not json",
        lambda log: log.info("odd", amount=Decimal("1.50"), when=datetime(2026, 1, 2), tags={"b", "a"}),
    ),
    ("bytes and point", lambda log: log.info("odd", raw=b"\xff\x00", point=Point(1))),
    ("enums", lambda log: log.info("enums", color=Color.RED, level_=Level.HIGH)),
    ("floats", lambda log: log.info("floats", tiny=1e-05, huge=1e16, nan=float("nan"), half=0.5, zero=-0.0)),
    ("big int", lambda log: log.info("big", n=2**70, m=-(2**63) - 1)),
    ("non-str key", lambda log: log.info("keys", extra_fields={1: "one"})),  # type: ignore[dict-item]
    ("lone surrogate", lambda log: log.info("bad \ud800 text", field="x\udfff")),
    ("control chars", lambda log: log.info("line\nbreak\x00\u2028", tab="a\tb")),
    ("bad format", lambda log: log.info("%d items", "many")),
    ("custom level", lambda log: log.log(25, "between info and warning")),
]


@pytest.fixture
def only_our_handler() -> Iterator[io.StringIO]:
    """configure() writing to a buffer, and no other handler on the root logger during the test.

    pytest puts its capture handlers on the root logger for each test phase; they are handlers of
    someone else's, with which the direct path is rightly not taken, so the test body runs inside
    :func:`_alone`."""
    stream = io.StringIO()
    try:
        atoms_otel.configure(service_name="direct", advanced=atoms_otel.AdvancedOptions(log_stream=stream))
        yield stream
    finally:
        atoms_otel.shutdown()


@contextmanager
def _alone() -> Iterator[None]:
    """Only our handlers (JSON, and the OTel bridge when exporting) on the root logger inside the
    block; the others put back after."""
    root = logging.getLogger()
    others = [h for h in root.handlers if type(h) not in (JsonLineHandler, OTelLogHandler)]
    for handler in others:
        root.removeHandler(handler)
    try:
        yield
    finally:
        for handler in others:
            root.addHandler(handler)


def _without_timestamp(line: str) -> str:
    parsed = json.loads(line)
    assert isinstance(parsed.pop("timestamp"), str)
    return json.dumps(parsed)


def _lines(stream: io.StringIO, name: str) -> list[str]:
    """The lines written by logger ``name`` (split at newlines only: U+2028 stays inside a line)."""
    return [line for line in stream.getvalue().split("\n") if line and json.loads(line)["logger"] == name]


def test_direct_path_is_taken_only_when_our_handler_alone_listens(only_our_handler: io.StringIO) -> None:
    """Our JSON handler alone: direct. A handler of someone else's or a record factory: the record."""
    logger = logging.getLogger("direct.check")
    with _alone():
        _check_direct_targets(logger)


def _check_direct_targets(logger: logging.Logger) -> None:
    targets = direct_targets(logger, logging.INFO)
    assert targets is not None and [type(h) for h in targets] == [JsonLineHandler]
    targets[0].setLevel(logging.WARNING)
    try:
        assert direct_targets(logger, logging.INFO) == []  # below the handler's level: nothing written
    finally:
        targets[0].setLevel(logging.NOTSET)
    other = logging.NullHandler()
    logger.addHandler(other)
    try:
        assert direct_targets(logger, logging.INFO) is None
    finally:
        logger.removeHandler(other)
    factory = logging.getLogRecordFactory()
    logging.setLogRecordFactory(lambda *a, **k: factory(*a, **k))
    try:
        assert direct_targets(logger, logging.INFO) is None
    finally:
        logging.setLogRecordFactory(factory)
    logger.disabled = True
    try:
        assert direct_targets(logger, logging.INFO) is None
    finally:
        logger.disabled = False


@pytest.mark.parametrize(("case", "call"), CALLS, ids=[case for case, _ in CALLS])
def test_direct_and_record_paths_write_the_same_line(
    only_our_handler: io.StringIO, case: str, call: Callable[[Any], None]
) -> None:
    """Each call writes the same JSON (timestamp aside) on the direct path and through a LogRecord."""
    direct_name, record_name = f"paths.direct.{len(case)}", f"paths.record.{len(case)}"
    listener = logging.NullHandler()  # someone else listening forces the stdlib record path
    logging.getLogger(record_name).addHandler(listener)
    try:
        with (
            _alone(),
            LogContext(user_id="u1", correlation_id="c1", feature="x"),
            trace.get_tracer("t").start_as_current_span("op"),
        ):
            assert direct_targets(logging.getLogger(direct_name), logging.INFO) is not None
            call(get_logger(direct_name))
            call(get_logger(record_name))
    finally:
        logging.getLogger(record_name).removeHandler(listener)
    direct, record = _lines(only_our_handler, direct_name), _lines(only_our_handler, record_name)
    assert len(direct) == len(record) == 1, only_our_handler.getvalue()
    normalised = _without_timestamp(direct[0]).replace(direct_name, "NAME")
    assert normalised == _without_timestamp(record[0]).replace(record_name, "NAME")


@pytest.mark.parametrize(("case", "call"), CALLS, ids=[case for case, _ in CALLS])
def test_orjson_and_the_json_module_write_identical_lines(
    only_our_handler: io.StringIO, case: str, call: Callable[[Any], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same call renders byte for byte the same with orjson and with the json module alone."""
    assert log_format.ORJSON, "orjson is a dev dependency: installed for this test"
    with _alone(), LogContext(user_id="u1", correlation_id="c1"):
        call(get_logger("encoders.fast"))
        monkeypatch.setattr(log_format, "orjson", None)
        call(get_logger("encoders.stdlib"))
    fast, slow = _lines(only_our_handler, "encoders.fast"), _lines(only_our_handler, "encoders.stdlib")
    assert len(fast) == len(slow) == 1
    fast_stamp, slow_stamp = json.loads(fast[0])["timestamp"], json.loads(slow[0])["timestamp"]
    fast_line = fast[0].replace(fast_stamp, "T").replace("encoders.fast", "N")
    assert fast_line == slow[0].replace(slow_stamp, "T").replace("encoders.stdlib", "N")


@pytest.mark.parametrize(
    "value",
    [
        1e-05,
        1e16,
        1.2345678901234568e17,
        0.1,
        123.0,
        -0.0,
        float("inf"),
        2**64,
        "é\u2028",
        Color.RED,
        [1.5e-7],
    ],
)
def test_encode_matches_the_json_module_for_values_orjson_writes_differently(value: Any) -> None:
    """Floats with exponents, infinities, big ints, enums, nested values: encode() == the json module."""
    entry = {"message": "m", "value": value}
    assert log_format.encode(entry) == log_format.encode_stdlib(entry)


def test_without_orjson_lines_are_written_by_the_json_module(tmp_path: Path) -> None:
    """With orjson not importable the package still loads and writes the same JSON line."""
    script = tmp_path / "no_orjson.py"
    script.write_text(
        "import sys, io, json, logging\n"
        "sys.modules['orjson'] = None  # import orjson now raises ImportError\n"
        "import atoms_otel\n"
        "from atoms_otel.otel.logs import format as f\n"
        "assert f.ORJSON is False and f.orjson is None\n"
        "stream = io.StringIO()\n"
        "atoms_otel.configure(service_name='x', advanced=atoms_otel.AdvancedOptions(log_stream=stream))\n"
        "atoms_otel.get_logger('app').info('hello', items=2, ratio=0.5)\n"
        "atoms_otel.shutdown()\n"
        "line = json.loads(stream.getvalue().splitlines()[-1])\n"
        "print(json.dumps({k: line[k] for k in ('level', 'logger', 'message', 'items', 'ratio')}))\n",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "level": "INFO",
        "logger": "app",
        "message": "hello",
        "items": 2,
        "ratio": 0.5,
    }


class _Keep(logging.Handler):
    """A handler of someone else's: keeps the records it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_handler_added_later_gets_the_record_at_once(only_our_handler: io.StringIO) -> None:
    """Direct while alone; once a handler is added to the root logger it receives the record,
    with the caller's location, and our line is still written."""
    log = get_logger("later.added")
    keep = _Keep()
    with _alone():
        log.info("first", n=1)
        logging.getLogger().addHandler(keep)
        try:
            log.info("second", n=2)
        finally:
            logging.getLogger().removeHandler(keep)
    assert [r.getMessage() for r in keep.records] == ["second"]
    assert keep.records[0].funcName == "test_a_handler_added_later_gets_the_record_at_once"
    assert [json.loads(line)["n"] for line in _lines(only_our_handler, "later.added")] == [1, 2]


def test_lines_from_many_threads_stay_whole(only_our_handler: io.StringIO) -> None:
    """Concurrent direct-path lines never interleave: each written line is one JSON object."""
    log = get_logger("threads.direct")

    def work(worker: int) -> None:
        for i in range(300):
            log.info("tick", worker=worker, i=i, pad="x" * 200)

    with _alone():
        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    lines = _lines(only_our_handler, "threads.direct")
    assert len(lines) == 8 * 300
    assert {(json.loads(line)["worker"], json.loads(line)["i"]) for line in lines} == {
        (w, i) for w in range(8) for i in range(300)
    }


@pytest.fixture
def exporting() -> Iterator[tuple[io.StringIO, InMemoryLogRecordExporter]]:
    """configure() with logs exported (in memory, synchronously): the bridge is on the root logger."""
    stream, exporter = io.StringIO(), InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    advanced = atoms_otel.AdvancedOptions(
        log_stream=stream, log_exporters=(exporter,), synchronous_export=True
    )
    try:
        atoms_otel.configure(service_name="direct", advanced=advanced)
        yield stream, exporter
    finally:
        atoms_otel.shutdown()


def _otel(exporter: InMemoryLogRecordExporter, name: str) -> list[dict[str, Any]]:
    """The exported records of logger ``name``, as comparable dicts (timestamps left out)."""
    records = [r.log_record for r in exporter.get_finished_logs() if r.instrumentation_scope.name == name]
    return [
        {
            "body": record.body,
            "severity": (record.severity_number, record.severity_text),
            "attributes": dict(record.attributes or {}),
            "trace": (record.trace_id, record.span_id),
        }
        for record in records
    ]


@pytest.mark.parametrize(("case", "call"), CALLS, ids=[case for case, _ in CALLS])
def test_with_log_export_both_paths_give_the_same_line_and_otel_record(
    exporting: tuple[io.StringIO, InMemoryLogRecordExporter], case: str, call: Callable[[Any], None]
) -> None:
    """With the bridge on, the direct path writes the same JSON line and exports the same OTel
    record — body, severity, attributes with the caller's code.* location, trace — as the record path."""
    stream, exporter = exporting
    direct_name, record_name = f"export.direct.{len(case)}", f"export.record.{len(case)}"
    listener = logging.NullHandler()
    logging.getLogger(record_name).addHandler(listener)
    try:
        with (
            _alone(),
            LogContext(user_id="u1", correlation_id="c1", feature="x"),
            trace.get_tracer("t").start_as_current_span("op"),
        ):
            targets = direct_targets(logging.getLogger(direct_name), logging.INFO)
            assert targets is not None and {type(t).__name__ for t in targets} == {
                "JsonLineHandler",
                "OTelLogHandler",
            }
            call(get_logger(direct_name))
            call(get_logger(record_name))
    finally:
        logging.getLogger(record_name).removeHandler(listener)
    direct, record = _lines(stream, direct_name), _lines(stream, record_name)
    assert len(direct) == len(record) == 1
    assert _without_timestamp(direct[0]).replace(direct_name, "N") == _without_timestamp(record[0]).replace(
        record_name, "N"
    )
    exported = _otel(exporter, direct_name)
    assert repr(exported) == repr(_otel(exporter, record_name))  # repr: a NaN attribute equals itself
    if case == "bad format":  # the message cannot be formatted: the bridge reports it, exports nothing
        assert exported == []
    else:
        assert len(exported) == 1 and exported[0]["attributes"]["code.function.name"] == "<lambda>"


def _log_from_helper(log: Any) -> None:
    log.info("from a helper", stacklevel=2)


def test_stacklevel_names_the_same_caller_on_both_paths(
    exporting: tuple[io.StringIO, InMemoryLogRecordExporter],
) -> None:
    """``stacklevel=2`` from a helper: both paths report the helper's caller (this test)."""
    _, exporter = exporting
    listener = logging.NullHandler()
    logging.getLogger("stack.record").addHandler(listener)
    try:
        with _alone():
            for name in ("stack.direct", "stack.record"):
                _log_from_helper(get_logger(name))
    finally:
        logging.getLogger("stack.record").removeHandler(listener)
    direct, record = _otel(exporter, "stack.direct"), _otel(exporter, "stack.record")
    assert direct == record
    assert (
        direct[0]["attributes"]["code.function.name"] == "test_stacklevel_names_the_same_caller_on_both_paths"
    )
    assert direct[0]["attributes"]["code.file.path"] == __file__
