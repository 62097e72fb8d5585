"""End to end: the Makefile on the `ci` dataset in a temporary copy of the project."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from crm_analytics.ingest.params import notebook_parameters, pipeline_notebooks

from conftest import copy_project, shop_params

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _make(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CRM_ANALYTICS_ROOT": str(root), "CRM_ANALYTICS_SECRET": "e2e-secret"}
    return subprocess.run(["make", "--no-print-directory", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=900)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = copy_project(tmp_path_factory.mktemp("e2e"))
    first = _make(root, "reports", "DATASET=ci")
    assert first.returncode == 0, first.stdout + first.stderr
    return root, first


def test_reports_index_and_metrics_are_published(built):
    root, first = built
    reports = root / "reports" / "ci"
    notebooks = pipeline_notebooks()
    index = (reports / "index.html").read_text()
    for nb in notebooks:
        assert f"running {nb} on ci" in first.stdout
        html = (reports / f"{nb}.html").read_text()
        assert not re.search(r'<div[^>]*class="[^"]*(jp-InputPrompt|hl-ipython3)', html), f"{nb}: code is visible"
        assert "Traceback" not in html, f"{nb}: an error is shown"
        assert not re.search(r'<div[^>]*data-mime-type="application/vnd.jupyter.stderr"', html), \
            f"{nb}: warnings or errors leak into the report"
        assert f'href="{nb}.html"' in index
        assert json.loads((reports / "metrics" / f"{nb}.json").read_text())
        assert json.loads((reports / "status" / f"{nb}.json").read_text())["status"] == "ok"
    assert index.count('class="ok"') == len(notebooks)


def test_figures_are_embedded(built):
    root, _ = built
    html = (root / "reports" / "ci" / "01_data_cleaning.html").read_text()
    assert "data:image/png;base64," in html


def test_second_run_runs_no_notebook(built):
    root, _ = built
    again = _make(root, "reports", "DATASET=ci")
    assert again.returncode == 0, again.stderr
    assert "running" not in again.stdout


def test_a_changed_param_reruns_only_the_notebooks_that_declare_it(built):
    root, _ = built
    last = pipeline_notebooks()[-1]
    own = [k for k in notebook_parameters(last) if k != "dataset"
           and all(k not in notebook_parameters(nb) for nb in pipeline_notebooks() if nb != last)]
    key = next(k for k in own if notebook_parameters(last)[k]["type"] == "int") if own else None
    if key is None:
        pytest.skip(f"{last} declares no int parameter of its own")
    params = root / "params" / "ci.yaml"
    text = params.read_text()
    default = int(notebook_parameters(last)[key]["default"])
    params.write_text(text + f"\n{key}: {default + 1}\n")
    try:
        time.sleep(1)
        run = _make(root, "reports", "DATASET=ci")
        assert run.returncode == 0, run.stderr
        ran = re.findall(r"running (\S+) on ci", run.stdout)
        assert ran == [last]
    finally:
        params.write_text(text)


def test_a_second_run_with_a_changed_input_shows_the_changes_on_the_summary(built):
    """Future margin discounted at 30 % a year instead of the default: every customer's expected value
    falls; the summary's tile says by how much since the last run and the change is listed."""
    root, _ = built
    params = root / "params" / "ci.yaml"
    text = params.read_text()
    metrics = root / "reports" / "ci" / "metrics" / "03_clv_churn.json"
    before = json.loads(metrics.read_text())["clv"]["mean"]
    params.write_text(text + "\ndiscount_rate_annual: 0.3\n")
    try:
        time.sleep(1)
        run = _make(root, "reports", "DATASET=ci")
        assert run.returncode == 0, run.stderr
        after = json.loads(metrics.read_text())["clv"]["mean"]
        assert after < before
        index = html.unescape((root / "reports" / "ci" / "index.html").read_text())
        tile = re.search(r"data-metric='03_clv_churn/clv.mean' data-value='([^']+)'>(.*?)</div>\s*<p>", index, re.S)
        assert tile and json.loads(tile.group(1)) == after
        assert re.search(r"▼ down [\d.]+% since", index[tile.start():tile.start() + 600]), index[tile.start():][:600]
        changed = index.split("What changed since")[1]
        assert "Expected customer value, next 12 months" in changed
        compare = subprocess.run([str(root / ".venv" / "bin" / "python"), "-m", "crm_analytics.reports.history", "compare",
                                  "ci"], cwd=root, capture_output=True, text=True,
                                 env={**os.environ, "CRM_ANALYTICS_ROOT": str(root)})
        assert compare.returncode == 0 and "clv.mean" in compare.stdout, compare.stdout + compare.stderr
    finally:
        params.write_text(text)


def test_a_bad_params_value_stops_before_any_notebook(built):
    root, _ = built
    params = root / "params" / "ci.yaml"
    text = params.read_text()
    index_before = (root / "reports" / "ci" / "index.html").read_bytes()
    params.write_text(text + "\nstale_after_days: soon\n")
    try:
        run = _make(root, "reports", "DATASET=ci")
        assert run.returncode != 0
        assert "ci.yaml: key 'stale_after_days' must be int" in run.stderr
        assert "running" not in run.stdout and "Traceback" not in run.stderr
        assert (root / "reports" / "ci" / "index.html").read_bytes() == index_before
    finally:
        params.write_text(text)


