"""The canonical tables: the data contract every source adapter produces.

Column names are snake_case; timestamps are timezone-aware UTC at microsecond
precision; money is a float in the dataset's currency. Personal columns (marked
``personal=True``) are pseudonymised at cleaning time and never reach
``data/processed`` or a report.

Logical types used below:

``id``       string identifier (kept as text even when it looks numeric)
``ts``       timestamp, UTC, microseconds
``date``     calendar date
``float``    float64
``int``      int64
``bool``     boolean
``str``      free text / category label
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Column", "Table", "TABLES", "table", "PERSONAL_COLUMNS", "SUMMARY_TABLES", "EVALUATION_TABLES"]


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool = False  # must be present and non-null for a row to be kept
    personal: bool = False
    allowed: tuple[str, ...] | None = None  # closed vocabulary, if any


@dataclass(frozen=True)
class Table:
    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    required: bool = False
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}; columns are {self.column_names}")


C = Column

TABLES: dict[str, Table] = {
    t.name: t
    for t in [
        Table(
            "customers",
            ("customer_id",),
            (
                C("customer_id", "id", required=True),
                C("signup_ts", "ts"),
                C("birth_date", "date", personal=False),
                C("gender", "str", allowed=("female", "male", "other", "unknown")),
                C("city", "str"),
                C("region", "str"),
                C("acquisition_channel", "str"),
                C("email", "str", personal=True),
                C("phone", "str", personal=True),
                C("full_name", "str", personal=True),
                C("consent_marketing", "bool"),
                C("consent_tracking", "bool"),
            ),
            required=True,
            description="One row per customer (may be derived from orders).",
        ),
        Table(
            "products",
            ("product_id",),
            (
                C("product_id", "id", required=True),
                C("name", "str"),
                C("category", "str"),
                C("brand", "str"),
                C("price", "float"),
            ),
        ),
        Table(
            "orders",
            ("order_id",),
            (
                C("order_id", "id", required=True),
                C("customer_id", "id"),
                C("order_ts", "ts", required=True),
                C("channel", "str"),
                C("status", "str", required=True, allowed=("completed", "cancelled", "returned")),
                C("order_total", "float", required=True),
            ),
            required=True,
        ),
        Table(
            "order_lines",
            ("order_id", "line_no"),
            (
                C("order_id", "id", required=True),
                C("line_no", "int", required=True),
                C("product_id", "id"),
                C("quantity", "float", required=True),
                C("unit_price", "float", required=True),
                C("discount", "float"),
            ),
        ),
        Table(
            "events",
            ("event_id",),
            (
                C("event_id", "id", required=True),
                C("ts", "ts", required=True),
                C("customer_id", "id"),
                C("anonymous_id", "id"),
                C("session_id", "id"),
                C("channel", "str"),
                C("device", "str"),
                C(
                    "event_type",
                    "str",
                    required=True,
                    allowed=(
                        "page_view",
                        "product_view",
                        "search",
                        "add_to_cart",
                        "remove_from_cart",
                        "checkout_start",
                        "purchase",
                        "login",
                        "email_open",
                        "email_click",
                        "push_open",
                    ),
                ),
                C("product_id", "id"),
                C("search_query", "str"),
                C("results_count", "int"),
                C("order_id", "id"),
            ),
        ),
        Table(
            "sessions",
            ("session_id",),
            (
                C("session_id", "id", required=True),
                C("customer_id", "id"),
                C("start_ts", "ts"),
                C("channel", "str"),
                C("device", "str"),
                C("visitor_type", "str"),  # as the export names it, e.g. Returning_Visitor, New_Visitor, Other
                C("month", "str"),
                C("weekend", "bool"),
                C("traffic_type", "str"),
                C("region", "str"),
                C("browser", "str"),
                C("operating_system", "str"),
                C("administrative_pages", "int"),
                C("administrative_seconds", "float"),
                C("informational_pages", "int"),
                C("informational_seconds", "float"),
                C("product_pages", "int"),
                C("product_seconds", "float"),
                C("bounce_rate", "float"),
                C("exit_rate", "float"),
                C("page_value", "float"),
                C("special_day", "float"),
                C("purchased", "bool"),
            ),
            description=("One row per visit, for shops whose web analytics exports session summaries (page counts "
                         "and durations, bounce and exit rates, a purchase flag) rather than single events."),
        ),
        Table(
            "campaigns",
            ("campaign_id",),
            (
                C("campaign_id", "id", required=True),
                C("name", "str"),
                C("channel", "str", allowed=("email", "sms", "push", "social")),
                C("start_ts", "ts", required=True),
                C("end_ts", "ts"),
                C("offer", "str"),
                C("cost_per_contact", "float"),
                C("fixed_cost", "float"),
                C("target_segment", "str"),
            ),
        ),
        Table(
            "campaign_assignments",
            ("campaign_id", "customer_id"),
            (
                C("campaign_id", "id", required=True),
                C("customer_id", "id", required=True),
                C("group", "str", required=True, allowed=("treatment", "control")),
                C("variant", "str"),  # arm name in a multi-arm test; null or "control" for control
                C("sent_ts", "ts"),
                C("opened_ts", "ts"),
                C("clicked_ts", "ts"),
            ),
        ),
        Table(
            "reviews",
            ("review_id",),
            (
                C("review_id", "id", required=True),
                C("customer_id", "id"),
                C("product_id", "id"),
                C("order_id", "id"),
                C("ts", "ts"),
                C("rating", "int", required=True),
                C("text", "str"),
                C("language", "str"),
            ),
        ),
        Table(
            "tickets",
            ("ticket_id",),
            (
                C("ticket_id", "id", required=True),
                C("customer_id", "id"),
                C("order_id", "id"),
                C("opened_ts", "ts", required=True),
                C("resolved_ts", "ts"),
                C("category", "str"),
                C("channel", "str"),
                C("text", "str"),
                C("satisfaction", "int"),
            ),
        ),
    ]
}

#: tables a shop exports *instead of* finer ones: ``sessions`` (visit summaries from a web analytics tool) stands
#: in for the ``events`` a clickstream gives. A source gives one or the other; the generated world gives events.
SUMMARY_TABLES: tuple[str, ...] = ("sessions",)

#: labelled data a source ships to *evaluate* a model (never to fit one), kept apart from the shop's data: cleaned by
#: the same rules as the canonical tables (:func:`crm_analytics.ingest.cleaning.clean_table`, rows accounted for, rejects
#: kept) and written beside them to ``data/interim/<dataset>/``, but not canonical tables — the generated world makes
#: none, they hold no customers, and the quality checks, the customer view and erasure do not look at them. Read
#: them with :func:`crm_analytics.ingest.review_sources.read_review_sentences` (``tables.read_clean`` knows only
#: :data:`TABLES`). Optional: a dataset has them only when its source ships them (``reviews_tr``).
EVALUATION_TABLES: dict[str, Table] = {
    t.name: t
    for t in [
        Table(
            "review_sentences",
            ("sentence_id",),
            (
                C("sentence_id", "id", required=True),  # S0001… in file order
                C("text", "str", required=True),
                C("label", "str", required=True, allowed=("positive", "negative")),
                C("rating", "int"),  # the stars of the review the sentence comes from
                C("language", "str"),
            ),
            description=("Review sentences labelled positive or negative by people: held out to check a sentiment "
                         "model's labels, never to train it."),
        ),
    ]
}

PERSONAL_COLUMNS: dict[str, list[str]] = {
    name: [c.name for c in t.columns if c.personal] for name, t in TABLES.items()
}


def table(name: str) -> Table:
    """Return the contract of table *name*."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; tables are {sorted(TABLES)}") from None
