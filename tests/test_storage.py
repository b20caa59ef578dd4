"""Contract tests for portal.storage: every backend must behave the same for the portal.

The S3 half runs against a real SeaweedFS (never a fake: auth, presigning and multipart are
exactly what fakes get wrong), found or started by the `services` fixture of conftest.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import random
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import quote, urlsplit

import pytest
from flask import Flask

from portal.storage import (
    EXTENSION_KEY,
    TEMP_PREFIX,
    LocalStore,
    ObjectNotFound,
    ObjectStore,
    S3Store,
    StorageError,
    StorageUnavailable,
    content_disposition,
    get_store,
    init_app,
    store_from_settings,
    validate_key,
)
from tests.services import Services

MiB = 1024 * 1024
TEST_PART_SIZE = 5 * MiB  # S3's smallest multipart part, so 20 MiB makes four parts


@pytest.fixture(scope="module")
def s3_settings(services: Services) -> Callable[..., dict[str, Any]]:
    """Settings for a bucket on the run's SeaweedFS (found or started by conftest)."""

    def make(bucket: str, **overrides: Any) -> dict[str, Any]:
        return {
            **services.s3_settings(bucket),
            "S3_MULTIPART_THRESHOLD": TEST_PART_SIZE,
            "S3_MULTIPART_CHUNKSIZE": TEST_PART_SIZE,
            "PRESIGN_EXPIRY_SECONDS": 300,
            **overrides,
        }

    return make


def _new_bucket_name() -> str:
    return f"pochette-test-{uuid.uuid4().hex[:12]}"


