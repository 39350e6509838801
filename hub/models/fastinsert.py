"""Insert one new ORM object as a single plain statement, and keep using it as a loaded object.

Ingestion creates a ticket (and often a case) per record and needs its id at once: a unit-of-work
flush of one object costs several times the ``INSERT … RETURNING id`` it issues. ``insert_now``
writes the object's column values (filling the columns' Python-side defaults, as the flush
would) and then adopts it into the session as persistent (``make_transient_to_detached``), with
every column known, so nothing is loaded again.

The session does not count the object as new: a rollback to a savepoint leaves it in the
identity map, under an id the store may hand out again. A caller that goes on after such a
rollback empties the session (``Session.expunge_all``), as ingestion's page loop does.

Only for a plain object: no relationship set on it, a single integer primary key the store
assigns. Anything else goes through the session as usual.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, insert, inspect
from sqlalchemy.orm import Session, make_transient_to_detached

_STATEMENTS: dict[Table, Any] = {}


def insert_now(session: Session, obj: Any) -> None:
    state = inspect(obj)
    if not state.transient:
        raise ValueError("insert_now takes a new object that is not in a session")
    mapper = state.mapper
    table = mapper.local_table
    assert isinstance(table, Table)
    (pk,) = table.primary_key.columns
    values: dict[str, Any] = {}
    for prop in mapper.column_attrs:
        (column,) = prop.columns
        if column is pk:
            continue
        if prop.key in state.dict:
            value = state.dict[prop.key]
        elif column.default is not None and getattr(column.default, "is_scalar", False):
            value = column.default.arg
        elif column.default is not None and getattr(column.default, "is_callable", False):
            value = column.default.arg(None)
        else:
            value = None
        values[column.key] = value
        state.dict[prop.key] = value
    statement = _STATEMENTS.get(table)
    if statement is None:
        statement = _STATEMENTS[table] = insert(table).returning(pk)
    state.dict[mapper.get_property_by_column(pk).key] = session.connection().execute(statement, values).scalar_one()
    make_transient_to_detached(obj)
    session.add(obj)
