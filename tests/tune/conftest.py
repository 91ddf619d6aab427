"""A throw-away PostgreSQL server on loopback for the multi-machine search test (`make test` installs
Debian's postgresql package; the server here is our own cluster in a temporary folder, not the system's)."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile

import pytest


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="session")
def postgres_url():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL is not installed: `make test` installs it (apt-get install postgresql)")
    bin_dir = os.path.dirname(found[-1])
    data = tempfile.mkdtemp(prefix="trainwell-pg-")
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = lambda cmd: subprocess.run(_as_postgres(cmd), check=True, capture_output=True, timeout=120)  # noqa: E731
    try:
        run([f"{bin_dir}/initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"])
        run([f"{bin_dir}/pg_ctl", "-D", data, "-l", f"{data}/log", "-w", "-o",
             f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off", "start"])
        run([f"{bin_dir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "trainwell"])
        yield f"postgresql://postgres@127.0.0.1:{port}/trainwell"
    finally:
        subprocess.run(_as_postgres([f"{bin_dir}/pg_ctl", "-D", data, "-m", "immediate", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(data, ignore_errors=True)