def _drop_bucket(store: S3Store) -> None:
    """Empty and delete a test bucket, including multipart uploads a failed test left open."""
    with contextlib.suppress(StorageError):
        for info in store.list():
            store.delete(info.key)
    with contextlib.suppress(Exception):
        uploads = store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
        for upload in uploads:
            store.client.abort_multipart_upload(
                Bucket=store.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
    store.client.delete_bucket(Bucket=store.bucket)


@pytest.fixture(scope="module")
def s3_store(s3_settings: Callable[..., dict[str, Any]]) -> Iterator[S3Store]:
    """One bucket for the whole module; each test works under its own key prefix."""
    store = store_from_settings(s3_settings(_new_bucket_name()))
    assert isinstance(store, S3Store)
    store.ensure_bucket()
    yield store
    _drop_bucket(store)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        local = store_from_settings({"STORAGE_URL": (tmp_path / "objets stockés").as_uri()})
        local.ensure_bucket()
        return local
    return cast(S3Store, request.getfixturevalue("s3_store"))


@pytest.fixture
def ns() -> str:
    """A fresh key prefix, so tests sharing the module bucket never see each other's objects."""
    return f"t-{uuid.uuid4().hex[:10]}/"


class Boom(Exception):
    """Raised by a source stream to simulate a client that vanishes mid-upload."""


class ChunkedReader:
    """A network-like source: never returns more than `chunk` bytes, whatever was asked.

    It records every requested size so the tests can prove nobody slurped the whole stream.
    """

    def __init__(
        self, total: int, *, chunk: int = MiB, seed: int = 1, fail_after: int | None = None
    ) -> None:
        self.remaining = total
        self.chunk = chunk
        self.fail_after = fail_after
        self.produced = 0
        self.requests: list[int | None] = []
        self.sha256 = hashlib.sha256()
        self._random = random.Random(seed)

    def read(self, size: int | None = -1) -> bytes:
        self.requests.append(size)
        if self.fail_after is not None and self.produced >= self.fail_after:
            raise Boom("client went away")
        wanted = self.remaining if size is None or size < 0 else min(size, self.remaining)
        data = self._random.randbytes(min(wanted, self.chunk))
        self.remaining -= len(data)
        self.produced += len(data)
        self.sha256.update(data)
        return data


def _sha256_of(store: ObjectStore, key: str) -> str:
    digest = hashlib.sha256()
    with store.open(key) as handle:
        while chunk := handle.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


# --- the contract, on both backends -----------------------------------------------------------


def test_round_trip_binary_with_french_key(store: ObjectStore, ns: str) -> None:
    data = bytes(range(256)) * 64 + b"\r\n\x00\xff fin"
    key = f"{ns}relevés été 2026/avis d'impôt (copie n°2).pdf"

    assert store.put_bytes(key, data, content_type="application/pdf") == len(data)

    assert store.get_bytes(key) == data
    with store.open(key) as handle:
        assert handle.read(10) == data[:10]
        assert handle.read() == data[10:]
    assert [info.key for info in store.list(ns)] == [key]


def test_streamed_put_crosses_multipart_threshold(store: ObjectStore, ns: str) -> None:
    total = 20 * MiB + 12345
    source = ChunkedReader(total, chunk=MiB)
    key = f"{ns}gros fichier.bin"

    assert store.put(key, cast(BinaryIO, source)) == total

    # Bounded reads only: never "everything", never more than one multipart part at a time.
    assert all(size is not None and 0 < size <= TEST_PART_SIZE for size in source.requests)
    assert len(source.requests) > total // TEST_PART_SIZE
    assert store.size(key) == total
    assert _sha256_of(store, key) == source.sha256.hexdigest()
    if isinstance(store, S3Store):
        etag = store.client.head_object(Bucket=store.bucket, Key=key)["ETag"]
        assert etag.strip('"').endswith("-5"), f"expected a 5-part upload, ETag {etag}"


def test_put_file_by_name_crosses_multipart_threshold(
    store: ObjectStore, ns: str, tmp_path: Path
) -> None:
    total = 20 * MiB + 777
    source = ChunkedReader(total, chunk=MiB)
    path = tmp_path / "téléversé.bin"
    with path.open("wb") as out:
        while chunk := source.read(MiB):
            out.write(chunk)
    key = f"{ns}par nom.pdf"
    assert store.put_file(key, path, content_type="application/pdf") == total
    assert store.size(key) == total
    assert _sha256_of(store, key) == source.sha256.hexdigest()
    if isinstance(store, S3Store):
        head = store.client.head_object(Bucket=store.bucket, Key=key)
        assert head["ETag"].strip('"').endswith("-5") and head["ContentType"] == "application/pdf"


def test_small_put_on_s3_is_single_part(store: ObjectStore, ns: str) -> None:
    source = ChunkedReader(100_000, chunk=4096)
    assert store.put(f"{ns}petit", cast(BinaryIO, source)) == 100_000
    assert _sha256_of(store, f"{ns}petit") == source.sha256.hexdigest()
    if isinstance(store, S3Store):
        etag = store.client.head_object(Bucket=store.bucket, Key=f"{ns}petit")["ETag"]
        assert "-" not in etag


def test_put_overwrites(store: ObjectStore, ns: str) -> None:
    key = f"{ns}pack.pdf"
    store.put_bytes(key, b"first version, longer")
    store.put_bytes(key, b"v2")
    assert store.get_bytes(key) == b"v2"
    assert store.size(key) == 2
    assert [info.key for info in store.list(ns)] == [key]


def test_failed_put_leaves_nothing_and_keeps_previous_version(store: ObjectStore, ns: str) -> None:
    fresh, existing = f"{ns}nouveau.bin", f"{ns}ancien.bin"
    store.put_bytes(existing, b"old content")

    for key in (fresh, existing):
        with pytest.raises(Boom):
            store.put(key, cast(BinaryIO, ChunkedReader(12 * MiB, fail_after=7 * MiB)))

    assert not store.exists(fresh)
    assert store.get_bytes(existing) == b"old content"
    assert [info.key for info in store.list(ns)] == [existing]
    if isinstance(store, LocalStore):
        leftovers = [p for p in store.root.rglob("*") if p.name.startswith(TEMP_PREFIX)]
        assert leftovers == []


def test_delete_is_idempotent(store: ObjectStore, ns: str) -> None:
    key = f"{ns}à supprimer.txt"
    store.put_bytes(key, b"x")
    store.delete(key)
    assert not store.exists(key)
    store.delete(key)
    store.delete(f"{ns}never/existed")


def test_exists_and_size(store: ObjectStore, ns: str) -> None:
    key = f"{ns}justificatif.jpg"
    assert not store.exists(key)
    store.put_bytes(key, b"\xff\xd8" + b"\x00" * 1232, content_type="image/jpeg")
    assert store.exists(key)
    assert store.size(key) == 1234
    assert store.put_bytes(f"{ns}vide", b"") == 0
    assert store.exists(f"{ns}vide")
    assert store.size(f"{ns}vide") == 0
    assert store.get_bytes(f"{ns}vide") == b""


def test_missing_objects_raise_object_not_found(store: ObjectStore, ns: str) -> None:
    store.put_bytes(f"{ns}dossier/piece.pdf", b"%PDF")
    # A prefix ("directory" on disk) is not an object either.
    for key in (f"{ns}absent.pdf", f"{ns}dossier", f"{ns}dossier/piece.pdf/plus"):
        with pytest.raises(ObjectNotFound):
            store.open(key)
        with pytest.raises(ObjectNotFound):
            store.get_bytes(key)
        with pytest.raises(ObjectNotFound):
            store.size(key)
        assert not store.exists(key)
    assert issubclass(ObjectNotFound, StorageError)


def test_list_with_prefix_and_pagination(store: ObjectStore, ns: str) -> None:
    started = datetime.now(UTC)
    wanted = [f"{ns}liste/{i:02d}.txt" for i in range(20)]
    wanted += [f"{ns}liste/sous-dossier/{i}.txt" for i in range(5)]
    for i, key in enumerate(wanted):
        store.put_bytes(key, b"x" * i)
    store.put_bytes(f"{ns}liste-autre.txt", b"o")
    store.put_bytes(f"{ns}lis", b"l")

    pages: list[int] = []
    if isinstance(store, S3Store):
        store = S3Store(store.bucket, store.client, page_size=10)
        store.client.meta.events.register(
            "after-call.s3.ListObjectsV2",
            lambda parsed, **_: pages.append(len(parsed.get("Contents", []))),
            unique_id="count-pages",
        )
    try:
        listed = list(store.list(f"{ns}liste/"))
    finally:
        if isinstance(store, S3Store):
            store.client.meta.events.unregister(
                "after-call.s3.ListObjectsV2", unique_id="count-pages"
            )

    # Same order on both backends: S3's, which is UTF-8 byte order.
    assert [info.key for info in listed] == sorted(wanted, key=lambda k: k.encode())
    assert {info.key: info.size for info in listed} == {k: i for i, k in enumerate(wanted)}
    for info in listed:
        assert info.modified_at.utcoffset() == timedelta(0)
        assert started - timedelta(seconds=5) <= info.modified_at <= datetime.now(UTC)
    if isinstance(store, S3Store):
        assert pages == [10, 10, 5]

    # A prefix is a string prefix, not a directory: S3 semantics on both backends.
    assert len(list(store.list(f"{ns}liste"))) == 26
    assert len(list(store.list(f"{ns}lis"))) == 27
    assert list(store.list(f"{ns}liste/sous-dossier/3")) == [
        info for info in listed if info.key.endswith("/3.txt")
    ]
    assert list(store.list(f"{ns}rien/")) == []


INVALID_KEYS = [
    "",
    "/absolu.pdf",
    "../evasion",
    "a/../../b",
    "a/./b",
    "a//b",
    "dossier/",
    "windows\\chemin",
    "nul\x00octet",
    "retour\nligne",
    "tab\tulation",
    "x" * 1025,
    "é" * 600,  # 600 characters, 1200 bytes
    "/".join(["x" * 256, "y"]),  # a part too long for a file name
    f"a/{TEMP_PREFIX}abc",
]


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_keys_are_refused(store: ObjectStore, key: str) -> None:
    calls = [
        lambda: store.put(key, io.BytesIO(b"x")),
        lambda: store.put_bytes(key, b"x"),
        lambda: store.open(key),
        lambda: store.get_bytes(key),
        lambda: store.delete(key),
        lambda: store.exists(key),
        lambda: store.size(key),
        lambda: store.presigned_url(key, filename="f.pdf"),
    ]
    for call in calls:
        with pytest.raises(ValueError):
            call()


@pytest.mark.parametrize("prefix", ["/abs", "../x", "a/../b", "a\\b", "a\x00"])
def test_invalid_list_prefixes_are_refused(store: ObjectStore, prefix: str) -> None:
    with pytest.raises(ValueError):
        list(store.list(prefix))


def test_longest_key_is_accepted(store: ObjectStore, ns: str) -> None:
    key = ns + "/".join(["k" * 200] * 5)
    key += "z" * (1024 - len(key.encode()))
    assert len(key.encode()) == 1024
    store.put_bytes(key, b"long")
    assert store.get_bytes(key) == b"long"
    with pytest.raises(ValueError):
        validate_key(key + "z")


def test_presigned_url_downloads_as_attachment(store: ObjectStore, ns: str) -> None:
    key = f"{ns}{uuid.uuid4().hex}.pdf"
    data = b"%PDF-1.7 contenu"
    store.put_bytes(key, data, content_type="application/pdf")
    filename = "Relevé d'impôt « été » 2026.pdf"

    url = store.presigned_url(key, filename=filename, content_type="application/pdf")

    if isinstance(store, LocalStore):
        assert url is None  # the app streams local files itself
        return
    assert url is not None
    assert "X-Amz-Expires=300" in url
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (test endpoint)
        assert response.status == 200
        assert response.read() == data
        disposition = response.headers["Content-Disposition"]
        assert response.headers["Content-Type"] == "application/pdf"
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''" + quote(filename, safe="") in disposition
    assert "été" not in disposition  # the header itself stays ASCII


def test_expired_presigned_url_is_refused(store: ObjectStore, ns: str) -> None:
    key = f"{ns}expire.pdf"
    store.put_bytes(key, b"%PDF")
    url = store.presigned_url(key, filename="expire.pdf", expires=1)
    if isinstance(store, LocalStore):
        assert url is None
        return
    assert url is not None
    time.sleep(2.5)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)  # noqa: S310 (test endpoint)
    assert refused.value.code == 403


