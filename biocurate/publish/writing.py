"""Writing a version's files: every export format (``biocurate.publish.formats``) in one pass
over the records, each file as its records arrive, so memory does not grow with the items.

``write_files`` writes most formats of a large version in a process of its own (``serve``), fed
the records over a pipe as they are made: encoding and writing them (5.9 GB of JSON and Parquet at
100k calls) is most of the pass, and making them needs the store, which only the publishing
process may open; so the two halves run on two cores, the publishing process writing the formats
of ``WRITTEN_BY_PUBLISH`` beside making the records. That process imports ``FORMATS`` afresh: a format
is an entry in ``biocurate.publish.formats``, not one added to the registry at run time.
"""

from __future__ import annotations

import json
import pickle
import queue
import shutil
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from biocurate.catalog import Catalog
from biocurate.config import Config
from biocurate.publish.common import SPLITS
from biocurate.publish.formats import FORMATS, PARQUET_ROW_GROUP, Export, ExportFormat, dumps
from biocurate.workers import answer, answer_pipe, receive, running, send, unpack


def _write_json(path: Path, data: dict | list) -> None:
    """A dict indented, a list as an array one element a line (as the record files)."""
    if isinstance(data, dict):
        path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n")
    else:
        with path.open("wb") as out:  # one element a line: readable, and 10x faster than indent
            out.write(b"[\n" + b",\n".join(dumps(d) for d in data) + b"\n]\n")


# Bytes a record file buffers before it writes (the default 8 KB: a system call every record or two).
WRITE_BUFFER = 1 << 20
# Records a Parquet writer gets at a time.
PARQUET_BATCH = 1_000


class _Sink:
    """One file's records as they arrive (the file is made at the first record). ``part``: one
    split's share of a file of every split, joined by ``_join_parts``."""

    def __init__(self, path: Path, fmt: ExportFormat, export: Export, part: bool = False):
        self.path, self.fmt, self.export, self.part = path, fmt, export, part
        self.count = 0
        self.out: Any = None
        self.pending: list[dict] = []

    def add(self, record: dict, text: bytes | None = None) -> None:
        """A record, or (``text``) its JSON text when another file of the same encoding made it."""
        if self.fmt.write is not None:
            self.pending.append(record)
            if len(self.pending) >= min(PARQUET_BATCH, self.export.row_group):
                self._write_pending()
            self.count += 1
            return
        assert self.fmt.encode is not None
        if text is None:
            text = self.fmt.encode(record, self.export)
        if self.out is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.out = self.path.open("wb", buffering=WRITE_BUFFER)
            if not (self.fmt.jsonl or self.part):
                self.out.write(b"[\n")
        if self.fmt.jsonl:
            self.out.write(text + b"\n")
        else:
            self.out.write(b",\n" + text if self.count else text)
        self.count += 1

    def _write_pending(self) -> None:
        if self.out is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.out = self.fmt.write(self.path, self.export)  # type: ignore[misc]
        self.out.add(self.pending)
        self.pending = []

    def close(self) -> None:
        if self.pending:
            self._write_pending()
        if self.out is None:
            return
        if self.fmt.write is None and not (self.fmt.jsonl or self.part):
            self.out.write(b"\n]\n")
        self.out.close()


def _join_parts(path: Path, parts: list[_Sink], jsonl: bool) -> None:
    """One file of the splits' parts (in split order), as if written at once."""
    with path.open("wb") as out:
        out.write(b"" if jsonl else b"[\n")
        for i, part in enumerate(parts):
            if i and not jsonl:
                out.write(b",\n")
            with part.path.open("rb") as handle:
                shutil.copyfileobj(handle, out)
            part.path.unlink()
        out.write(b"" if jsonl else b"\n]\n")


