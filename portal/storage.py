"""Object storage for every uploaded or generated file: S3 in production, a directory in dev.

The portal only talks to `ObjectStore`, so views, jobs and tests never care which backend runs.
Nothing here does I/O at import or in `init_app`: the store is built on first use.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
import tempfile
import threading
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote, unquote, urlsplit

import boto3
import botocore.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

if TYPE_CHECKING:
    from flask import Flask

__all__ = [
    "EXTENSION_KEY",
    "IncompleteUpload",
    "LocalStore",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "S3Store",
    "StorageError",
    "StorageUnavailable",
    "case_prefix",
    "content_disposition",
    "get_store",
    "init_app",
    "s3_client_from_settings",
    "store_from_settings",
    "transfer_config_from_settings",
    "validate_key",
]

MiB = 1024 * 1024
MAX_KEY_BYTES = 1024
# A key part becomes a file name in LocalStore; most filesystems stop at 255 bytes.
MAX_KEY_PART_BYTES = 255
# LocalStore's in-flight uploads; reserved so that `list` can hide them without ambiguity.
TEMP_PREFIX = ".pochette-tmp-"
DEFAULT_PRESIGN_EXPIRY = 300
MAX_PRESIGN_EXPIRY = 7 * 24 * 3600  # SigV4 refuses longer
DEFAULT_LIST_PAGE_SIZE = 1000
_COPY_CHUNK = MiB
# Disk full, read-only or forbidden: the whole store is unusable, so the app answers 503.
_ERRNO_UNAVAILABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EIO}

EXTENSION_KEY = "pochette.storage"


class StorageError(Exception):
    """Base for storage failures, so callers can catch one type."""


class StorageUnavailable(StorageError):
    """The backend cannot serve now (down, timeout, credentials refused): the app answers 503."""


class ObjectNotFound(StorageError):
    """No object under that key; distinct so views can answer 404 instead of 503."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified_at: datetime  # tz-aware UTC


@dataclass(frozen=True)
class IncompleteUpload:
    """An upload begun and never finished (S3 multipart; LocalStore's temporary file): its
    parts use space but no object exists. A crash mid-upload leaves one behind."""

    key: str
    upload_id: str
    started_at: datetime  # tz-aware UTC


# --- keys -------------------------------------------------------------------------------------


def _check_text(value: str, what: str) -> None:
    if "\\" in value:
        raise ValueError(f"{what} must not contain a backslash")
    if value.startswith("/"):
        raise ValueError(f"{what} must be relative (no leading slash)")
    for char in value:
        # Spaces of any kind are allowed (French typography uses no-break spaces); control,
        # format, surrogate, private-use and unassigned characters, line breaks are not.
        if unicodedata.category(char)[0] == "C" or unicodedata.category(char) in ("Zl", "Zp"):
            raise ValueError(f"{what} contains a non-printable character {char!r}")
    if len(value.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"{what} is longer than {MAX_KEY_BYTES} bytes in UTF-8")


def _check_part(part: str, what: str) -> None:
    if part in ("", ".", ".."):
        raise ValueError(f"{what} has an empty, '.' or '..' path part")
    if len(part.encode("utf-8")) > MAX_KEY_PART_BYTES:
        raise ValueError(f"{what} has a path part longer than {MAX_KEY_PART_BYTES} bytes")
    if part.startswith(TEMP_PREFIX):
        raise ValueError(f"{what} uses the reserved prefix {TEMP_PREFIX!r}")


def validate_key(key: str) -> str:
    """Refuse keys that could escape LocalStore's root or mean different things on each backend.

    One rule for both backends, so a key accepted in development is accepted in production.
    """
    if not isinstance(key, str):
        raise TypeError(f"object key must be a str, not {type(key).__name__}")
    if not key:
        raise ValueError("object key must not be empty")
    _check_text(key, "object key")
    for part in key.split("/"):
        _check_part(part, "object key")
    return key


def case_prefix(org_id: int, case_id: int) -> str:
    """The folder of a case's objects (its documents, their versions, its packs)."""
    return f"org/{org_id}/case/{case_id}/"


