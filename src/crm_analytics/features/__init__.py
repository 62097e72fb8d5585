"""Stage 2, features: customer-level features as Ibis expressions, run on the engine the params choose
(:mod:`crm_analytics.compute`: DuckDB in-process by default, Spark for a shop that outgrows one machine).
Imports only :mod:`crm_analytics.ingest` and the shared modules.

One vocabulary for every per-customer figure (a name means the same thing in every table, notebook and
params file):

``orders``
    Number of purchase orders (status completed or returned) of a customer.
``revenue``
    Sum of ``order_total`` of those orders, in the shop's currency.
``aov``
    Average order value, ``revenue / orders``.
``recency_days``
    Days from the last purchase to the reference date (``as_of``).
``tenure_days``
    Days from the first purchase to ``as_of``.
``first_purchase``, ``last_purchase``
    Timestamps (UTC) of the first and last purchase.
``frequency``, ``recency``, ``T``, ``monetary_value``
    The Buy-Till-You-Die summary, in the names the field (and ``lifetimes``) uses: ``frequency`` is the
    number of *repeat* purchase periods (periods with a purchase after the first), ``recency`` the age at
    the last purchase and ``T`` the age at the calibration end, both in time units, ``monetary_value`` the
    mean total of the repeat periods. Only :mod:`crm_analytics.features.summary` makes these.
"""