class FormatFiles:
    """The files of the export formats ``names`` (default: every one), written as records arrive
    (``add``, in item_id order, so each split's files are in item_id order); ``close`` finishes
    them. A split without items gets no files (the ``datasets`` loader refuses an empty file)."""

    def __init__(
        self,
        folder: Path,
        catalog: Catalog,
        version_id: str,
        config: Config,
        row_group: int = PARQUET_ROW_GROUP,
        names: Iterable[str] | None = None,
    ):
        self.folder = folder
        self.export = Export(folder, version_id, config.publish.system_prompt, catalog, row_group)
        wanted = set(FORMATS if names is None else names)
        self.names = [n for n in FORMATS if n in wanted]
        self.sinks: dict[str, dict[str, _Sink]] = {}  # format -> split -> sink
        for name in self.names:
            fmt = FORMATS[name]
            if fmt.path is None:
                continue
            per_split = "{split}" in fmt.path
            self.sinks[name] = {
                split: _Sink(
                    folder / (fmt.path.format(split=split) if per_split else f"{fmt.path}.{split}.part"),
                    fmt,
                    self.export,
                    part=not per_split,
                )
                for split in fmt.splits
            }
        self.by_split = {s: [(FORMATS[n], per[s]) for n, per in self.sinks.items() if s in per] for s in SPLITS}

    def add(self, record: dict) -> None:
        texts: dict[Callable, bytes] = {}  # each encoding made once a record (BioTool.json: as biotool/<split>.json)
        for fmt, sink in self.by_split[record["split"]]:
            if fmt.holds is None or fmt.holds(record, self.export):
                if fmt.encode is None:
                    sink.add(record)
                    continue
                if fmt.encode not in texts:
                    texts[fmt.encode] = fmt.encode(record, self.export)
                sink.add(record, texts[fmt.encode])

    def write(self, recs: Iterable[dict]) -> dict[str, list[str]]:
        """Every record, then ``close``."""
        for record in recs:
            self.add(record)
        return self.close()

    def close(self) -> dict[str, list[str]]:
        """Per format, the relative paths written."""
        written: dict[str, list[str]] = {}
        for name in self.names:
            fmt, paths = FORMATS[name], written.setdefault(name, [])
            for sink in self.sinks.get(name, {}).values():
                sink.close()
            present = [s for s in fmt.splits if name in self.sinks and self.sinks[name][s].count]
            if fmt.path is not None and "{split}" in fmt.path:
                paths += [fmt.path.format(split=s) for s in present]
            elif fmt.path is not None and present:
                _join_parts(self.folder / fmt.path, [self.sinks[name][s] for s in present], fmt.jsonl)
                paths.append(fmt.path)
            for rel, build in fmt.files:
                (self.folder / rel).parent.mkdir(parents=True, exist_ok=True)
                _write_json(self.folder / rel, build(present, self.export))
                paths.append(rel)
        return written


def _in_order(*written: dict[str, list[str]]) -> list[str]:
    """The paths of every format, in FORMATS' order."""
    return [path for name in FORMATS for paths in written for path in paths.get(name, [])]


def write_formats(
    folder: Path,
    recs: Iterable[dict],
    catalog: Catalog,
    version_id: str,
    config: Config,
    row_group: int = PARQUET_ROW_GROUP,
) -> list[str]:
    """Every export format for the non-empty splits, in one pass over the records
    (``FormatFiles``); returns the relative paths written."""
    return _in_order(FormatFiles(folder, catalog, version_id, config, row_group).write(recs))


# A version of at least this many items is written by a process of its own (below it, starting
# that process, about a second, is not repaid; at 38,400 items the records pass took 6.9 s in one
# process, 5.2 s so).
WRITER_MIN_ITEMS = 20_000
# Records sent to the writing process at a time: it writes one batch while the next is made.
ASIDE_BATCH = 2_000
# The formats the publishing process writes itself while the writing process writes the others,
# so that both stay busy: at 100k calls (384,244 items, 5.9 GB of files) the writing process had
# 79 s of CPU to the publishing process's 38 s (making the records, the digest), and the records
# pass waited on it (82 s). The OpenAI lines are about a fifth of the writing. (With BioTool's
# ShareGPT files here too, the pass took 41.6 and 44.1 s, once the writing process read ahead;
# 40.1 and 39.9 s without: then this process had become the slower.)
WRITTEN_BY_PUBLISH = ("openai",)