def _validate_prefix(prefix: str) -> str:
    # A prefix may end anywhere (S3 semantics), but its complete parts follow the key rule so that
    # LocalStore can start its walk in the matching directory.
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, not {type(prefix).__name__}")
    if prefix:
        _check_text(prefix, "prefix")
        for part in prefix.split("/")[:-1]:
            _check_part(part, "prefix")
    return prefix


# --- Content-Disposition ----------------------------------------------------------------------

# RFC 5987 attr-char, apart from ALPHA / DIGIT which quote() always keeps.
_ATTR_CHARS = "!#$&+-.^_`|~"
_ASCII_FOLDS = str.maketrans(
    {
        "œ": "oe",
        "Œ": "OE",
        "æ": "ae",
        "Æ": "AE",
        "ß": "ss",
        "’": "'",
        "‘": "'",
        "«": "",
        "»": "",
        "–": "-",
        "—": "-",
        "€": "EUR",
    }
)


def _clean_filename(filename: str) -> str:
    # Only the last path part means anything to a browser; control characters (CR/LF!) could
    # split a header.
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    name = " ".join(name.split()).strip(" .")
    return name or "document"


def content_disposition(filename: str, *, inline: bool = False) -> str:
    """Build an RFC 6266 header value that keeps French accents and still works for old clients.

    Shared by the S3 presigned URL and by the views that stream LocalStore files themselves.
    """
    name = _clean_filename(filename)
    folded = unicodedata.normalize("NFKD", name.translate(_ASCII_FOLDS))
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    fallback = folded.encode("ascii", "replace").decode("ascii")
    # '%' is percent-decoded by some browsers; quotes and backslashes would end the quoted-string.
    for char in '?"\\%':
        fallback = fallback.replace(char, "_")
    fallback = " ".join(fallback.split())
    kind = "inline" if inline else "attachment"
    encoded = quote(name, safe=_ATTR_CHARS, encoding="utf-8")
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


# --- the interface ----------------------------------------------------------------------------


class ObjectStore(ABC):
    """What the portal needs from a blob store; both backends pass the same contract tests."""

    @abstractmethod
    def put(
        self, key: str, stream: BinaryIO, *, content_type: str = "application/octet-stream"
    ) -> int:
        """Store the stream's bytes in bounded memory; returns the number of bytes written."""

    def put_bytes(
        self, key: str, data: bytes, *, content_type: str = "application/octet-stream"
    ) -> int:
        """Small generated files (covers, receipts) are simpler to hand over whole."""
        return self.put(key, io.BytesIO(data), content_type=content_type)

    def put_file(
        self, key: str, path: Path | str, *, content_type: str = "application/octet-stream"
    ) -> int:
        """Store a file on disk (an upload spooled by the web process); returns its size.

        The S3 backend reads each part from the file itself instead of buffering parts.
        """
        with open(path, "rb") as handle:
            return self.put(key, handle, content_type=content_type)

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """Stream an object; use it as a context manager. Raises ObjectNotFound."""

    def get_bytes(self, key: str) -> bytes:
        """Whole object in memory: only for small objects."""
        with self.open(key) as handle:
            return handle.read()

    @abstractmethod
    def delete(self, key: str) -> None:
        """Idempotent, so clean-up code can retry without checking first."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def size(self, key: str) -> int:
        """Raises ObjectNotFound."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with prefix, in UTF-8 byte order (S3's order), lazily."""

    @abstractmethod
    def incomplete_uploads(self, prefix: str = "") -> Iterator[IncompleteUpload]:
        """Uploads begun under prefix and not finished (nor aborted), lazily."""

    @abstractmethod
    def abort_upload(self, upload: IncompleteUpload) -> None:
        """Drop an unfinished upload's parts; idempotent. Only for an upload nobody is
        still sending: the caller judges by its age."""

    @abstractmethod
    def presigned_url(
        self,
        key: str,
        *,
        filename: str,
        content_type: str | None = None,
        expires: int | None = None,
    ) -> str | None:
        """A short-lived download URL, or None when the app must stream the file itself."""

    @abstractmethod
    def check(self) -> None:
        """Cheap reachability and credentials check; raises StorageUnavailable with a reason."""

    @abstractmethod
    def ensure_bucket(self) -> None:
        """Create the container if missing; called by commands and tests, never at start-up."""


