"""Console pages beyond sign-in, cases and accounts, one module per area; each registers its
routes on ``admin.views.bp`` and its header links with ``admin.views.nav``."""

from admin.pages import mappings, metrics, queues, report, systems, tasklist, undo, work

__all__ = ["mappings", "metrics", "queues", "report", "systems", "tasklist", "undo", "work"]
