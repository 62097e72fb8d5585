"""Tests of crm_analytics.ingest.tables helpers: the thread's local Ibis DuckDB and the clean orders' order."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from crm_analytics.ingest.tables import by_customer, local_ibis, sorted_keys


def _views(db) -> set[str]:
    return {r[0] for r in db.backend.con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}


def test_local_ibis_releases_its_data_and_keeps_the_database():
    with local_ibis() as db:
        t = db.table(pa.table({"k": ["a", "b", "a"], "x": [1.0, 2.0, 3.0]}))
        got = t.group_by("k").aggregate(total=t.x.sum()).order_by("k").to_pandas()
        assert got["total"].tolist() == [4.0, 2.0]
        assert len(_views(db)) == 1
        backend = db.backend
    assert _views(db) == set()  # nothing left registered: the frame can be freed
    with pytest.raises(RuntimeError), local_ibis() as db2:
        db2.table(pd.DataFrame({"k": ["z"]}))
        raise RuntimeError("a failing query")
    assert db2.backend is backend and _views(db2) == set()  # one database per thread, released on error too


def test_local_ibis_gives_each_thread_its_own_database():
    seen = []

    def work():
        with local_ibis() as db:
            t = db.table(pd.DataFrame({"x": np.arange(10)}))
            seen.append((db.backend, int(t.x.sum().to_pandas())))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert [total for _, total in seen] == [45, 45] and seen[0][0] is not seen[1][0]


def test_by_customer_groups_orders_by_customer_then_time():
    ts = pd.to_datetime(["2024-01-03", "2024-01-01", "2024-01-02", "2024-01-01", "2024-01-01"], utc=True)
    orders = pd.DataFrame({"order_id": ["o5", "o4", "o3", "o2", "o1"], "customer_id": ["b", None, "a", "b", "b"],
                           "order_ts": ts}, index=[10, 11, 12, 13, 14])
    out = by_customer(orders)
    assert out["order_id"].tolist() == ["o3", "o1", "o2", "o5", "o4"]
    assert out.index.equals(pd.RangeIndex(5)) and orders["order_id"].tolist()[0] == "o5"  # input untouched


def test_sorted_keys_number_each_new_id_and_leave_missing_ids_null():
    key, ids = sorted_keys(pa.array(["a", "a", "b", "c", "c", "c", "é", None, None]))
    assert key.to_pylist() == [0, 0, 1, 2, 2, 2, 3, None, None] and ids.to_pylist() == ["a", "b", "c", "é"]
    assert ids.take(key).to_pylist()[:7] == ["a", "a", "b", "c", "c", "c", "é"]
    for unsorted in (["b", "a"], ["a", None, "b"], ["a"], [None, None]):
        assert sorted_keys(pa.array(unsorted, type=pa.string())) == (None, None), unsorted
