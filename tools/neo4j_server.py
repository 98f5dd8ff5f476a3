"""Build, start and stop the local Neo4j Community 5.26 server for ringscope.

    python tools/neo4j_server.py build
    python tools/neo4j_server.py start [--port 7687] [--data .neo4j-data] [--heap 1g] [--pagecache 512m]
    python tools/neo4j_server.py status|stop [--data .neo4j-data]

The server is the Maven project in ``tools/neo4j`` (Neo4j embedded, Bolt on
127.0.0.1, auth off). Tests import :func:`start_server` to run their own.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ServerHandle", "build", "start_server", "stop_server", "free_port"]

ROOT = Path(__file__).resolve().parent / "neo4j"
TARGET = ROOT / "target"
MAIN_CLASS = "ringscope.neo4j.Launcher"
# Neo4j 5 on JDK 17 needs these, or start-up dies linking DirectByteBuffer.
JVM_FLAGS = [
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-XX:+UseG1GC",
]
READY = "RINGSCOPE_NEO4J_READY"


@dataclass
class ServerHandle:
    """A running server started by this module."""

    uri: str
    port: int
    data_dir: Path
    process: subprocess.Popen | None

    def stop(self, timeout: float = 60) -> None:
        stop_server(self.data_dir, timeout=timeout, process=self.process)


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    return str(Path(home) / "bin" / "java") if home else "java"


def _built() -> bool:
    classes = TARGET / "classes" / "ringscope" / "neo4j" / "Launcher.class"
    if not classes.exists() or not (TARGET / "lib").is_dir():
        return False
    newest_source = max(p.stat().st_mtime for p in [ROOT / "pom.xml", *ROOT.glob("src/**/*.java")])
    return classes.stat().st_mtime >= newest_source


def build(force: bool = False) -> None:
    """Compile the launcher and copy Neo4j's jars (skipped when up to date)."""
    if _built() and not force:
        return
    cmd = ["mvn", "-B", "-q", "-f", str(ROOT / "pom.xml"), "package", "-DskipTests"]
    print("building Neo4j launcher:", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_busy(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _log_tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start_server(
    port: int = 7687,
    data_dir: str | os.PathLike = ".neo4j-data",
    heap: str = "1g",
    pagecache: str = "512m",
    timeout: float = 180,
) -> ServerHandle:
    """Start Neo4j in the background and wait until Bolt answers.

    ``port=0`` picks a free port. Raises ``RuntimeError`` with the server log
    tail when it does not come up within ``timeout`` seconds.
    """
    build()
    data = Path(data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    if port == 0:
        port = free_port()
    elif _port_busy(port):
        raise RuntimeError(f"port {port} on 127.0.0.1 is already in use (is a Neo4j running? try 'stop')")
    log = data / "launcher.log"
    cmd = [
        _java(),
        f"-Xms{heap}",
        f"-Xmx{heap}",
        *JVM_FLAGS,
        "-cp",
        f"{TARGET / 'classes'}{os.pathsep}{TARGET / 'lib'}/*",
        MAIN_CLASS,
        "--port",
        str(port),
        "--data",
        str(data),
        "--pagecache",
        pagecache,
    ]
    with open(log, "w", encoding="utf-8") as out:
        process = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, cwd=data
        )
    uri = f"bolt://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Neo4j exited with code {process.returncode} during start-up:\n{_log_tail(log)}")
        if READY in log.read_text(encoding="utf-8", errors="replace"):
            _wait_bolt(uri, deadline)
            return ServerHandle(uri=uri, port=port, data_dir=data, process=process)
        time.sleep(0.3)
    process.terminate()
    raise RuntimeError(f"Neo4j did not become ready within {timeout:.0f} s:\n{_log_tail(log)}")


def _wait_bolt(uri: str, deadline: float) -> None:
    from neo4j import GraphDatabase

    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with GraphDatabase.driver(uri, auth=None) as driver:
                driver.verify_connectivity()
            return
        except Exception as err:  # ServiceUnavailable until Bolt listens
            last = err
            time.sleep(0.3)
    raise RuntimeError(f"Bolt at {uri} did not answer: {last}")


def stop_server(data_dir: str | os.PathLike = ".neo4j-data", timeout: float = 60, process=None) -> bool:
    """Stop the server whose pid file is in ``data_dir``; True if one was stopped."""
    data = Path(data_dir).resolve()
    pid_file = data / "neo4j.pid"
    pid = process.pid if process is not None else None
    if pid is None and pid_file.exists():
        pid = int(pid_file.read_text().split()[0])
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None:
            if process.poll() is not None:
                break
        else:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
        time.sleep(0.2)
    else:
        os.kill(pid, signal.SIGKILL)
        if process is not None:
            process.wait()
    pid_file.unlink(missing_ok=True)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="ringscope's local Neo4j Community 5.26")
    parser.add_argument("command", choices=["build", "start", "stop", "status"])
    parser.add_argument("--port", type=int, default=int(os.environ.get("RINGSCOPE_NEO4J_PORT", 7687)))
    parser.add_argument("--data", default=".neo4j-data")
    parser.add_argument("--heap", default="1g")
    parser.add_argument("--pagecache", default="512m")
    args = parser.parse_args(argv)
    if args.command == "build":
        build()
        print(f"launcher built in {TARGET}")
    elif args.command == "start":
        handle = start_server(args.port, args.data, args.heap, args.pagecache)
        print(f"Neo4j Community 5.26 ready at {handle.uri} (data {handle.data_dir}, pid {handle.process.pid})")
        print(f"  ringscope ingest DIR --neo4j {handle.uri}")
        print(f"  stop with: python tools/neo4j_server.py stop --data {args.data}")
    elif args.command == "stop":
        print("stopped" if stop_server(args.data) else "no server running")
    else:
        pid_file = Path(args.data) / "neo4j.pid"
        up = _port_busy(args.port)
        print(f"bolt://127.0.0.1:{args.port} {'answers' if up else 'is closed'}; pid file {'present' if pid_file.exists() else 'absent'}")
        return 0 if up else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
