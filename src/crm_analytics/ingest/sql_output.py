"""Writing the events (or any table) that :class:`crm_analytics.ingest.events_sql.SqlEvents` cleaned in DuckDB:
the kept rows streamed in file order, stitched, erased and pseudonymised batch by batch, and the rejects, to
parquet files that read back as pandas would have written them."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crm_analytics.ingest.cleaning import clean_column, rejects_frame
from crm_analytics.ingest.contracts import PERSONAL_COLUMNS
from crm_analytics.ingest.privacy import pseudonymise, pseudonymise_table
from crm_analytics.ingest.tables import ParquetTable, sql_name

if TYPE_CHECKING:
    from crm_analytics.ingest.events_sql import _Col

__all__ = ["SqlWriter", "BATCH_ROWS"]

#: rows per batch streamed from DuckDB to the parquet writer (one row group each)
BATCH_ROWS = 1 << 20


class SqlWriter:
    """The output half of :class:`crm_analytics.ingest.events_sql.SqlEvents` (a mixin: it uses the cleaner's
    connection ``con``, contract ``spec``, columns ``cols``, ``out_columns``, ``reject_columns``, ``counts``,
    ``dropped`` rows, stitching owners and erasure lists)."""

    def _schemas(self) -> tuple[pa.Schema, pa.Schema]:
        """The parquet schemas (with pandas metadata) that pandas writes for the kept rows and the rejects,
        taken from the pandas rules themselves."""
        kept = {}
        for c in self.spec.columns:
            empty = pd.Series([], dtype=_pandas_dtype(self.cols[c.name]))
            kept[c.name] = clean_column(c, empty, ts_format="ISO8601" if c.type in ("ts", "date") else None)[0]
        for a in self.out_columns:
            if a.startswith("attr_"):
                kept[a] = pd.Series([], dtype=_pandas_dtype(self.cols[a]))
        kept_frame = pseudonymise_table(self.name, pd.DataFrame(kept), self.key) if self.key else pd.DataFrame(kept)
        bad = pd.DataFrame({c: pd.Series([None], dtype=object) for c in self.reject_columns})
        bad["_source_line"] = np.array([1], dtype="int64")
        reason = pd.Series(["duplicate"], dtype="string")
        if not self.counts["rows_rejected"] + self.counts["rows_duplicate"]:  # pandas types an empty list otherwise
            bad, reason = bad.iloc[:0], reason.iloc[:0]
        rejects = rejects_frame(bad, reason)
        rejects = pseudonymise_table(self.name, rejects, self.key) if self.key else rejects
        return (_utf8(pa.Schema.from_pandas(kept_frame, preserve_index=False)),
                pa.Schema.from_pandas(rejects.iloc[:0], preserve_index=False))

    def write(self, path: Path, rejects_path: Path) -> tuple[ParquetTable, ParquetTable]:
        """Write the kept events (file order, stitched, erased) and the rejects; return both as
        :class:`ParquetTable`. The DuckDB connection is closed afterwards."""
        with self._timed("write"):
            return self._write(path, rejects_path)

    def _write(self, path: Path, rejects_path: Path) -> tuple[ParquetTable, ParquetTable]:
        kept_schema, rejects_schema = self._schemas()
        self._write_rejects(rejects_path, rejects_schema)
        stitch = self.stitching is not None
        stream = pa.schema(list(kept_schema.remove_metadata()) + [pa.field("_row", pa.int64())]
                           + ([pa.field("_h", pa.uint64())] if stitch else []))

        def rows_of(prefix: str, relation: str, order: str = "") -> str:
            cols = ", ".join(f"{sql_name(prefix + c)} AS {sql_name(c)}" for c in self.out_columns)
            h = f", hash({sql_name(prefix + 'anonymous_id')}) AS _h" if stitch else ""
            return f"SELECT {cols}, _row{h} FROM {relation}{order}"

        settled = self.con.sql(rows_of("f:", "resolved WHERE _patched", " ORDER BY _row")).to_arrow_table()
        settled = settled.cast(stream)
        settled_rows = settled.column("_row").to_numpy()
        dictionary = [c for c in self.out_columns if c not in self.spec.key  # ids and times rarely repeat
                      and not (c in self.spec.column_names and self.spec.column(c).type == "ts")]
        removed, i = 0, 0
        numbers = [f.name for f in kept_schema if f.type != pa.string()]  # min/max of text: slow, of no use here
        writer = pq.ParquetWriter(path, kept_schema, compression="snappy", use_dictionary=dictionary,
                                  write_statistics=numbers)
        try:
            for batch in self._stream(rows_of("w:", "ev")):
                rows = batch.column("_row").to_numpy()
                table = pa.Table.from_batches([batch]).filter(pa.array(~self.dropped[rows])).cast(stream)
                if len(rows) and i < len(settled_rows):
                    j = int(np.searchsorted(settled_rows, rows[-1], side="right"))
                    if j > i:  # rows kept with values pandas cleaned: put them in their place
                        table = pa.concat_tables([table, settled.slice(i, j - i)])
                        table = table.take(pc.sort_indices(table.column("_row")))
                        i = j
                removed += self._emit(writer, table, kept_schema)
            removed += self._emit(writer, settled.slice(i), kept_schema)
        finally:
            writer.close()
        if self._erased is not None and removed != self._erased["rows"]:
            raise RuntimeError(f"{self.name}: {removed} rows erased while writing, {self._erased['rows']} counted")
        self.close()
        return ParquetTable(path, movable=True), ParquetTable(rejects_path, movable=True)

    def _stream(self, query: str) -> Iterator[pa.RecordBatch]:
        """The batches of *query*, in order, fetched by a second thread while this one writes the previous."""
        batches: queue.Queue = queue.Queue(maxsize=2)
        stop = threading.Event()

        def fetch() -> None:
            try:
                for batch in self.con.sql(query).to_arrow_reader(BATCH_ROWS):
                    while not stop.is_set():
                        try:
                            batches.put(batch, timeout=0.5)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
            except BaseException as exc:  # handed to the writing thread
                batches.put(exc)
            batches.put(None)

        worker = threading.Thread(target=fetch, name="events-fetch", daemon=True)
        worker.start()
        try:
            while (item := batches.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            worker.join()

    def _emit(self, writer: pq.ParquetWriter, table: pa.Table, schema: pa.Schema) -> int:
        """Stitch, erase, pseudonymise and write one batch of kept rows; return the rows erased."""
        if not table.num_rows:
            return 0
        if self.stitching is not None:
            cust = table.column("customer_id").combine_chunks()
            owners = self._owners_of(table, cust).cast(cust.type)
            table = table.set_column(table.schema.get_field_index("customer_id"), "customer_id", pc.coalesce(cust, owners))
        removed = 0
        if self._erased is not None:
            hit = pc.or_(pc.is_in(table.column("customer_id"), value_set=self._erased["ids"]),
                         pc.is_in(table.column("anonymous_id"), value_set=self._erased["devices"]))
            removed = int(pc.sum(hit).as_py() or 0)
            table = table.filter(pc.invert(hit))
        out = table.select(self.out_columns)
        for col in PERSONAL_COLUMNS.get(self.name, []) if self.key else []:
            out = out.set_column(out.schema.get_field_index(col), col, _pseudonymise_arrow(out.column(col), self.key))
        writer.write_table(out.cast(schema))
        return removed

    def _owners_of(self, table: pa.Table, cust: pa.Array) -> pa.Array:
        """The owner of each row's device where the row has no customer (null elsewhere)."""
        anon = table.column("anonymous_id").combine_chunks()
        need = np.flatnonzero(np.asarray(pc.and_(pc.is_null(cust), pc.is_valid(anon)), dtype=bool))
        where = np.full(table.num_rows, -1, dtype="int64")
        if len(need) and len(self._owner_h):
            if self._owner_h.is_unique:
                pos = self._owner_h.get_indexer(table.column("_h").to_numpy()[need])
                hit = pos >= 0
                need, pos = need[hit], pos[hit]
                same = np.asarray(pc.equal(anon.take(pa.array(need)), self._owner_anon.take(pa.array(pos))), dtype=bool)
                where[need[same]] = pos[same]
            else:  # two devices share a 64-bit hash: look the text up
                pos = pc.index_in(anon.take(pa.array(need)), value_set=self._owner_anon).to_numpy(zero_copy_only=False)
                ok = ~np.isnan(pos.astype("float64"))
                where[need[ok]] = pos[ok].astype("int64")
        return self._owner.take(pa.array(where, mask=where < 0))

    def _write_rejects(self, path: Path, schema: pa.Schema) -> None:
        """The rejected and duplicate rows, raw values as text, in file order; erased customers left out."""
        cols = []
        for c in self.reject_columns:
            expr = self.cols[c].text() if c != "_source_line" else sql_name(c)
            cols.append(f"{expr} AS {sql_name(c)}")
        erased = ""
        if self._erased is not None and "customer_id" in self.cols:
            erased = f" AND coalesce({self.cols['customer_id'].text()} NOT IN (SELECT id FROM erase_ids), TRUE)"
        table = self.con.sql(f"SELECT {', '.join(cols)}, _reason AS reason FROM resolved "
                             f"WHERE _reason IS NOT NULL{erased} ORDER BY _row").to_arrow_table()
        for col in PERSONAL_COLUMNS.get(self.name, []) if self.key else []:
            if col in table.column_names:
                table = table.set_column(table.schema.get_field_index(col), col,
                                         _pseudonymise_arrow(table.column(col), self.key))
        pq.write_table(table.cast(schema) if table.num_rows else schema.empty_table(), path, compression="snappy")


def _utf8(schema: pa.Schema) -> pa.Schema:
    """*schema* with ``string`` for ``large_string`` (what DuckDB hands over; pandas reads both alike)."""
    fields = [f.with_type(pa.string()) if f.type == pa.large_string() else f for f in schema]
    return pa.schema(fields, metadata=schema.metadata)


def _pandas_dtype(col: _Col) -> str:
    """The dtype pandas reads a raw column of this kind with."""
    return {"text": "str", "int": "float64" if col.int_as_float else "int64", "float": "float64",
            "bool": "bool", "datetime": "datetime64[us, UTC]"}.get(col.kind, "object")


def _pseudonymise_arrow(values: pa.ChunkedArray | pa.Array, key: bytes) -> pa.Array:
    """:func:`crm_analytics.ingest.privacy.pseudonymise` of an arrow column."""
    return pa.array(pseudonymise(values.to_pandas(), key), pa.string())
