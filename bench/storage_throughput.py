"""Put then get a large object through portal.storage and print throughput and memory growth.

The point is to show that uploads and downloads stream: memory must stay near a few parts
(S3: about (concurrency + 1) x chunksize) however large the object is.

    .venv/bin/python bench/storage_throughput.py           # S3: POCHETTE_S3_ENDPOINT, AWS_* vars
    .venv/bin/python bench/storage_throughput.py --local   # a temporary directory
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import resource
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

if TYPE_CHECKING:
    from portal.storage import ObjectStore

MiB = 1024 * 1024


class PatternReader:
    """A deterministic source that never holds more than one read's worth of data.

    Slices of one random block at moving offsets: cheap enough not to dominate the timing.
    """

    def __init__(self, total: int, *, seed: int = 64) -> None:
        self.remaining = total
        self._block = random.Random(seed).randbytes(MiB + 4096)
        self._offset = 0
        self.largest_request = 0

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            raise AssertionError("the store asked for the whole stream at once")
        self.largest_request = max(self.largest_request, size)
        size = min(size, self.remaining, MiB)
        start = self._offset % 4096
        self._offset += 1
        data = self._block[start : start + size]
        self.remaining -= len(data)
        return data


def expected_sha256(total: int) -> str:
    digest = hashlib.sha256()
    source = PatternReader(total)
    while chunk := source.read(MiB):
        digest.update(chunk)
    return digest.hexdigest()


def current_rss() -> int:
    """Resident set size now, in bytes (Linux /proc); falls back to the lifetime peak."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    rss_start: int = 0
    rss_peak: int = 0
    traced_peak: int | None = None


@contextmanager
def measured(name: str, *, trace: bool) -> Iterator[Phase]:
    """Sample RSS every 2 ms during the phase: getrusage's peak is per process, not per phase."""
    phase = Phase(name, rss_start=current_rss())
    phase.rss_peak = phase.rss_start
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.002):
            phase.rss_peak = max(phase.rss_peak, current_rss())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if trace:
        tracemalloc.reset_peak()
    started = time.perf_counter()
    try:
        yield phase
    finally:
        phase.seconds = time.perf_counter() - started
        stop.set()
        sampler.join()
        phase.rss_peak = max(phase.rss_peak, current_rss())
        if trace:
            phase.traced_peak = tracemalloc.get_traced_memory()[1]


def drain(store: ObjectStore, key: str, chunk: int, digest: Any | None = None) -> int:
    read = 0
    with store.open(key) as handle:
        while data := handle.read(chunk):
            read += len(data)
            if digest is not None:
                digest.update(data)
    return read


def run(store: ObjectStore, total: int, *, trace: bool) -> list[Phase]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}/"
    key = prefix + "gros fichier.bin"
    # Warm-up: imports, connection pool and transfer threads must not count as growth.
    store.put(prefix + "warm-up", cast(BinaryIO, PatternReader(2 * MiB)))
    drain(store, prefix + "warm-up", MiB)
    if trace:
        tracemalloc.start()
    source = PatternReader(total)
    try:
        with measured("put", trace=trace) as put_phase:
            written = store.put(key, cast(BinaryIO, source))
        with measured("get", trace=trace) as get_phase:
            read = drain(store, key, MiB)
    finally:
        if trace:
            tracemalloc.stop()
    if written != total or read != total:
        raise SystemExit(f"size mismatch: wrote {written}, read {read}, expected {total}")
    check = hashlib.sha256()
    drain(store, key, MiB, check)
    if check.hexdigest() != expected_sha256(total):
        raise SystemExit("sha256 mismatch between what was put and what was read back")
    print(f"  largest read the store asked of the source: {source.largest_request / MiB:.1f} MiB")
    for cleanup in (key, prefix + "warm-up"):
        store.delete(cleanup)
    return [put_phase, get_phase]


def report(label: str, total: int, phases: list[Phase]) -> None:
    print(f"{label}: {total / MiB:.0f} MiB, sha256 verified")
    for phase in phases:
        growth = (phase.rss_peak - phase.rss_start) / MiB
        line = (
            f"  {phase.name}: {total / phase.seconds / 1e6:7.1f} MB/s ({phase.seconds:.2f} s), "
            f"peak RSS growth {growth:5.1f} MiB"
        )
        if phase.traced_peak is not None:
            line += f", tracemalloc peak {phase.traced_peak / MiB:5.1f} MiB"
        print(line)
    lifetime = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  process peak RSS (getrusage): {lifetime:.0f} MiB")


def with_s3(callback: Callable[[ObjectStore, str], None]) -> None:
    from portal.storage import S3Store, store_from_settings

    missing = [
        name
        for name in ("POCHETTE_S3_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        if not os.environ.get(name)
    ]
    if missing:
        raise SystemExit(f"set {', '.join(missing)} (scripts/services.sh prints them) or --local")
    bucket = f"pochette-bench-{uuid.uuid4().hex[:12]}"
    store = store_from_settings(
        {
            "STORAGE_URL": f"s3://{bucket}",
            "S3_ENDPOINT": os.environ["POCHETTE_S3_ENDPOINT"],
            "S3_REGION": os.environ.get("POCHETTE_S3_REGION") or "us-east-1",
            "S3_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
            "S3_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
        }
    )
    assert isinstance(store, S3Store)
    store.ensure_bucket()
    try:
        config = store.transfer_config
        callback(
            store,
            f"S3 {store.client.meta.endpoint_url} (parts {config.multipart_chunksize // MiB} MiB"
            f" x {config.max_request_concurrency} threads)",
        )
    finally:
        for info in store.list():
            store.delete(info.key)
        store.client.delete_bucket(Bucket=bucket)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--local", action="store_true", help="use a temporary directory")
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument(
        "--tracemalloc", action="store_true", help="also report Python allocations (slower)"
    )
    args = parser.parse_args(argv)
    # Run from a checkout without installing: the repository root holds the portal package.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from portal.storage import LocalStore

    total = args.size_mib * MiB

    def bench(store: ObjectStore, label: str) -> None:
        report(label, total, run(store, total, trace=args.tracemalloc))

    if args.local:
        with tempfile.TemporaryDirectory(prefix="pochette-bench-") as directory:
            store = LocalStore(Path(directory) / "objets")
            store.ensure_bucket()
            bench(store, f"local {store.root}")
    else:
        with_s3(bench)


if __name__ == "__main__":
    main()