# --- local directory --------------------------------------------------------------------------


def _os_error(exc: OSError, action: str) -> StorageError:
    if exc.errno in _ERRNO_UNAVAILABLE:
        return StorageUnavailable(f"local storage cannot {action}: {exc.strerror}")
    return StorageError(f"local storage cannot {action}: {exc.strerror}")


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def _byte_order(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


class LocalStore(ObjectStore):
    """A directory tree, for the first run and for development without S3."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).absolute()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def put(
        self, key: str, stream: BinaryIO, *, content_type: str = "application/octet-stream"
    ) -> int:
        """Write to a temporary sibling then rename, so readers never see half a file.

        content_type is not kept: the app stores the sniffed type in its own row.
        """
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise StorageError(f"key {key!r} collides with an existing object") from exc
        except OSError as exc:
            raise _os_error(exc, "create a directory") from exc
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
        except OSError as exc:
            raise _os_error(exc, "create a file") from exc
        try:
            with os.fdopen(fd, "wb") as tmp:
                written = self._copy(stream, tmp)
            try:
                os.replace(tmp_name, path)
            except IsADirectoryError as exc:
                raise StorageError(f"key {key!r} collides with an existing prefix") from exc
            except OSError as exc:
                raise _os_error(exc, "write") from exc
        except BaseException:
            # Whatever failed (our disk or the caller's stream), leave no partial file behind.
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        self._fsync_dir(path.parent)
        return written

    @staticmethod
    def _copy(stream: BinaryIO, out: BinaryIO) -> int:
        # Errors raised by the caller's stream (client gone) pass through untouched; only our own
        # disk errors become StorageError.
        written = 0
        while chunk := stream.read(_COPY_CHUNK):
            try:
                out.write(chunk)
            except OSError as exc:
                raise _os_error(exc, "write") from exc
            written += len(chunk)
        try:
            out.flush()
            # Uploaded documents may exist nowhere else: make the bytes durable before the
            # rename makes them visible.
            os.fsync(out.fileno())
        except OSError as exc:
            raise _os_error(exc, "write") from exc
        return written

    @staticmethod
    def _fsync_dir(directory: Path) -> None:
        # The rename itself must survive a crash too; not every platform can open a directory.
        try:
            dir_fd = os.open(directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dir_fd)
        except OSError:
            pass
        finally:
            os.close(dir_fd)

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFound(key) from exc
        except OSError as exc:
            raise _os_error(exc, "read") from exc

    def delete(self, key: str) -> None:
        """Empty directories stay: removing them would race with a concurrent put."""
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return
        except OSError as exc:
            raise _os_error(exc, "delete") from exc

    def _stat(self, key: str) -> os.stat_result | None:
        path = self._path(key)
        try:
            result = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise _os_error(exc, "read") from exc
        return result if stat.S_ISREG(result.st_mode) else None

    def exists(self, key: str) -> bool:
        return self._stat(key) is not None

    def size(self, key: str) -> int:
        result = self._stat(key)
        if result is None:
            raise ObjectNotFound(key)
        return result.st_size

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        _validate_prefix(prefix)
        directory, _, _ = prefix.rpartition("/")
        start = self.root.joinpath(*directory.split("/")) if directory else self.root
        base = f"{directory}/" if directory else ""
        return self._walk(start, base, prefix)

    def _walk(self, directory: Path, base: str, prefix: str) -> Iterator[ObjectInfo]:
        try:
            with os.scandir(directory) as scan:
                entries = list(scan)
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise _os_error(exc, "list") from exc
        # A directory sorts as "name/" so the walk yields keys in the same order as S3 does.
        decorated = []
        for entry in entries:
            if entry.name.startswith(TEMP_PREFIX):
                continue
            is_dir = entry.is_dir(follow_symlinks=False)
            decorated.append((_byte_order(entry.name + ("/" if is_dir else "")), is_dir, entry))
        decorated.sort(key=lambda item: item[0])
        for _, is_dir, entry in decorated:
            key = base + entry.name
            if is_dir:
                child = key + "/"
                # Only descend where keys can still match the prefix.
                if child.startswith(prefix) or prefix.startswith(child):
                    yield from self._walk(Path(entry.path), child, prefix)
            elif key.startswith(prefix) and entry.is_file(follow_symlinks=False):
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # deleted while listing
                yield ObjectInfo(key=key, size=info.st_size, modified_at=_utc(info.st_mtime))

    def incomplete_uploads(self, prefix: str = "") -> Iterator[IncompleteUpload]:
        """The temporary files `put` leaves when the process dies before its rename."""
        _validate_prefix(prefix)
        directory, _, _ = prefix.rpartition("/")
        start = self.root.joinpath(*directory.split("/")) if directory else self.root
        return self._temporaries(start, prefix)

    def _temporaries(self, start: Path, prefix: str) -> Iterator[IncompleteUpload]:
        for folder, dirs, files in os.walk(start):
            dirs.sort()
            base = Path(folder).relative_to(self.root).as_posix()
            base = "" if base == "." else f"{base}/"
            for name in sorted(files):
                if not name.startswith(TEMP_PREFIX) or not (base + name).startswith(prefix):
                    continue
                try:
                    started = os.stat(os.path.join(folder, name)).st_mtime
                except FileNotFoundError:
                    continue  # finished (renamed) or removed while listing
                yield IncompleteUpload(base + name, base + name, _utc(started))

    def abort_upload(self, upload: IncompleteUpload) -> None:
        _validate_prefix(upload.upload_id)
        name = upload.upload_id.rsplit("/", 1)[-1]
        if not name.startswith(TEMP_PREFIX):
            raise ValueError("not an unfinished upload of this store")
        try:
            self.root.joinpath(*upload.upload_id.split("/")).unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise _os_error(exc, "delete") from exc

    def presigned_url(
        self,
        key: str,
        *,
        filename: str,
        content_type: str | None = None,
        expires: int | None = None,
    ) -> str | None:
        """No URL: the app streams the file itself with `content_disposition(filename)`."""
        validate_key(key)
        return None

    def check(self) -> None:
        if not self.root.is_dir():
            raise StorageUnavailable(f"local storage directory {self.root} does not exist")
        if not os.access(self.root, os.R_OK | os.W_OK | os.X_OK):
            raise StorageUnavailable(f"local storage directory {self.root} is not writable")

    def ensure_bucket(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _os_error(exc, "create its directory") from exc


# --- S3 ---------------------------------------------------------------------------------------

_NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}
_AUTH_CODES = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "RequestTimeTooSkewed",
    "AuthorizationHeaderMalformed",
}


def _error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _translate(exc: Exception, key: str | None, bucket: str) -> StorageError:
    """Map botocore's many failure types onto the three the portal acts on.

    Messages carry error codes and the bucket, never credentials or URLs with signatures.
    """
    if isinstance(exc, botocore.exceptions.ClientError):
        code = _error_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _NOT_FOUND_CODES and key is not None:
            return ObjectNotFound(key)
        if code == "NoSuchBucket" or (code in _NOT_FOUND_CODES and key is None):
            return StorageUnavailable(f"S3 bucket {bucket!r} does not exist")
        if code in _AUTH_CODES or status in (401, 403):
            return StorageUnavailable(f"S3 refused the credentials or access ({code or status})")
        if isinstance(status, int) and status >= 500:
            return StorageUnavailable(f"S3 failed ({code or status})")
        return StorageError(f"S3 error {code or status}")
    if isinstance(
        exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError
    ):
        return StorageUnavailable("no S3 credentials configured")
    if isinstance(
        exc, botocore.exceptions.ConnectTimeoutError | botocore.exceptions.ReadTimeoutError
    ):
        return StorageUnavailable(f"S3 timed out ({type(exc).__name__})")
    if isinstance(
        exc,
        botocore.exceptions.HTTPClientError
        | botocore.exceptions.EndpointConnectionError
        | botocore.exceptions.IncompleteReadError,  # connection cut mid-download
    ):
        return StorageUnavailable(f"S3 endpoint unreachable ({type(exc).__name__})")
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return StorageError(f"S3 client error ({type(exc).__name__})")
    raise TypeError("not a botocore error") from exc


_BOTO_ERRORS = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)


class _FullReads(io.RawIOBase):
    """Non-seekable view of a caller's stream that fills every read and counts the bytes.

    s3transfer decides single-part vs multipart from one read() of `threshold` bytes and sends
    each read() as a part: a short read (sockets, WSGI input) would misjudge both. Being
    non-seekable also makes s3transfer buffer parts itself instead of re-reading the stream.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._eof = False
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if self._eof:
            return b""
        if size is None or size < 0:
            chunks = []
            while chunk := self.read(_COPY_CHUNK):
                chunks.append(chunk)
            return b"".join(chunks)
        parts: list[bytes] = []
        wanted = size
        while wanted > 0:
            chunk = self._stream.read(wanted)
            if not chunk:
                self._eof = True
                break
            parts.append(chunk)
            wanted -= len(chunk)
        data = b"".join(parts)
        self.count += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _S3Body(io.RawIOBase):
    """A GetObject body whose network errors surface as StorageUnavailable mid-stream too."""

    def __init__(self, body: Any, key: str, bucket: str) -> None:
        self._body = body
        self._key = key
        self._bucket = bucket

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        try:
            return self._body.read(None if size is None or size < 0 else size)
        except _BOTO_ERRORS as exc:
            raise _translate(exc, self._key, self._bucket) from exc

    def readall(self) -> bytes:
        return self.read()

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class S3Store(ObjectStore):
    """One bucket on S3 or an S3-compatible server (SeaweedFS in tests and self-hosting)."""

    def __init__(
        self,
        bucket: str,
        client: Any,
        transfer_config: TransferConfig | None = None,
        presign_expiry: int = DEFAULT_PRESIGN_EXPIRY,
        *,
        page_size: int = DEFAULT_LIST_PAGE_SIZE,
    ) -> None:
        if not 1 <= page_size <= 1000:
            raise ValueError("page_size must be between 1 and 1000")
        self.bucket = bucket
        self.client = client
        self.transfer_config = transfer_config or TransferConfig()
        self.presign_expiry = presign_expiry
        self.page_size = page_size

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r}, endpoint={self.client.meta.endpoint_url!r})"

    @contextlib.contextmanager
    def _errors(self, key: str | None = None) -> Iterator[None]:
        try:
            yield
        except _BOTO_ERRORS as exc:
            raise _translate(exc, key, self.bucket) from exc

    def put(
        self, key: str, stream: BinaryIO, *, content_type: str = "application/octet-stream"
    ) -> int:
        """Multipart above the threshold; memory stays near (concurrency + 3) x chunksize."""
        validate_key(key)
        reader = _FullReads(stream)
        with self._errors(key):
            self.client.upload_fileobj(
                reader,
                self.bucket,
                key,
                ExtraArgs={"ContentType": content_type},
                Config=self.transfer_config,
            )
        return reader.count

    def put_file(
        self, key: str, path: Path | str, *, content_type: str = "application/octet-stream"
    ) -> int:
        """By name, s3transfer reads each part lazily from its own handle: memory stays near a
        few read buffers instead of (concurrency + 3) whole parts (bench/upload.py: 62 -> 15 MB
        peak for a 25 MB PDF)."""
        validate_key(key)
        size = os.path.getsize(path)
        with self._errors(key):
            self.client.upload_file(
                str(path),
                self.bucket,
                key,
                ExtraArgs={"ContentType": content_type},
                Config=self.transfer_config,
            )
        return size

    def open(self, key: str) -> BinaryIO:
        validate_key(key)
        with self._errors(key):
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        return io.BufferedReader(_S3Body(response["Body"], key, self.bucket), 256 * 1024)

    def delete(self, key: str) -> None:
        validate_key(key)
        try:
            with self._errors(key):
                self.client.delete_object(Bucket=self.bucket, Key=key)
        except ObjectNotFound:
            return

    def _head(self, key: str) -> dict[str, Any]:
        validate_key(key)
        with self._errors(key):
            return self.client.head_object(Bucket=self.bucket, Key=key)

    def exists(self, key: str) -> bool:
        try:
            self._head(key)
        except ObjectNotFound:
            return False
        return True

    def size(self, key: str) -> int:
        return int(self._head(key)["ContentLength"])

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        _validate_prefix(prefix)
        return self._list(prefix)

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": self.page_size}
        )
        with self._errors():
            for page in pages:
                for item in page.get("Contents", []):
                    # Folder markers made by other tools are not objects in our key scheme.
                    if item["Key"].endswith("/"):
                        continue
                    yield ObjectInfo(
                        key=item["Key"],
                        size=int(item["Size"]),
                        modified_at=item["LastModified"].astimezone(UTC),
                    )

    def incomplete_uploads(self, prefix: str = "") -> Iterator[IncompleteUpload]:
        _validate_prefix(prefix)
        return self._multipart_uploads(prefix)

    def _multipart_uploads(self, prefix: str) -> Iterator[IncompleteUpload]:
        paginator = self.client.get_paginator("list_multipart_uploads")
        with self._errors():
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Uploads", []):
                    yield IncompleteUpload(
                        key=item["Key"],
                        upload_id=item["UploadId"],
                        started_at=item["Initiated"].astimezone(UTC),
                    )

    def abort_upload(self, upload: IncompleteUpload) -> None:
        validate_key(upload.key)
        try:
            with self._errors(upload.key):
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload.key, UploadId=upload.upload_id
                )
        except ObjectNotFound:
            return

    def presigned_url(
        self,
        key: str,
        *,
        filename: str,
        content_type: str | None = None,
        expires: int | None = None,
    ) -> str | None:
        """Signed locally (no request); always a download, never rendered from S3's origin."""
        validate_key(key)
        expiry = self.presign_expiry if expires is None else expires
        if not 1 <= expiry <= MAX_PRESIGN_EXPIRY:
            raise ValueError(f"expires must be between 1 and {MAX_PRESIGN_EXPIRY} seconds")
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "ResponseContentDisposition": content_disposition(filename),
        }
        if content_type:
            params["ResponseContentType"] = content_type
        with self._errors(key):
            return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expiry)

    def check(self) -> None:
        with self._errors():
            self.client.head_bucket(Bucket=self.bucket)

    def ensure_bucket(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except botocore.exceptions.ClientError as exc:
            if _error_code(exc) not in _NOT_FOUND_CODES | {"NoSuchBucket"}:
                raise _translate(exc, None, self.bucket) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise _translate(exc, None, self.bucket) from exc
        else:
            return
        params: dict[str, Any] = {"Bucket": self.bucket}
        region = self.client.meta.region_name
        if region and region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self.client.create_bucket(**params)
        except botocore.exceptions.ClientError as exc:
            # Created concurrently by another worker or test process: that is the goal anyway.
            if _error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise _translate(exc, None, self.bucket) from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise _translate(exc, None, self.bucket) from exc


# --- construction from settings ---------------------------------------------------------------


def _setting(settings: Mapping[str, Any], name: str, default: Any = None) -> Any:
    # Environment-derived config gives "" for unset variables; treat it as unset.
    value = settings.get(name)
    return default if value is None or value == "" else value


def _positive_int(settings: Mapping[str, Any], name: str, default: int) -> int:
    raw = _setting(settings, name, default)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def _parse_storage_url(url: Any) -> tuple[str, Path | str]:
    """('file', Path) or ('s3', bucket); ValueError names the problem but never echoes secrets."""
    if not isinstance(url, str) or not url:
        raise ValueError("STORAGE_URL is not set (use file:///path or s3://bucket)")
    parts = urlsplit(url)
    if parts.scheme == "file":
        # file:///abs/path is absolute; file://relative/path is relative to the working dir.
        raw = unquote(parts.netloc + parts.path)
        if not raw:
            raise ValueError("STORAGE_URL file:// needs a path, e.g. file:///srv/pochette")
        path = Path(raw)
        return "file", path if path.is_absolute() else Path.cwd() / path
    if parts.scheme == "s3":
        if "@" in parts.netloc:
            raise ValueError("STORAGE_URL must not carry credentials; use the S3_* settings")
        bucket = parts.netloc
        if not bucket or parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("STORAGE_URL for S3 must be exactly s3://bucket (no path or query)")
        if not 3 <= len(bucket) <= 63:
            raise ValueError("S3 bucket name must be 3 to 63 characters long")
        return "s3", bucket
    raise ValueError(
        f"unsupported STORAGE_URL scheme {parts.scheme!r}: use file:///path or s3://bucket"
    )


def s3_client_from_settings(settings: Mapping[str, Any]) -> Any:
    """A boto3 S3 client with explicit timeouts and few retries, so an outage fails fast (503)."""
    style = _setting(settings, "S3_ADDRESSING_STYLE", "path")
    if style not in ("path", "virtual", "auto"):
        raise ValueError("S3_ADDRESSING_STYLE must be 'path', 'virtual' or 'auto'")
    key_id = _setting(settings, "S3_ACCESS_KEY_ID")
    secret = _setting(settings, "S3_SECRET_ACCESS_KEY")
    if (key_id is None) != (secret is None):
        raise ValueError("set both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, or neither")
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": style},
        connect_timeout=float(_setting(settings, "S3_CONNECT_TIMEOUT", 3)),
        read_timeout=float(_setting(settings, "S3_READ_TIMEOUT", 20)),
        retries={"max_attempts": 2, "mode": "standard"},
    )
    # A private session: boto3's default session is not safe to build clients from in threads.
    session = boto3.session.Session()
    credentials: dict[str, str] = {}
    if key_id is not None:
        credentials = {"aws_access_key_id": key_id, "aws_secret_access_key": secret}
    return session.client(
        "s3",
        endpoint_url=_setting(settings, "S3_ENDPOINT"),
        region_name=_setting(settings, "S3_REGION", "us-east-1"),
        config=config,
        **credentials,
    )


