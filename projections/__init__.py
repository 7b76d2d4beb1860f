"""xinfang-ledger read side: the ``rm_*`` read model folded from the log, and the reports.

Public entry points (see docs/read-side.md):

* ``projections.runner``: ``catch_up(store)``, ``rebuild(store)``, ``status(store)``
* ``projections.reports``: ``supervision(store, as_of)``, ``statistics(store, from, to, as_of)``
* ``projections.readmodel``: the tables and ``cases_where`` / ``cases_registered`` queries
* ``projections.asof``: ``as_of_rows`` — cases as they stood at a past business day
"""
