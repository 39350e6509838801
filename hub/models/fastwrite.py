"""Write one ORM object as a single plain statement, and keep using it as a loaded object.

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

``update_now`` is the same for changes to a loaded object that has none pending: one ``UPDATE``
of the given columns (and of those with an ``onupdate``, as the flush would), the object told
(``set_committed_value``) so that it stays clean. With changes pending it simply sets the
attributes, and the next flush writes everything together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, insert, inspect, update
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

_NO_DEFAULT = object()
_SERVER_DEFAULT = object()  # left to the store; the attribute is read back when first used


@dataclass(frozen=True)
class _Plan:
    """Per mapped class, worked out once: the statements, the primary key's attribute, and for
    every other column its attribute, column key and default (a value, a callable of nothing,
    ``_SERVER_DEFAULT`` or ``_NO_DEFAULT``), and the attributes with an ``onupdate``."""

    insert: Any
    update: Any
    pk_key: str
    columns: tuple[tuple[str, str, Any], ...]
    column_keys: dict[str, str]
    onupdate: dict[str, Any]


_PLANS: dict[Any, _Plan] = {}


def _without_context(arg: Any, where: str) -> Any:
    """A column's callable default as a callable of nothing. SQLAlchemy wraps a function of no
    arguments to take the execution context (keeping it as ``__wrapped__``); one that reads the
    context itself cannot be called here, and is refused when the class is first written."""
    if not hasattr(arg, "__wrapped__"):
        raise ValueError(f"{where}: a default that reads the execution context; write it through the session")
    return lambda: arg(None)


def _plan(mapper: Any) -> _Plan:
    plan = _PLANS.get(mapper)
    if plan is not None:
        return plan
    table = mapper.local_table
    assert isinstance(table, Table)
    (pk,) = table.primary_key.columns
    columns, column_keys, onupdate = [], {}, {}
    for prop in mapper.column_attrs:
        (column,) = prop.columns
        where = f"{table.name}.{column.key}"
        column_keys[prop.key] = column.key
        if column.onupdate is not None and getattr(column.onupdate, "is_callable", False):
            onupdate[prop.key] = _without_context(column.onupdate.arg, where)
        if column is pk:
            continue
        default: Any = _NO_DEFAULT
        if column.default is not None and getattr(column.default, "is_scalar", False):
            default = column.default.arg
        elif column.default is not None and getattr(column.default, "is_callable", False):
            default = _without_context(column.default.arg, where)
        elif column.server_default is not None:
            default = _SERVER_DEFAULT
        columns.append((prop.key, column.key, default))
    plan = _PLANS[mapper] = _Plan(insert(table).returning(pk), update(table).where(pk == bindparam("fastwrite_pk")),
                                  mapper.get_property_by_column(pk).key, tuple(columns), column_keys, onupdate)
    return plan


def insert_now(session: Session, obj: Any) -> None:
    state = inspect(obj)
    if not state.transient:
        raise ValueError("insert_now takes a new object that is not in a session")
    plan = _plan(state.mapper)
    attributes = state.dict
    values: dict[str, Any] = {}
    for key, column_key, default in plan.columns:
        if key in attributes:
            value = attributes[key]
        elif default is _SERVER_DEFAULT:
            continue
        elif default is _NO_DEFAULT:
            value = attributes[key] = None
        else:
            value = attributes[key] = default() if callable(default) else default
        values[column_key] = value
    attributes[plan.pk_key] = session.connection().execute(plan.insert, values).scalar_one()
    make_transient_to_detached(obj)
    session.add(obj)


def update_now(session: Session, obj: Any, values: dict[str, Any]) -> None:
    state = inspect(obj)
    if not values or not state.persistent or state.modified:
        for key, value in values.items():
            setattr(obj, key, value)
        return
    plan = _plan(state.mapper)
    values = {**{key: make() for key, make in plan.onupdate.items() if key not in values}, **values}
    params = {plan.column_keys[key]: value for key, value in values.items()}
    params["fastwrite_pk"] = state.dict[plan.pk_key]
    session.connection().execute(plan.update, params)
    for key, value in values.items():
        set_committed_value(obj, key, value)