def write_files(
    folder: Path,
    recs: Iterable[dict],
    items: int,
    catalog: Catalog,
    version_id: str,
    config: Config,
    row_group: int = PARQUET_ROW_GROUP,
) -> list[str]:
    """``write_formats`` of ``items`` records: from ``WRITER_MIN_ITEMS``, the formats but
    ``WRITTEN_BY_PUBLISH`` in a process of its own (the same files), below it all here."""
    if items < WRITER_MIN_ITEMS:
        return write_formats(folder, recs, catalog, version_id, config, row_group)
    here = FormatFiles(folder, catalog, version_id, config, row_group, WRITTEN_BY_PUBLISH)
    aside = [name for name in FORMATS if name not in here.names]
    return _write_aside(folder, recs, here, (folder, catalog, version_id, config, row_group, aside))


def _write_aside(folder: Path, recs: Iterable[dict], here: FormatFiles, task: tuple) -> list[str]:
    """``FormatFiles(*task)``'s files in a child process fed ``recs`` in batches, and ``here``'s
    in this one. An error there is raised here (with its traceback as a note); one here stops the
    child before it goes on."""
    with running("biocurate.publish.writing:serve") as child:  # killed before the caller removes the folder
        assert child.stdin is not None and child.stdout is not None
        try:
            send(child.stdin, task)
            batch: list[dict] = []
            for record in recs:
                here.add(record)
                batch.append(record)
                if len(batch) >= ASIDE_BATCH:
                    send(child.stdin, batch)
                    batch = []
            send(child.stdin, batch)
            send(child.stdin, None)
            child.stdin.close()
        except BrokenPipeError:
            pass  # the child stopped: its answer says why
        written = here.close()
        payload = receive(child.stdout)
        child.wait()
    return _in_order(written, unpack(payload, child, f"writing {folder.name}'s files"))


# Batches the writing process reads ahead of the one it writes (a thread reads them), so that
# neither process waits for the other whenever it is a few batches faster: handing each batch over
# in lockstep, each process idled 10 to 15 s of a 50 s records pass at 100k calls; reading ahead
# (4 batches, and pipes of PIPE_BYTES), the pass took 43.5 and 45.0 s against 49.0 and 47.8 s, its
# peak 15 to 25 MB higher (a batch of 2,000 records is about 2.5 MB pickled; 16 batches ahead were
# no faster); 2 keep most of it with less memory, as publish's peak sits near 1.5 times the 10k one.
READ_AHEAD = 2


def _read_ahead(tasks: IO[bytes]) -> Iterator[dict]:
    """The records of the batches on ``tasks`` until None, read (unpickled) by a thread up to
    READ_AHEAD batches ahead; an error reading is raised here."""
    ahead: queue.Queue = queue.Queue(maxsize=READ_AHEAD)

    def read() -> None:
        try:
            while (batch := pickle.load(tasks)) is not None:
                ahead.put(batch)
            ahead.put(None)
        except BaseException as exc:  # noqa: BLE001  (raised in the writing thread)
            ahead.put(exc)

    threading.Thread(target=read, daemon=True, name="read-ahead").start()
    while (batch := ahead.get()) is not None:
        if isinstance(batch, BaseException):
            raise batch
        yield from batch


def serve() -> None:
    """The writing process's main: the task, then batches of records until None; one answer."""
    answers, tasks = answer_pipe(), sys.stdin.buffer

    def run() -> dict[str, list[str]]:
        task = pickle.load(tasks)
        return FormatFiles(*task).write(_read_ahead(tasks))

    answer(answers, run)
