"""How the web process receives files: spooled to named temporary files, hashed on the way in.

Werkzeug's default keeps file parts in anonymous temporary files, which the S3 client can only
read as a stream (buffering whole parts in memory) and which screening must read once more to
hash. A named file lets storage upload by name; hashing while werkzeug writes saves that pass.
"""

from __future__ import annotations

import hashlib
import tempfile
from typing import IO, Any

from flask import Request

# Smaller parts (form fields, tiny files) stay in memory, as werkzeug does.
IN_MEMORY_BYTES = 512 * 1024
HEAD_BYTES = 4096


class ReceivedFile:
    """A named temporary file that records size, SHA-256 and first bytes of what is written.

    Everything else (read, seek, close, name...) is the temporary file's own.
    """

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.NamedTemporaryFile(prefix="pochette-upload-")  # noqa: SIM115
        self._digest = hashlib.sha256()
        self.size = 0
        self.head = b""

    def write(self, data: bytes) -> int:
        # werkzeug only appends, then seeks to 0 once the part is complete.
        if len(self.head) < HEAD_BYTES:
            self.head += bytes(data[: HEAD_BYTES - len(self.head)])
        self._digest.update(data)
        self.size += len(data)
        return self._file.write(data)

    @property
    def received(self) -> tuple[int, str, bytes]:
        """(size, sha256 hex, first bytes) of everything written so far."""
        return self.size, self._digest.hexdigest(), self.head

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    def __iter__(self) -> Any:
        return iter(self._file)

    def __enter__(self) -> ReceivedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


class UploadRequest(Request):
    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        if total_content_length is not None and total_content_length <= IN_MEMORY_BYTES:
            return super()._get_file_stream(
                total_content_length, content_type, filename, content_length
            )
        return ReceivedFile()  # type: ignore[return-value]