def _published_text(root: Path) -> dict[str, str]:
    """Every published or derived file of the ci dataset as text: reports, metrics, exports, clean tables."""
    import pandas as pd

    out = {}
    for folder in (root / "reports" / "ci", root / "data" / "interim" / "ci", root / "data" / "processed" / "ci"):
        for f in sorted(folder.rglob("*")):
            if f.suffix in (".html", ".json", ".csv", ".md", ".txt"):
                out[str(f.relative_to(root))] = f.read_text(encoding="utf-8", errors="replace")
            elif f.suffix == ".parquet":
                out[str(f.relative_to(root))] = pd.read_parquet(f).astype("string").to_csv(index=False)
    return out


def test_no_personal_data_in_reports_metrics_tables_or_logs(built):
    import pandas as pd

    root, first = built
    raw = pd.read_parquet(root / "data" / "raw" / "ci" / "customers.parquet")
    needles = set(raw["email"]) | set(raw["phone"]) | set(raw["full_name"])
    texts = _published_text(root)
    texts["make log"] = first.stdout + first.stderr
    assert len(texts) > 10
    for name, text in texts.items():
        leaked = [n for n in needles if n in text]
        assert not leaked, f"{name} contains personal data, e.g. {leaked[:1]}"


def test_a_users_own_export_through_the_generic_adapter_end_to_end(built):
    """A Shopify-style export (Windows-1254, `;`, decimal commas, dd.mm.yyyy, own column names and
    status values) added as params/myshop.yaml runs through cleaning, segmentation and CLV with make."""
    import pandas as pd

    root, _ = built
    raw = root / "data" / "raw" / "ci"
    orders = pd.read_parquet(raw / "orders.parquet")
    ts = pd.to_datetime(orders["order_ts"], format="%Y-%m-%dT%H:%M:%SZ", errors="coerce")
    export = pd.DataFrame({
        "Sipariş No": orders["order_id"],
        "Müşteri": orders["customer_id"],
        "Tarih": ts.dt.strftime("%d.%m.%Y %H:%M").fillna("geçersiz"),
        "Durum": orders["status"].map({"completed": "Ödendi", "returned": "İade", "cancelled": "İptal"}),
        "Tutar": orders["order_total"].map(lambda v: f"{v:.2f}".replace(".", ",")),
    })
    customers = pd.read_parquet(raw / "customers.parquet")[["customer_id", "email"]]
    (root / "exports").mkdir(exist_ok=True)
    export.to_csv(root / "exports" / "siparisler.csv", sep=";", index=False, encoding="cp1254")
    customers.rename(columns={"customer_id": "Müşteri", "email": "E-posta"}).to_csv(
        root / "exports" / "musteriler.csv", sep=";", index=False, encoding="cp1254")
    (root / "params" / "myshop.yaml").write_text(
        shop_params("customer_id: Müşteri, email: E-posta", "01_data_cleaning, 02_segmentation, 03_clv_churn"),
        encoding="utf-8")
    run = _make(root, "reports", "DATASET=myshop")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    reports = root / "reports" / "myshop"
    for nb in ["01_data_cleaning", "02_segmentation", "03_clv_churn"]:
        assert json.loads((reports / "status" / f"{nb}.json").read_text())["status"] == "ok", nb
    cleaning = json.loads((reports / "metrics" / "01_data_cleaning.json").read_text())
    o = cleaning["tables"]["orders"]
    assert o["rows_in"] == len(orders)
    assert o["rows_in"] == o["rows_kept"] + o["rows_rejected"] + o["rows_duplicate"]
    assert o["rows_kept"] > 0.8 * len(orders)
    assert json.loads((reports / "metrics" / "02_segmentation.json").read_text())["rfm_segments"]
    assert json.loads((reports / "metrics" / "03_clv_churn.json").read_text())["bgnbd"]["params"]["r"] > 0


def test_forget_removes_a_customer_from_every_table_and_report(built):
    """Runs last: it changes the build (an erasure request reruns every notebook)."""
    import pandas as pd

    root, _ = built
    orders = pd.read_parquet(root / "data" / "interim" / "ci" / "orders.parquet")
    victim = orders["customer_id"].value_counts().index[0]
    assert any(victim in t for t in _published_text(root).values() if t)
    forget = _make(root, "forget", f"CUSTOMER={victim}", "DATASET=ci")
    assert forget.returncode == 0, forget.stderr
    assert victim not in forget.stdout  # the log does not repeat the id
    run = _make(root, "reports", "DATASET=ci")
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"running {pipeline_notebooks()[0]} on ci" in run.stdout
    texts = _published_text(root)
    assert not [name for name, t in texts.items() if victim in t]
    metrics = json.loads((root / "reports" / "ci" / "metrics" / "01_data_cleaning.json").read_text())
    assert metrics["erasure"]["customers_found"] == 1
