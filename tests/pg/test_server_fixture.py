"""The tests' PostgreSQL server: it answers, and each test's database starts empty."""

from __future__ import annotations

import psycopg


def test_each_test_gets_its_own_empty_database(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        assert tables == (0,)
        conn.execute("CREATE TABLE left_behind (x int)")


def test_a_second_test_does_not_see_the_first_ones_tables(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('left_behind')").fetchone() == (None,)
        conn.execute("CREATE TABLE left_behind (x int)")
