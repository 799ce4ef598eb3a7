"""A local S3 endpoint (moto's server mode) so the Kafka-protocol broker can keep its data
outside its own process: with Tansu's ``s3://`` storage, topics and committed consumer offsets
survive a kill -9 of the broker, which the fault tests rely on. moto keeps everything in its own
memory, so the data lives exactly as long as this server process."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from hazmon.errors import StackError
from hazmon.stack._net import free_port, port_is_free, tcp_connectable
from hazmon.stack._process import ManagedProcess

__all__ = ["S3Server"]

_REGION = "us-east-1"


class S3Server(ManagedProcess):
    """``python -m moto.server`` on 127.0.0.1 (needs the ``moto[server]`` extra)."""

    name = "s3"
    start_timeout_s = 30.0
    grace_s = 5.0

    def __init__(self, run_dir: Path, port: int | None = None) -> None:
        super().__init__(run_dir)
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.access_key_id = "hazmon"
        self.secret_access_key = "hazmon-secret"
        self.region = _REGION

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> Sequence[str]:
        return [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)]

    def env(self) -> Mapping[str, str]:
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def prepare(self) -> None:
        try:
            import moto.server  # noqa: F401
        except ImportError:
            raise StackError(
                "s3: moto's server mode is not installed; run `.venv/bin/pip install 'moto[server]'` "
                f"(log: {self.log_path})"
            ) from None
        if not port_is_free(self.port, self.host):
            raise StackError(f"s3: port {self.host}:{self.port} is already in use (log: {self.log_path})")

    def client(self, *, probe: bool = False):  # type: ignore[no-untyped-def]
        """A boto3 S3 client for this endpoint (``probe``: one attempt, short timeouts)."""
        import boto3
        from botocore.config import Config

        config = Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5) if probe else None
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
            config=config,
        )

    def ready(self) -> bool:
        if not tcp_connectable(self.host, self.port):
            return False
        self.client(probe=True).list_buckets()
        return True

    def create_bucket(self, bucket: str) -> None:
        """Create ``bucket`` (no error when it already exists)."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.client()
        try:
            client.create_bucket(Bucket=bucket)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        except (ClientError, BotoCoreError) as exc:
            raise StackError(f"s3: cannot create bucket {bucket!r} at {self.endpoint}: {exc} (log: {self.log_path})") from None

    def aws_env(self) -> dict[str, str]:
        """Environment for a client of this endpoint (object_store / Tansu naming)."""
        return {
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }
