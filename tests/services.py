"""Finding (or starting) the real services the tests talk to: PostgreSQL, Redis, SeaweedFS."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NEEDED = (
    "POCHETTE_DATABASE_URL",
    "POCHETTE_REDIS_URL",
    "POCHETTE_S3_ENDPOINT",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
)


def _parse_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            values[key] = shlex.split(value)[0] if value else ""
    return values


class Services:
    """The URLs from the environment (scripts/test.sh), or services started for this run."""

    def __init__(self) -> None:
        self.started_dir: Path | None = None
        if all(os.environ.get(k) for k in NEEDED):
            self.env = {k: os.environ[k] for k in NEEDED}
            return
        directory = Path(tempfile.mkdtemp(prefix="pochette-services-"))
        directory.chmod(0o755)
        script = REPO / "scripts" / "services.sh"
        subprocess.run(
            ["bash", str(script), "start", str(directory)], check=True, stdout=subprocess.DEVNULL
        )
        self.started_dir = directory
        self.env = _parse_env_file(directory / "env")

    def stop(self) -> None:
        if self.started_dir is not None:
            script = REPO / "scripts" / "services.sh"
            subprocess.run(["bash", str(script), "stop", str(self.started_dir)], check=False)

    @property
    def database_url(self) -> str:
        return self.env["POCHETTE_DATABASE_URL"]

    @property
    def redis_url(self) -> str:
        return self.env["POCHETTE_REDIS_URL"]

    def s3_settings(self, bucket: str) -> dict[str, object]:
        return {
            "STORAGE_URL": f"s3://{bucket}",
            "S3_ENDPOINT": self.env["POCHETTE_S3_ENDPOINT"],
            "S3_REGION": self.env.get("AWS_DEFAULT_REGION", "us-east-1"),
            "S3_ACCESS_KEY_ID": self.env["AWS_ACCESS_KEY_ID"],
            "S3_SECRET_ACCESS_KEY": self.env["AWS_SECRET_ACCESS_KEY"],
            "S3_ADDRESSING_STYLE": "path",
        }
