"""`lake.one_thread`: a transactions commit runs on one DuckDB thread (its memory peak), and the
database gets its own thread count back afterwards, whether the body ended well or not."""

from __future__ import annotations

from pathlib import Path

import pytest

from pfo_pipeline import lake


def threads(conn) -> int:
    return int(conn.execute("SELECT current_setting('threads')").fetchone()[0])


def test_one_thread_inside_and_the_setting_back_after(tmp_path: Path) -> None:
    conn = lake.connect(lake.LakeLocation.in_folder(tmp_path / "ledger"), shared=False)
    try:
        conn.execute("SET threads = 3")
        with lake.one_thread(conn):
            assert threads(conn) == 1
        assert threads(conn) == 3
        with pytest.raises(RuntimeError, match="the body's own"), lake.one_thread(conn):
            raise RuntimeError("the body's own error")
        assert threads(conn) == 3
    finally:
        conn.close()
