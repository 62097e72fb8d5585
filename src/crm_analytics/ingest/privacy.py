"""Personal data: keyed pseudonymisation (KVKK / GDPR).

Personal columns (``contracts.PERSONAL_COLUMNS``: e-mail, phone, full name) are replaced
by a keyed hash (HMAC-SHA256) when cleaned. The key comes from the environment variable
``CRM_ANALYTICS_SECRET`` or, failing that, from the ignored file ``.crm_secret`` at the
project root, created with a warning on first use. Without the key the hashes cannot
be reversed or recomputed from a guessed e-mail address.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import warnings

import numpy as np
import pandas as pd

from crm_analytics import paths
from crm_analytics.ingest.contracts import PERSONAL_COLUMNS

__all__ = ["secret_key", "pseudonymise", "pseudonymise_table", "marketing_consent", "SECRET_ENV"]

SECRET_ENV = "CRM_ANALYTICS_SECRET"


def secret_key() -> bytes:
    """The pseudonymisation key (environment variable, else ``.crm_secret``, created if absent)."""
    env = os.environ.get(SECRET_ENV)
    if env:
        return env.encode("utf-8")
    path = paths.project_root() / ".crm_secret"
    if not path.exists():
        path.write_text(secrets.token_hex(32) + "\n", encoding="utf-8")
        path.chmod(0o600)
        warnings.warn(
            f"created a new pseudonymisation key in {path} (ignored by git); keep it safe and set "
            f"{SECRET_ENV} on scheduled runs so pseudonyms stay stable",
            UserWarning,
            stacklevel=2,
        )
    return path.read_text(encoding="utf-8").strip().encode("utf-8")


def pseudonymise(values: pd.Series, key: bytes, *, length: int = 20) -> pd.Series:
    """Keyed hash of each value after trimming and lower-casing; nulls stay null.

    Examples
    --------
    >>> s = pd.Series([" Ayse@Example.com", "ayse@example.com", None])
    >>> out = pseudonymise(s, b"k")
    >>> out[0] == out[1], out[2] is None or pd.isna(out[2])
    (True, True)
    """
    norm = values.astype("string").str.strip().str.lower()
    codes, uniq = pd.factorize(norm)  # each distinct value is hashed once; nulls get code -1
    digest = _hmac_sha256(key)
    hashed = np.array([digest(v.encode("utf-8"))[:length] for v in uniq] + [None], dtype=object)
    return pd.Series(hashed[codes], index=values.index, dtype="string")


def _hmac_sha256(key: bytes):
    """HMAC-SHA256 (RFC 2104) of text under *key*, as hex: the digests of ``hmac.new(key, text, sha256)``,
    with the key's two pads hashed once rather than for every value (a million e-mails in a second)."""
    block = hashlib.sha256().block_size
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner, outer = hashlib.sha256(bytes(b ^ 0x36 for b in key)), hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def digest(text: bytes) -> str:
        h = inner.copy()
        h.update(text)
        o = outer.copy()
        o.update(h.digest())
        return o.hexdigest()

    return digest


def pseudonymise_table(table: str, df: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """Replace the personal columns of canonical table *table* by keyed hashes."""
    out = df.copy()
    for col in PERSONAL_COLUMNS.get(table, []):
        if col in out.columns:
            out[col] = pseudonymise(out[col], key)
    return out


def marketing_consent(customers: pd.DataFrame | None) -> pd.Series:
    """Whether each customer consented to marketing, indexed by ``customer_id``: the one rule every
    export of contact lists follows. A missing consent (or a dataset without the column) counts as
    no consent.

    Examples
    --------
    >>> marketing_consent(pd.DataFrame({"customer_id": ["a", "b", "c"], "consent_marketing": [True, None, False]})).tolist()
    [True, False, False]
    """
    if customers is None or "consent_marketing" not in customers:
        return pd.Series(dtype=bool, index=pd.Index([], name="customer_id"))
    consent = customers.drop_duplicates("customer_id").set_index("customer_id")["consent_marketing"]
    return consent.astype("boolean").fillna(False).astype(bool)
