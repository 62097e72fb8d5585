"""Contact lists a CRM or e-mail tool can import: the one explicit step that re-attaches contact details.

The notebooks publish pseudonymous lists only (``reports/<dataset>/exports/``): one CSV per RFM segment
(``02_segmentation``) and the offer lists of ``06_personalisation`` (``next_best_action.csv``,
``birthday_month.csv``, ``winback.csv``). This module turns them into import files:

1. **Lists** (:func:`import_lists`): one per segment and one per offer (the next best action split by action
   and channel; the birthday and win-back lists), every customer re-checked *now* against the raw customer
   table: marketing consent (:func:`crm_analytics.ingest.privacy.marketing_consent`: a missing consent is no
   consent; consent may have been withdrawn since the reports were built) and erasure requests
   (:func:`crm_analytics.ingest.erasure.load_requests`: raw ids in ``data/erasure/<dataset>.txt``). Pseudonymous
   ids only, no contact details: a report may count them.
2. **Contacts** (:func:`write_contacts`, ``python -m crm_analytics.pipeline.crm_export <dataset>``): the raw customer
   table is read the way cleaning reads it (:func:`crm_analytics.ingest.sources.read_source`, the cleaning rules of
   :func:`crm_analytics.ingest.cleaning.clean_table`), each raw id mapped to the id the published lists carry by the
   rule of :mod:`crm_analytics.ingest.privacy` (:func:`pseudonymous_ids`, same key), and the e-mail, phone and name
   joined on. One CSV per list goes to a folder *outside* ``reports/`` (default ``data/contacts/<dataset>/``,
   ignored by git; folder 0700, files 0600), with the columns of the chosen tool (:data:`FORMATS`).

Nothing personal is printed or logged: the step prints, per file, the rows written and the rows left out
with why (erased, unknown customer, no consent, no e-mail or phone, duplicate contact) and the absolute
folder. A missing key, missing raw customers or missing published lists stop it with one message (exit 2).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from crm_analytics import paths
from crm_analytics.ingest.contracts import TABLES
from crm_analytics.errors import CrmAnalyticsError, ParamsError
from crm_analytics.models.next_action import NOTHING

__all__ = ["FORMATS", "LIST_COLUMNS", "OFFER_FILES", "REASONS", "KeyMismatch", "MissingRawCustomers", "MissingSecret",
           "contacts_dir", "import_lists", "main", "pseudonymous_ids", "split_name", "write_contacts"]

#: columns of each import format, in order (``Tags`` / ``List`` / ``list`` hold the segment or offer name)
FORMATS: dict[str, list[str]] = {
    # Mailchimp audience import (Audience > Import contacts > CSV): "Email Address" is required
    "mailchimp": ["Email Address", "First Name", "Last Name", "Phone Number", "Tags"],
    # HubSpot contacts import: "Email" dedups contacts; "List" maps to a (custom) contact property
    "hubspot": ["Email", "First Name", "Last Name", "Phone Number", "List"],
    "generic": ["email", "first_name", "last_name", "phone", "list", "kind", "offer", "discount", "channel",
                "send_day", "send_hour", "offer_category", "product_id", "product_name", "birth_day"],
}
#: formats of tools that send e-mail only: their files hold the e-mail lists only (SMS lists: ``generic``)
EMAIL_ONLY = ("mailchimp", "hubspot")
#: columns of the pseudonymous lists :func:`import_lists` returns
LIST_COLUMNS = ["customer_id", "list", "kind", "offer", "discount", "channel", "send_day", "send_hour",
                "offer_category", "product_id", "product_name", "birth_day"]
#: why a published customer is left out of an import file, in the order the checks run
REASONS: dict[str, str] = {
    "erased": "erased",
    "unknown_customer": "not in the raw customer table",
    "no_consent": "no consent",
    "no_email": "no e-mail",
    "no_phone": "no phone",
    "duplicate_contact": "duplicate contact",
}
#: the offer lists of ``06_personalisation`` (``offers_report.export_offers``); every other CSV of the exports
#: folder with exactly ``customer_id, segment`` is a segment list of ``02_segmentation``
OFFER_FILES = ("next_best_action.csv", "birthday_month.csv", "winback.csv")
#: the channels whose lists get contact details, and the detail each needs
CONTACT_OF_CHANNEL = {"email": "email", "sms": "phone"}
#: notebooks that publish the lists: held (not waited for) while the lists are read
PUBLISHERS = ("02_segmentation", "06_personalisation")

_EMAIL = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\".]+$")
_REDACT = [re.compile(r"[^\s'\"<>(),;:]+@[^\s'\"<>(),;:]+"), re.compile(r"\+?\d[\d ()./-]{7,}\d")]


class MissingSecret(CrmAnalyticsError):
    """No pseudonymisation key: neither ``CRM_ANALYTICS_SECRET`` nor ``.crm_secret``."""


class MissingRawCustomers(CrmAnalyticsError):
    """The dataset has no raw customer table (or it lacks what contact lists need)."""


class KeyMismatch(CrmAnalyticsError):
    """The key is not the one the published data was built with."""


# ----------------------------------------------------------------------------------------- small rules
def split_name(full_name: object) -> tuple[str, str]:
    """First and last name of a full name: the last word is the surname (Turkish names: ``"Ayşe Nur Yılmaz"``
    → ``("Ayşe Nur", "Yılmaz")``); ``"Surname, First names"`` is read as written; one word is a first name.

    Examples
    --------
    >>> split_name("  Ayşe  Nur Yılmaz "), split_name("Öztürk, Mehmet Ali"), split_name("Cem"), split_name(None)
    (('Ayşe Nur', 'Yılmaz'), ('Mehmet Ali', 'Öztürk'), ('Cem', ''), ('', ''))
    """
    if full_name is None or (not isinstance(full_name, str) and pd.isna(full_name)):
        return "", ""
    text = " ".join(str(full_name).split())
    if "," in text:
        last, _, first = (p.strip() for p in text.partition(","))
        if first and last:
            return first, last
        text = first or last
    words = text.split(" ")
    if len(words) < 2:
        return text, ""
    return " ".join(words[:-1]), words[-1]


def _slug(text: str) -> str:
    """File-name slug, the rule of ``segmentation.marketing_exports`` (``"Can't lose them"`` → ``cant_lose_them``)."""
    s = re.sub(r"\W+", "_", str(text).lower().replace("'", "").replace("’", "")).strip("_")
    return s or "segment"


def _redact(text: str) -> str:
    """*text* with anything that looks like an e-mail address or a phone number replaced."""
    for pattern in _REDACT:
        text = pattern.sub("<redacted>", text)
    return text


def contacts_dir(dataset: str) -> Path:
    """The default folder of the import files: ``data/contacts/<dataset>/`` (``data/`` is ignored by git)."""
    return paths.project_root() / "data" / "contacts" / dataset


def _key(dataset: str) -> bytes:
    """The pseudonymisation key, never a new one: a new key would map no raw id to the published ids."""
    from crm_analytics.ingest.privacy import SECRET_ENV, secret_key

    file = paths.project_root() / ".crm_secret"
    if os.environ.get(SECRET_ENV) or (file.is_file() and file.read_text(encoding="utf-8").strip()):
        return secret_key()
    raise MissingSecret(
        f"no pseudonymisation key: set the environment variable {SECRET_ENV} (or write it to {file}) to the key "
        f"the reports of dataset '{dataset}' were built with; contact lists cannot be matched without it")


def _raw_ids(values: pd.Series) -> pd.Series:
    """Raw customer ids as cleaning reads them (trimmed, a trailing ``.0`` dropped, blanks null)."""
    from crm_analytics.ingest.cleaning import clean_column

    ids, _, _ = clean_column(TABLES["customers"].column("customer_id"), pd.Series(values, dtype="object"))
    return ids.astype("string")


def pseudonymous_ids(raw_ids: pd.Series, key: bytes) -> pd.Series:
    """The ids the clean tables and published lists carry for the raw customer ids *raw_ids*: the cleaning
    rule for ids (trimmed, a trailing ``.0`` dropped), then the keyed hash of
    :func:`crm_analytics.ingest.privacy.pseudonymise_table` for what ``contracts.PERSONAL_COLUMNS`` marks personal
    (the very call cleaning makes, so the two cannot drift apart)."""
    from crm_analytics.ingest.privacy import pseudonymise_table

    frame = pd.DataFrame({"customer_id": _raw_ids(raw_ids).to_numpy()}, index=pd.Series(raw_ids).index)
    return pseudonymise_table("customers", frame, key)["customer_id"].astype("string")


# ----------------------------------------------------------------------------------------- raw customers
def _params_file(dataset: str) -> str:
    p = paths.params_path(dataset)
    return str(p.relative_to(paths.project_root())) if paths.project_root() in p.parents else str(p)


def _raw_customers(dataset: str, *, contacts: bool) -> pd.DataFrame:
    """The raw customers as cleaning reads them: ``customer_id`` (raw), ``consent`` (bool) and, with *contacts*,
    ``email``, ``phone``, ``full_name``; ``attrs["consent_recorded"]`` says whether any consent is recorded.

    Raises
    ------
    MissingRawCustomers
        The source has no customer table, the raw data is not built, or (with *contacts*) there is no ``email``.
    """
    from crm_analytics.ingest.cleaning import clean_table
    from crm_analytics.errors import SourceError
    from crm_analytics.ingest.params import load_params
    from crm_analytics.ingest.privacy import marketing_consent
    from crm_analytics.ingest.sources import read_source, validate_source

    file = _params_file(dataset)
    source = validate_source(dataset, load_params(dataset)["shared"].get("source") or {}, file)
    kind = source["kind"]
    try:
        if kind == "files":
            spec = source["tables"].get("customers")
            if spec is None:
                raise MissingRawCustomers(
                    f"{file}: dataset '{dataset}' has no customers export, so there is no one to contact: add "
                    "source.tables.customers (path, and columns: {customer_id: ..., email: ..., full_name: ..., "
                    "phone: ..., consent_marketing: ...})")
            raw = read_source(dataset, {**source, "tables": {"customers": spec}})["customers"]
        elif kind == "demo":
            if not (paths.raw_dir(dataset) / "customers.parquet").exists():
                raise MissingRawCustomers(
                    f"{paths.raw_dir(dataset) / 'customers.parquet'}: the raw customer table of dataset '{dataset}' "
                    f"is missing; run `make data DATASET={dataset}`")
            raw = read_source(dataset, source, lazy=set(TABLES) - {"customers"})["customers"]
        else:
            raise MissingRawCustomers(
                f"{file}: dataset '{dataset}' (source kind {kind!r}) has no raw customer table with contact details "
                "and marketing consent, so there is no one to contact; contact lists need a `files` source with "
                "tables.customers (or the generated `demo` world)")
    except SourceError as exc:
        from crm_analytics.reports.history import safe_message

        raise MissingRawCustomers(safe_message(str(exc))) from None
    wanted = ["customer_id", "consent_marketing"] + (["email", "phone", "full_name"] if contacts else [])
    if contacts and "email" not in raw:
        raise MissingRawCustomers(
            f"{file}: the raw customer table of dataset '{dataset}' has no e-mail column; map it in "
            "source.tables.customers.columns (email: <the export's column>)")
    consent_recorded = "consent_marketing" in raw and bool(raw["consent_marketing"].notna().any())
    keep = [c for c in wanted + ["_source_file", "_source_line", "_reject"] if c in raw]
    kept, _, _ = clean_table("customers", raw[keep])  # ids, consent (evet/hayır, 1/0, ...) and e-mails as cleaning
    del raw
    out = pd.DataFrame({"customer_id": kept["customer_id"].astype("string")})
    consent = marketing_consent(kept)
    out["consent"] = consent.reindex(out["customer_id"]).fillna(False).astype(bool).to_numpy()
    for c in wanted[2:]:
        out[c] = kept[c].astype("string").str.strip()
    out.attrs["consent_recorded"] = consent_recorded
    return out


def _people(dataset: str, key: bytes, *, contacts: bool) -> tuple[pd.DataFrame, set[str]]:
    """The raw customers indexed by the published id, and the published ids of the erased customers."""
    from crm_analytics.ingest.erasure import load_requests

    raw = _raw_customers(dataset, contacts=contacts)
    erased_raw = set(_raw_ids(pd.Series(sorted(load_requests(dataset)))).dropna())
    raw_ids = raw["customer_id"]
    raw["erased"] = raw_ids.isin(erased_raw).to_numpy()
    raw.index = pd.Index(pseudonymous_ids(raw_ids, key).to_numpy(), name="customer_id", dtype="string")
    raw = raw[raw.index.notna()]
    raw = raw[~raw.index.duplicated(keep="first")]  # two raw ids one pseudonym (ids differing in case): the first
    erased = set(raw.index[raw["erased"]])
    if erased_raw:  # requests of customers no longer in the raw table still hold
        erased |= set(pseudonymous_ids(pd.Series(sorted(erased_raw)), key).dropna())
    return raw.drop(columns=["customer_id"]), erased


def _check_key(dataset: str, people: pd.DataFrame, key: bytes) -> None:
    """Stop when the key is not the one ``data/interim/<dataset>`` was built with (the e-mail hashes differ)."""
    from crm_analytics.ingest.privacy import pseudonymise

    clean = paths.interim_dir(dataset) / "customers.parquet"
    if not clean.exists() or "email" not in people:
        return
    built = pd.read_parquet(clean, columns=["customer_id", "email"]).dropna()
    built = built.drop_duplicates("customer_id").set_index("customer_id")["email"].astype("string")
    mine = people["email"].dropna()
    common = mine.index.intersection(built.index)[:5000]
    if not len(common):
        return
    same = (pseudonymise(mine.loc[common], key).to_numpy() == built.loc[common].to_numpy()).mean()
    if same < 0.5:
        raise KeyMismatch(
            f"the pseudonymisation key (CRM_ANALYTICS_SECRET or .crm_secret) is not the one {clean.parent} was built "
            f"with: set the key the reports were built with, or rebuild them with `make reports DATASET={dataset}`")


# ----------------------------------------------------------------------------------------- published lists
@dataclass
class _List:
    key: str  # file stem of the import file
    name: str  # the segment or offer: Mailchimp tag, HubSpot list
    kind: str  # segment | offer
    source: str  # the published file it comes from
    channel: str  # email | sms | push | ...
    rows: pd.DataFrame  # LIST_COLUMNS
    left_out: dict[str, int] = field(default_factory=dict)
    published: int = 0
    note: str = ""


def _read_export(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])


def _frame(df: pd.DataFrame, **const) -> pd.DataFrame:
    out = pd.DataFrame(index=df.index)
    for c in LIST_COLUMNS:
        if c in const:
            out[c] = const[c]
        else:
            out[c] = df.get(c, pd.NA)
    return out.reset_index(drop=True)


def _discounts(dataset: str) -> dict[str, object]:
    """Each next-best-action's discount, from the ``actions`` of ``params/<dataset>`` (``{}`` when unset)."""
    from crm_analytics.ingest.params import load_params

    try:
        loaded = load_params(dataset)
        actions = loaded["shared"].get("actions")
        for values, _ in loaded["per_notebook"].values():
            actions = values.get("actions", actions)
        return {str(k): v.get("discount") for k, v in (actions or {}).items() if isinstance(v, dict)}
    except (CrmAnalyticsError, AttributeError):
        return {}