def transfer_config_from_settings(settings: Mapping[str, Any]) -> TransferConfig:
    """Bound memory per upload, whatever the object size.

    Parts in flight or queued (concurrency) + the one waiting for a slot + the one being read
    (twice while its pieces are joined): about 56 MiB with 8 MiB parts, measured by
    bench/storage_throughput.py.
    """
    concurrency = 4
    config = TransferConfig(
        multipart_threshold=_positive_int(settings, "S3_MULTIPART_THRESHOLD", 8 * MiB),
        multipart_chunksize=_positive_int(settings, "S3_MULTIPART_CHUNKSIZE", 8 * MiB),
        max_concurrency=concurrency,
        use_threads=True,
        preferred_transfer_client="classic",
    )
    # s3transfer's own knob (default 10 chunks): how many read-ahead parts may wait in memory.
    config.max_in_memory_upload_chunks = concurrency
    return config


def store_from_settings(settings: Mapping[str, Any]) -> ObjectStore:
    """Build the configured backend; no network traffic happens here."""
    kind, target = _parse_storage_url(settings.get("STORAGE_URL"))
    if kind == "file":
        return LocalStore(Path(target))
    return S3Store(
        bucket=str(target),
        client=s3_client_from_settings(settings),
        transfer_config=transfer_config_from_settings(settings),
        presign_expiry=_positive_int(settings, "PRESIGN_EXPIRY_SECONDS", DEFAULT_PRESIGN_EXPIRY),
    )


# --- Flask glue -------------------------------------------------------------------------------

_create_lock = threading.Lock()


def init_app(app: Flask) -> None:
    """Validate STORAGE_URL's shape early; the store itself is built on first use."""
    if app.config.get("STORAGE_URL"):
        _parse_storage_url(app.config["STORAGE_URL"])
    app.extensions.setdefault(EXTENSION_KEY, None)


def get_store() -> ObjectStore:
    """The current app's store; tests may put their own in app.extensions[EXTENSION_KEY]."""
    from flask import current_app

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    store = app.extensions.get(EXTENSION_KEY)
    if store is None:
        with _create_lock:
            store = app.extensions.get(EXTENSION_KEY)
            if store is None:
                store = store_from_settings(app.config)
                app.extensions[EXTENSION_KEY] = store
    return store