def test_check_and_ensure_bucket(
    store: ObjectStore, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store.check()
    if isinstance(store, LocalStore):
        missing: ObjectStore = LocalStore(tmp_path / "pas encore")
    else:
        make = request.getfixturevalue("s3_settings")
        missing = store_from_settings(make(_new_bucket_name()))
    with pytest.raises(StorageUnavailable, match="does not exist"):
        missing.check()
    missing.ensure_bucket()
    missing.ensure_bucket()  # idempotent
    missing.check()
    if isinstance(missing, S3Store):
        missing.client.delete_bucket(Bucket=missing.bucket)


# --- S3 only: failures must surface as StorageUnavailable, never as botocore internals --------


def test_s3_wrong_secret_is_unavailable(
    s3_store: S3Store, s3_settings: Callable[..., dict[str, Any]]
) -> None:
    wrong = "not-the-secret-" + uuid.uuid4().hex
    bad = store_from_settings(s3_settings(s3_store.bucket, S3_SECRET_ACCESS_KEY=wrong))
    with pytest.raises(StorageUnavailable) as on_check:
        bad.check()
    with pytest.raises(StorageUnavailable) as on_put:
        bad.put_bytes("refus.txt", b"x")
    with pytest.raises(StorageUnavailable):
        bad.put(f"refus-{uuid.uuid4().hex}", cast(BinaryIO, ChunkedReader(6 * MiB)))
    with pytest.raises(StorageUnavailable):
        bad.get_bytes("refus.txt")
    for failure in (on_check.value, on_put.value):
        assert wrong not in str(failure)
    assert "SignatureDoesNotMatch" in str(on_put.value)


def test_s3_unreachable_endpoint_is_unavailable(
    s3_store: S3Store, s3_settings: Callable[..., dict[str, Any]]
) -> None:
    down = store_from_settings(
        s3_settings(
            s3_store.bucket,
            S3_ENDPOINT="http://127.0.0.1:9",
            S3_CONNECT_TIMEOUT=1,
            S3_READ_TIMEOUT=1,
        )
    )
    with pytest.raises(StorageUnavailable, match="unreachable"):
        down.check()
    with pytest.raises(StorageUnavailable):
        down.put_bytes("x", b"x")
    with pytest.raises(StorageUnavailable):
        down.open("x")
    with pytest.raises(StorageUnavailable):
        list(down.list())


def test_s3_anonymous_get_is_refused(s3_store: S3Store, ns: str) -> None:
    key = f"{ns}privé.pdf"
    s3_store.put_bytes(key, b"secret")
    endpoint = s3_store.client.meta.endpoint_url.rstrip("/")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{endpoint}/{s3_store.bucket}/{quote(key)}", timeout=10)  # noqa: S310
    assert refused.value.code == 403


# The other HTTP ports of `weed mini` as scripts/services.sh places them (same offset as S3).
FILER_OFFSET = 8988 - 8433
VOLUME_OFFSET = 9440 - 8433


def _anonymous_status(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 (loopback test)
            return answer.status, answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read()


def test_seaweed_filer_and_volume_ports_serve_nothing_without_credentials(
    s3_store: S3Store, ns: str
) -> None:
    """Only the S3 port, with its access keys, may hand out objects: the filer's HTTP port
    (a plain file server) and the volume server's would give any local process the files."""
    key = f"{ns}filer/pièce.pdf"
    s3_store.put_bytes(key, b"%PDF-1.7 le secret du client")
    endpoint = urlsplit(s3_store.client.meta.endpoint_url)
    assert endpoint.port is not None
    base = f"http://{endpoint.hostname}"
    filer = f"{base}:{endpoint.port + FILER_OFFSET}"
    for path in (f"/buckets/{s3_store.bucket}/{quote(key)}", f"/buckets/{s3_store.bucket}/"):
        status, body = _anonymous_status(filer + path)
        assert status == 401, (path, status)
        assert b"secret du client" not in body
        assert ns.encode() not in body
    # The volume server refuses reads and writes of any file id without a signed token.
    status, body = _anonymous_status(f"{base}:{endpoint.port + VOLUME_OFFSET}/1,0101010101")
    assert status == 401, status
    assert s3_store.get_bytes(key) == b"%PDF-1.7 le secret du client"  # S3 still serves it


# --- construction and Flask glue (no service needed) -----------------------------------------


def test_store_from_settings_file_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absolute = store_from_settings({"STORAGE_URL": f"file://{tmp_path}/abs"})
    assert isinstance(absolute, LocalStore)
    assert absolute.root == tmp_path / "abs"
    monkeypatch.chdir(tmp_path)
    relative = store_from_settings({"STORAGE_URL": "file://instance/storage"})
    assert isinstance(relative, LocalStore)
    assert relative.root == tmp_path / "instance" / "storage"
    assert not relative.root.exists()  # building a store does no I/O


def test_store_from_settings_s3_client_config() -> None:
    built = store_from_settings(
        {
            "STORAGE_URL": "s3://pochette-prod",
            "S3_ENDPOINT": "http://127.0.0.1:8433",
            "S3_REGION": None,
            "S3_ACCESS_KEY_ID": "AKIAEXAMPLE",
            "S3_SECRET_ACCESS_KEY": "example-secret",
            "S3_ADDRESSING_STYLE": "path",
            "S3_MULTIPART_THRESHOLD": 16 * MiB,
        }
    )
    assert isinstance(built, S3Store)
    config = built.client.meta.config
    assert built.bucket == "pochette-prod"
    assert built.client.meta.endpoint_url == "http://127.0.0.1:8433"
    assert built.client.meta.region_name == "us-east-1"
    assert config.signature_version == "s3v4"
    assert config.s3 == {"addressing_style": "path"}
    # botocore reads max_attempts=2 as two retries, i.e. three attempts in all.
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert built.transfer_config.multipart_threshold == 16 * MiB
    assert built.transfer_config.multipart_chunksize == 8 * MiB
    assert built.presign_expiry == 300
    assert "example-secret" not in repr(built)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"STORAGE_URL": "ftp://host/x"}, "unsupported STORAGE_URL scheme 'ftp'"),
        ({}, "STORAGE_URL is not set"),
        ({"STORAGE_URL": "s3://bucket/sub/dir"}, "exactly s3://bucket"),
        ({"STORAGE_URL": "s3://key:secret@bucket"}, "must not carry credentials"),
        ({"STORAGE_URL": "s3://bucket", "S3_ADDRESSING_STYLE": "dns"}, "S3_ADDRESSING_STYLE"),
        ({"STORAGE_URL": "s3://bucket", "S3_ACCESS_KEY_ID": "AKIA"}, "or neither"),
    ],
)
def test_store_from_settings_refuses_bad_settings(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        store_from_settings(settings)
    assert "secret" not in str(refused.value).replace("SECRET", "")


def test_content_disposition_keeps_accents_with_ascii_fallback() -> None:
    header = content_disposition("../../Attestation CAF œuvre « été ».pdf")
    assert header == (
        'attachment; filename="Attestation CAF oeuvre ete .pdf"; '
        "filename*=UTF-8''Attestation%20CAF%20%C5%93uvre%20%C2%AB%20%C3%A9t%C3%A9%20%C2%BB.pdf"
    )
    injected = content_disposition('a"b\r\nSet-Cookie: x=1.pdf', inline=True)
    assert "\r" not in injected
    assert "\n" not in injected
    assert injected.startswith('inline; filename="a_bSet-Cookie: x=1.pdf"')
    assert content_disposition("...").startswith('attachment; filename="document"')


def test_flask_store_is_lazy_and_cached(tmp_path: Path) -> None:
    app = Flask(__name__)
    app.config["STORAGE_URL"] = (tmp_path / "lazy").as_uri()
    init_app(app)
    assert app.extensions[EXTENSION_KEY] is None
    assert not (tmp_path / "lazy").exists()
    with app.app_context():
        first = get_store()
        assert get_store() is first
    assert isinstance(first, LocalStore)
    assert app.extensions[EXTENSION_KEY] is first

    broken = Flask(__name__)
    broken.config["STORAGE_URL"] = "gopher://nope"
    with pytest.raises(ValueError, match="unsupported"):
        init_app(broken)


def _crash_mid_upload(store: ObjectStore, key: str) -> None:
    """What a process killed mid-upload leaves: S3 parts of an open multipart upload, or
    LocalStore's temporary file that was never renamed."""
    if isinstance(store, S3Store):
        started = store.client.create_multipart_upload(Bucket=store.bucket, Key=key)
        store.client.upload_part(
            Bucket=store.bucket,
            Key=key,
            UploadId=started["UploadId"],
            PartNumber=1,
            Body=b"x" * (5 * MiB),
        )
        return
    assert isinstance(store, LocalStore)
    folder = store.root.joinpath(*key.split("/")[:-1])
    folder.mkdir(parents=True, exist_ok=True)
    fd, _name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)
    os.write(fd, b"x" * MiB)
    os.close(fd)


def test_an_upload_cut_by_a_crash_is_listed_as_incomplete_and_can_be_aborted(
    store: ObjectStore, ns: str
) -> None:
    _crash_mid_upload(store, f"{ns}dossier/scan.pdf")
    [upload] = list(store.incomplete_uploads(ns))
    assert upload.key.startswith(f"{ns}dossier/")
    assert abs((datetime.now(UTC) - upload.started_at).total_seconds()) < 120
    assert list(store.list(ns)) == []  # no object: only parts using space
    assert list(store.incomplete_uploads(f"t-{uuid.uuid4().hex[:10]}/")) == []
    store.abort_upload(upload)
    store.abort_upload(upload)  # idempotent
    assert list(store.incomplete_uploads(ns)) == []