def _published_lists(dataset: str) -> tuple[list[_List], list[str]]:
    """The lists of ``reports/<dataset>/exports/`` as published (not yet re-checked) and notes on skipped files."""
    folder = paths.reports_dir(dataset) / "exports"
    if not folder.is_dir():
        raise CrmAnalyticsError(
            f"{folder} does not exist: no list is published for dataset '{dataset}' yet; run "
            f"`make reports DATASET={dataset}` first (notebooks 02_segmentation and 06_personalisation publish them)")
    segments = paths.processed_dir(dataset) / "segments.parquet"
    current = (set(pd.read_parquet(segments, columns=["segment"])["segment"].dropna().astype(str))
               if segments.exists() else None)
    lists: list[_List] = []
    notes: list[str] = []
    for path in sorted(folder.glob("*.csv")):
        if path.name in OFFER_FILES:
            continue
        df = _read_export(path)
        if list(df.columns) != ["customer_id", "segment"]:
            continue  # recommendations.csv and anything else: not a list of customers to contact
        names = sorted(df["segment"].dropna().unique())
        if current is not None and (any(n not in current for n in names)
                                    or (not names and path.stem not in {_slug(c) for c in current})):
            notes.append(f"skipped {path.name}: its segment is no longer in data/processed/{dataset}/segments.parquet "
                         "(a stale file of an earlier run)")
            continue
        name = names[0] if len(names) == 1 else next((c for c in sorted(current or ()) if _slug(c) == path.stem),
                                                     path.stem)
        for n in names[1:]:
            notes.append(f"{path.name} holds more than one segment; each row keeps its own ({n!r} among them)")
        rows = _frame(df, list=df["segment"], kind="segment", channel="email")
        lists.append(_List(f"segment_{path.stem}", name, "segment", path.name, "email", rows))
    discounts = _discounts(dataset)
    nba_path = folder / "next_best_action.csv"
    if nba_path.exists():
        nba = _read_export(nba_path)
        if "action" in nba:
            nba["channel"] = nba["channel"].fillna("email") if "channel" in nba else "email"
            nba = nba[nba["action"].notna() & (nba["action"] != NOTHING)]
            groups = set(zip(nba["action"], nba["channel"]))
            groups |= {(a, "email") for a in discounts if a not in set(nba["action"])}  # every action gets a file
            for action, channel in sorted(groups):
                part = nba[(nba["action"] == action) & (nba["channel"] == channel)]
                key = f"offer_{_slug(action)}" + ("" if channel == "email" else f"_{_slug(channel)}")
                rows = _frame(part, list=action, kind="offer", offer=action, discount=discounts.get(action))
                lists.append(_List(key, action, "offer", nba_path.name, channel, rows))
    for file, name in (("birthday_month.csv", "birthday_month"), ("winback.csv", "winback")):
        path = folder / file
        if path.exists():
            df = _read_export(path)
            rows = _frame(df, list=name, kind="offer", offer=name, channel="email")
            lists.append(_List(f"offer_{name}", name, "offer", file, "email", rows))
    return lists, notes


