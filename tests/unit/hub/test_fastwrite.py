"""insert_now / update_now: one statement, the object kept as loaded, defaults and onupdate as the
flush would fill them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, Integer, String, create_engine, select, text
from sqlalchemy.orm import DeclarativeBase, Session

from hub.models.fastwrite import insert_now, update_now


class _Base(DeclarativeBase):
    pass


class _Thing(_Base):
    __tablename__ = "thing"
    id = Column(Integer, primary_key=True)
    name = Column(String(20), nullable=False)
    kind = Column(String(20), default="plain")
    tags = Column(String(20), default=lambda: "fresh")
    note = Column(String(20), nullable=True)
    stamp = Column(String(20), server_default=text("'from-db'"))
    touched = Column(String(20), default="new", onupdate=lambda: "touched")


@pytest.fixture
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    _Base.metadata.create_all(engine)
    with Session(engine) as s:
        yield s


def test_inserts_with_defaults_and_adopts_the_object(session: Session) -> None:
    thing = _Thing(name="a")
    insert_now(session, thing)
    assert thing.id is not None and thing in session and not session.dirty and not session.new
    assert (thing.kind, thing.tags, thing.note) == ("plain", "fresh", None)
    row = session.execute(select(_Thing.name, _Thing.kind, _Thing.tags, _Thing.stamp)).one()
    assert tuple(row) == ("a", "plain", "fresh", "from-db")
    assert thing.stamp == "from-db"  # left to the store, read back when used
    assert session.get(_Thing, thing.id) is thing


def test_later_changes_are_flushed_as_updates(session: Session) -> None:
    thing = _Thing(name="a")
    insert_now(session, thing)
    thing.note = f"changed {datetime.now(UTC):%H}"
    session.flush()
    assert session.scalar(select(_Thing.note)) == thing.note
    assert session.scalar(select(_Thing.id).where(_Thing.name == "a")) == thing.id


def test_refuses_an_object_already_in_a_session(session: Session) -> None:
    thing = _Thing(name="a")
    session.add(thing)
    with pytest.raises(ValueError):
        insert_now(session, thing)


def test_update_now_writes_a_clean_object_at_once_and_keeps_it_clean(session: Session) -> None:
    thing = _Thing(name="a")
    insert_now(session, thing)
    update_now(session, thing, {"note": "n1", "kind": "special"})
    assert not session.dirty
    row = session.execute(select(_Thing.note, _Thing.kind, _Thing.touched)).one()
    assert tuple(row) == ("n1", "special", "touched")  # onupdate applied, as the flush would
    assert (thing.note, thing.kind, thing.touched) == ("n1", "special", "touched")


def test_update_now_leaves_a_dirty_object_to_the_flush(session: Session) -> None:
    thing = _Thing(name="a")
    insert_now(session, thing)
    thing.name = "b"  # pending
    update_now(session, thing, {"note": "n2"})
    assert thing in session.dirty
    with session.no_autoflush:
        assert session.scalar(select(_Thing.note)) is None  # not written on its own
    session.flush()
    assert tuple(session.execute(select(_Thing.name, _Thing.note)).one()) == ("b", "n2")


def test_a_default_that_reads_the_execution_context_is_refused(session: Session) -> None:
    class _Ctx(_Base):
        __tablename__ = "ctx_thing"
        id = Column(Integer, primary_key=True)
        name = Column(String(20), default=lambda context: context.get_current_parameters()["id"])

    with pytest.raises(ValueError, match="execution context"):
        insert_now(session, _Ctx())
