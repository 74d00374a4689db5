"""A throwaway PostgreSQL server for the tests of server mode: Debian's binaries, a data folder of its own, reached
through a Unix socket in that folder. PostgreSQL refuses to run as root, so as root it runs as the `postgres`
account."""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def binaries() -> Path | None:
    """The folder of PostgreSQL's server programs (the newest of Debian's), or None when it is not installed."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    folder: Path
    port: int
    bin: Path

    def url(self, database: str = "milestone") -> str:
        return f"postgresql://postgres@localhost:{self.port}/{database}?host={self.folder}"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(_as_owner([*args]), check=True, capture_output=True, text=True)

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(
            _as_owner([str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


def _as_owner(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def start(durable: bool = False) -> Server:
    """Initialise and start a server in a new temporary folder (fsync off: the tests' data is throwaway; `durable`:
    on, so that a server killed at once keeps every commit it acknowledged)."""
    bin_dir = binaries()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL's server programs (pg_ctl, initdb) are not installed")
    folder = Path(tempfile.mkdtemp(prefix="milestone-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    server = Server(folder, _free_port(), bin_dir)
    server.run(str(bin_dir / "initdb"), "-D", str(folder / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    throwaway = "" if durable else "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
    options = f"-p {server.port} -k {folder} -c listen_addresses='' {throwaway}-c max_connections=200"
    server.run(
        str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-o", options, "-l", str(folder / "log"), "-w", "start"
    )
    return server