def _recheck(lists: list[_List], people: pd.DataFrame, erased: set[str]) -> None:
    """Keep, in each list, the customers not erased, known to the raw table and consenting now; count the rest."""
    consent = people["consent"]
    for lst in lists:
        ids = lst.rows["customer_id"].astype("string")
        out = {"erased": ids.isin(erased).to_numpy()}
        known = ids.isin(people.index).to_numpy()
        out["unknown_customer"] = ~out["erased"] & ~known
        ok = consent.reindex(ids).fillna(False).astype(bool).to_numpy()
        out["no_consent"] = ~out["erased"] & known & ~ok
        drop = out["erased"] | out["unknown_customer"] | out["no_consent"]
        lst.left_out = {k: int(v.sum()) for k, v in out.items()}
        lst.published = len(ids)
        lst.rows = lst.rows[~drop].reset_index(drop=True)


def _lists(dataset: str, key: bytes, *, contacts: bool) -> tuple[list[_List], list[str], pd.DataFrame]:
    people, erased = _people(dataset, key, contacts=contacts)  # first: an unknown dataset or source says so
    lists, notes = _published_lists(dataset)
    if contacts:
        _check_key(dataset, people, key)
    published = pd.concat([lst.rows["customer_id"] for lst in lists]) if lists else pd.Series(dtype="string")
    if len(published) and not published.astype("string").isin(people.index).any():
        raise KeyMismatch(
            f"none of the {published.nunique():,} customers of the published lists of dataset '{dataset}' is in its "
            "raw customer table under this key: the lists were built from other raw data or with another key; "
            f"rebuild them with `make reports DATASET={dataset}`")
    if not people.attrs.get("consent_recorded", True):
        notes.append("the raw customer table records no marketing consent: nobody may be contacted")
    _recheck(lists, people, erased)
    return lists, notes, people


