"""The lake's data files as files, wherever they are: a local folder or an S3 bucket, through
pyarrow's filesystems (`object_store.filesystem`). For the few jobs DuckLake has no call for:
retention rewriting a file in place (`forget`), maintenance telling an orphan's age
(`orphan_files`), the guard listing an earlier lake's files (`guard`).

Paths are written as DuckLake writes them: absolute local paths or `s3://bucket/key` URLs.
"""

from __future__ import annotations

import os
import posixpath
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from pfo_pipeline.lake.location import S3_SCHEME, is_s3
from pfo_pipeline.lake.object_store import filesystem, filesystem_path


def join(base: str, *parts: str) -> str:
    """`base` and relative `parts`, with `/` (a URL's `//` kept, as `os.path` would not)."""
    return posixpath.join(base, *parts)


@dataclass(frozen=True)
class FileInfo:
    path: str
    size: int
    modified: datetime


class LakeFiles:
    """Files under one lake's data path (local or on S3)."""

    def __init__(self, data_path: str) -> None:
        self.data_path = data_path
        self.fs = filesystem(data_path)
        self.remote = is_s3(data_path)

    def _url(self, fs_path: str) -> str:
        return S3_SCHEME + fs_path if self.remote else fs_path

    def infos(self, paths: list[str]) -> dict[str, FileInfo]:
        """Size and modification time of each path that is a file (absent ones left out)."""
        found = {}
        if not paths:
            return found
        for path, info in zip(
            paths, self.fs.get_file_info([filesystem_path(p) for p in paths]), strict=True
        ):
            if info.type == pafs.FileType.File:
                found[path] = FileInfo(path, int(info.size or 0), _utc(info.mtime))
        return found

    def existing(self, paths: list[str]) -> set[str]:
        return set(self.infos(paths))

    def listing(self, limit: int) -> list[str]:
        """Up to `limit` files under the data path (an absent folder or prefix has none)."""
        selector = pafs.FileSelector(
            filesystem_path(self.data_path).rstrip("/"), recursive=True, allow_not_found=True
        )
        files = [i.path for i in self.fs.get_file_info(selector) if i.type == pafs.FileType.File]
        return [self._url(p) for p in sorted(files)[:limit]]

    def delete(self, path: str) -> None:
        self.fs.delete_file(filesystem_path(path))

    def read_table(self, path: str, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(filesystem_path(path), columns=columns, filesystem=self.fs)

    def replace_table(self, table: pa.Table, path: str) -> FileInfo:
        """Write `table` over the file at `path` at once: a reader sees the old file or the new
        one, never half of either (a local rename; one PUT of the whole object on S3). Returns
        the new file's size and its Parquet footer's size."""
        target = filesystem_path(path)
        written = target if self.remote else target + ".forgetting"
        pq.write_table(
            table, written, filesystem=self.fs, compression="zstd", write_statistics=False
        )
        if not self.remote:
            os.replace(written, target)
        info = self.infos([path])[path]
        return info

    def footer_size(self, path: str, size: int) -> int:
        """The Parquet footer's length (the 4 bytes before the closing magic)."""
        with self.fs.open_input_file(filesystem_path(path)) as handle:
            handle.seek(size - 8)
            return struct.unpack("<I", handle.read(4))[0]


def _utc(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.fromtimestamp(0, UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