def import_lists(dataset: str) -> dict[str, pd.DataFrame]:
    """The import-ready lists of *dataset*, pseudonymous: one per segment (``segment_<slug>``) and one per offer
    (``offer_<action>`` for each next best action and channel other than e-mail as ``offer_<action>_<channel>``,
    ``offer_birthday_month``, ``offer_winback``), with :data:`LIST_COLUMNS` and no contact details.

    Every customer is re-checked against the raw customer table now: only customers who consent to marketing
    today, are in the raw table and have no erasure request stay. ``attrs["published"]`` holds the rows
    published and ``attrs["left_out"]`` the rows left out by reason (:data:`REASONS`). Needs the
    pseudonymisation key the reports were built with.

    Raises
    ------
    MissingSecret, MissingRawCustomers, CrmAnalyticsError
        No key; no raw customer table; no published lists (run ``make reports`` first).
    """
    lists, _, _ = _lists(dataset, _key(dataset), contacts=False)
    out = {}
    for lst in lists:
        frame = lst.rows.copy()
        frame.attrs = {"published": lst.published, "left_out": dict(lst.left_out), "source": lst.source}
        out[lst.key] = frame
    return out


# ----------------------------------------------------------------------------------------- contact files
def _check_out(folder: Path, dataset: str) -> Path:
    """*folder* resolved, if personal data may go there: never in reports, processed data, logs or sources."""
    root = paths.project_root().resolve()
    out = folder.expanduser().resolve()
    forbidden = ["reports", "data/raw", "data/interim", "data/processed", "data/erasure", "build", "notebooks",
                 "src", "params", "tests"]
    for rel in forbidden:
        place = root / rel
        if out == place or place in out.parents:
            raise ParamsError(
                f"--out {folder}: contact lists hold personal data and may not go under {rel}/ (reports, processed "
                f"data and logs never hold personal data); use the default data/contacts/{dataset}/ or a folder "
                "outside the project")
    if (out == root or root in out.parents) and not (root / "data") in out.parents:
        raise ParamsError(f"--out {folder}: inside the project only data/ is kept out of git; use the default "
                          f"data/contacts/{dataset}/ or a folder outside the project")
    return out


def _private_dir(folder: Path) -> None:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)


def _write_private(path: Path, frame: pd.DataFrame) -> None:
    """Write *frame* as CSV (UTF-8) to *path*, mode 0600 from the first byte, replaced atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            frame.to_csv(fh, index=False, lineterminator="\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _contacts(lst: _List, people: pd.DataFrame, fmt: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """The import file of *lst* in *fmt* and the rows left out for want of a contact detail."""
    need = CONTACT_OF_CHANNEL[lst.channel]
    p = people.reindex(lst.rows["customer_id"].astype("string"))
    email = p["email"].str.lower().where(p["email"].fillna("").str.match(_EMAIL), pd.NA)
    phone = p["phone"].where(p["phone"].fillna("").str.contains(r"\d"), pd.NA)
    contact = email if need == "email" else phone
    missing = contact.isna().to_numpy()
    dup = (contact.duplicated(keep="first") & contact.notna()).to_numpy()
    keep = ~missing & ~dup
    rows, p, email, phone = lst.rows[keep], p[keep], email[keep], phone[keep]
    names = [split_name(n) for n in p["full_name"]]
    first = [f for f, _ in names]
    last = [la for _, la in names]
    if fmt == "generic":
        out = rows.drop(columns=["customer_id"]).assign(email=email.to_numpy(), phone=phone.to_numpy(),
                                                        first_name=first, last_name=last)
        out = out.reindex(columns=FORMATS[fmt])
    else:
        tag = str(lst.name).replace(",", " ")  # a comma separates tags in Mailchimp
        out = pd.DataFrame(dict(zip(FORMATS[fmt], [email.to_numpy(), first, last, phone.to_numpy(), tag])))
    left = {f"no_{need}": int(missing.sum()), "duplicate_contact": int(dup.sum())}
    return out.reset_index(drop=True), left


def write_contacts(dataset: str, out: str | Path | None = None, fmt: str = "generic") -> list[dict]:
    """Write one import file per list of :func:`import_lists`, contact details attached, and return the summary.

    Files ``<out>/<list>.<fmt>.csv`` (default *out*: :func:`contacts_dir`; folder 0700, files 0600) with the
    columns of ``FORMATS[fmt]``. ``mailchimp`` and ``hubspot`` get the e-mail lists; ``generic`` also the SMS
    lists (phone needed). A customer without a usable e-mail (phone) is left out and counted, as is a second
    customer with the same contact in one list. Files of an earlier run that this run did not write again are
    removed, so a stale list is never imported by mistake.

    Returns
    -------
    list of dict
        One per published list: ``file`` (written, ``""`` if none), ``list``, ``kind``, ``source``, ``channel``,
        ``published``, ``written``, one count per :data:`REASONS` key, ``note``; plus ``folder`` and ``format``.
        Counts only: nothing personal.
    """
    if fmt not in FORMATS:
        raise ParamsError(f"--format must be one of {sorted(FORMATS)}, got {fmt!r}")
    folder = _check_out(Path(out) if out else contacts_dir(dataset), dataset)
    key = _key(dataset)
    lists, notes, people = _lists(dataset, key, contacts=True)
    _private_dir(folder)
    summary, written = [], set()
    for lst in lists:
        row = {"folder": str(folder), "format": fmt, "file": "", "list": lst.name, "kind": lst.kind,
               "source": lst.source, "channel": lst.channel, "published": lst.published, "written": 0,
               **{r: 0 for r in REASONS}, **lst.left_out, "note": ""}
        if lst.channel not in CONTACT_OF_CHANNEL or (fmt in EMAIL_ONLY and lst.channel != "email"):
            row["note"] = (f"{lst.channel} list: not for an e-mail tool (use --format generic)"
                           if lst.channel in CONTACT_OF_CHANNEL else f"{lst.channel} list: no contact detail to attach")
            summary.append(row)
            continue
        frame, left = _contacts(lst, people, fmt)
        name = f"{lst.key}.{fmt}.csv"
        _write_private(folder / name, frame)
        written.add(name)
        row.update(left, file=name, written=len(frame))
        summary.append(row)
    removed = 0
    for old in folder.glob(f"*.{fmt}.csv"):
        if old.name not in written and old.name.startswith(("segment_", "offer_")):
            old.unlink()
            removed += 1
    for note in notes:
        summary.append({"folder": str(folder), "format": fmt, "file": "", "list": "", "kind": "note", "source": "",
                        "channel": "", "published": 0, "written": 0, **{r: 0 for r in REASONS}, "note": note})
    if removed:
        summary.append({"folder": str(folder), "format": fmt, "file": "", "list": "", "kind": "note", "source": "",
                        "channel": "", "published": 0, "written": 0, **{r: 0 for r in REASONS},
                        "note": f"removed {removed} file(s) of an earlier run whose list is no longer published"})
    return summary


# ----------------------------------------------------------------------------------------- command line
def _print_summary(dataset: str, fmt: str, rows: list[dict], folder: Path) -> None:
    lists = [r for r in rows if r["kind"] != "note"]
    shown = [r["file"] or f"({r['list']} from {r['source']})" for r in lists]
    width = max([len(s) for s in shown] + [10])
    print(f"contact lists of dataset '{dataset}', {fmt} format (personal data: import them, then delete them)")
    print(f"folder: {folder} (mode 0700, files 0600)")
    for r, what in zip(lists, shown):
        left = sum(r[k] for k in REASONS)
        why = ", ".join(f"{r[k]:,} {REASONS[k]}" for k in REASONS if r[k])
        text = f"  {what:<{width}}  {r['written']:>7,} written, {left:,} left out" + (f": {why}" if why else "")
        print(text + (f"; {r['note']}" if r["note"] else ""))
    for r in rows:
        if r["kind"] == "note":
            print(f"  note: {r['note']}")
    totals = {k: sum(r[k] for r in lists) for k in ("written", *REASONS)}
    why = ", ".join(f"{totals[k]:,} {REASONS[k]}" for k in REASONS if totals[k]) or "none"
    files = sum(1 for r in lists if r["file"])
    print(f"total: {totals['written']:,} rows in {files} file(s); left out: {why}")


def main(argv: list[str] | None = None) -> int:
    """``python -m crm_analytics.pipeline.crm_export <dataset> [--out DIR] [--format mailchimp|hubspot|generic]``."""
    import argparse

    from crm_analytics.locks import sole_run

    parser = argparse.ArgumentParser(
        prog="python -m crm_analytics.pipeline.crm_export",
        description="Import files for a CRM or e-mail tool: the published segment and offer lists, consent and "
                    "erasure re-checked against the raw customer table, contact details attached. Written outside "
                    "reports/ (default data/contacts/<dataset>/); only counts are printed.")
    parser.add_argument("dataset")
    parser.add_argument("--out", default="", help="folder of the import files (default data/contacts/<dataset>/)")
    parser.add_argument("--format", dest="fmt", default="generic", choices=sorted(FORMATS))
    args = parser.parse_args(argv)
    try:
        folder = _check_out(Path(args.out) if args.out else contacts_dir(args.dataset), args.dataset)
        with contextlib.ExitStack() as stack:
            stack.enter_context(sole_run(args.dataset, "contacts"))
            for nb in PUBLISHERS:
                try:
                    stack.enter_context(sole_run(args.dataset, nb))
                except CrmAnalyticsError:
                    raise CrmAnalyticsError(
                        f"{nb} is running on dataset '{args.dataset}' and rewriting its lists; wait for the run "
                        f"to finish, then run `make contacts DATASET={args.dataset}` again") from None
            rows = write_contacts(args.dataset, folder, args.fmt)
    except CrmAnalyticsError as exc:
        print(f"error: {_redact(str(exc))}", file=sys.stderr)
        return 2
    except Exception as exc:  # a traceback may quote personal data: name the error only
        if os.environ.get("CRM_ANALYTICS_DEBUG"):
            raise
        # its text may quote a cell of the customer table (a name, an address): the class only
        print(f"error: unexpected {type(exc).__name__} (set CRM_ANALYTICS_DEBUG=1 for the message and traceback; "
              "they may show personal data)", file=sys.stderr)
        return 1
    _print_summary(args.dataset, args.fmt, rows, folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
