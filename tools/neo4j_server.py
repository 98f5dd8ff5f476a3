"""Build, start and stop the local Neo4j Community 5.26 server for ringscope.

    python tools/neo4j_server.py build
    python tools/neo4j_server.py start [--port 7687] [--data .neo4j-data] [--heap 1g] [--pagecache 512m] [--no-plugins]
    python tools/neo4j_server.py status|stop [--data .neo4j-data]
    python tools/neo4j_server.py import --data .neo4j-data -- --nodes=Phone=h.csv,d.csv ...   (server stopped)

The server is the Maven project in ``tools/neo4j`` (Neo4j embedded, Bolt on
127.0.0.1, auth on, APOC core + OpenGDS from ``target/plugins``). On its
first start the launcher gives user ``neo4j`` a random password and keeps
it in ``DATA/neo4j-password`` (mode 600); clients read it through
``RINGSCOPE_NEO4J_PASSWORD_FILE``. Tests import :func:`start_server` to run
their own::

    handle = start_server(port=0, data_dir=tmp, heap="1g", pagecache="256m")
    ...  # GraphDatabase.driver(handle.uri, auth=handle.auth())
    handle.stop()

Uses only the standard library, plus the ``neo4j`` driver to check Bolt.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ServerHandle",
    "build",
    "start_server",
    "start_again",
    "stop_server",
    "server_running",
    "import_database",
    "ImportRun",
    "free_port",
    "plugins_dir",
    "read_password",
    "PASSWORD_FILE",
    "USER",
]

ROOT = Path(__file__).resolve().parent / "neo4j"
TARGET = ROOT / "target"
MAIN_CLASS = "ringscope.neo4j.Launcher"
#: ``neo4j-admin`` (its jars, neo4j-command-line and neo4j-import-tool, are in target/lib)
ADMIN_CLASS = "org.neo4j.cli.AdminTool"
#: the arguments of the last ``start_server`` on a data folder, for :func:`start_again`
ARGS_FILE = "launcher-args.json"
# Neo4j 5 on JDK 17 needs these, or start-up dies linking DirectByteBuffer.
JVM_FLAGS = [
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-XX:+UseG1GC",
]
#: the offline importer's JVM: a run of seconds to a minute, so C1 only (C2's compiling
#: cost more CPU than it saved: 2 cores, 100k applications, 25 -> 19 CPU s) and the
#: throughput collector (no concurrent GC threads competing for the two cores)
IMPORT_JVM_FLAGS = [*[f for f in JVM_FLAGS if f != "-XX:+UseG1GC"], "-XX:+UseParallelGC", "-XX:TieredStopAtLevel=1"]
READY = "RINGSCOPE_NEO4J_READY"
#: the launcher's user and the file (in the data folder) holding its generated password
USER = "neo4j"
PASSWORD_FILE = "neo4j-password"


@dataclass
class ServerHandle:
    """A running server started by this module. ``password_file`` is None
    when it runs with auth off; the password itself is read only on demand
    (:meth:`auth`), so it never sits in a repr or a log line."""

    uri: str
    port: int
    data_dir: Path
    process: subprocess.Popen | None
    password_file: Path | None = None

    def stop(self, timeout: float = 60) -> None:
        stop_server(self.data_dir, timeout=timeout, process=self.process)

    def auth(self) -> tuple[str, str] | None:
        """``(user, password)`` for the driver, or None with auth off."""
        return None if self.password_file is None else (USER, read_password(self.password_file))

    def client_env(self) -> dict[str, str]:
        """Environment variables that let ringscope's clients (``Neo4jStore``,
        the CLI, the dashboard, subprocesses) log in: user and password file."""
        if self.password_file is None:
            return {}
        return {"RINGSCOPE_NEO4J_USER": USER, "RINGSCOPE_NEO4J_PASSWORD_FILE": str(self.password_file)}


def read_password(path: str | os.PathLike) -> str:
    """The password kept in ``path`` (first line). Errors name the file, never its content."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise RuntimeError(f"cannot read the Neo4j password file {path}: {err.strerror}") from None
    return text.splitlines()[0].strip() if text.strip() else ""


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    return str(Path(home) / "bin" / "java") if home else "java"


def _built() -> bool:
    classes = TARGET / "classes" / "ringscope" / "neo4j" / "Launcher.class"
    lib = TARGET / "lib"
    if not classes.exists() or not lib.is_dir() or not any(lib.glob("neo4j-kernel-*.jar")):
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
    # make the freshly built class the newest file, so _built() holds even if
    # Maven skipped recompiling an unchanged source
    (TARGET / "classes" / "ringscope" / "neo4j" / "Launcher.class").touch()


def plugins_dir() -> Path | None:
    """``target/plugins`` when the build put APOC/OpenGDS jars there."""
    d = TARGET / "plugins"
    return d if d.is_dir() and any(d.glob("*.jar")) else None


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` runs. A zombie is not running: a server started
    by a process that is still alive but is not the one stopping it (a
    bench or test starts it, a child ``ingest --bulk`` stops it) stays a
    zombie until that parent reaps it, and signal 0 still reaches it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """True when /proc shows ``pid`` exited and waits to be reaped (state Z)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False  # no /proc: trust the signal
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def _read_pid(data: Path) -> int | None:
    try:
        return int((data / "neo4j.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _ready_uri(data: Path) -> str | None:
    """The URI from the READY line of ``DATA/launcher.log``, if printed."""
    try:
        for line in (data / "launcher.log").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(READY):
                return line.split()[1]
    except (OSError, IndexError):
        pass
    return None


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
    plugins: bool = True,
    auth: bool = True,
    tx_memory: str = "0",
    allow_origins: tuple[str, ...] = (),
) -> ServerHandle:
    """Start Neo4j in the background (own session, survives this process) and
    wait until Bolt answers ``verify_connectivity``.

    ``port=0`` picks a free port; a busy explicit port is an error. ``heap``
    sets -Xms/-Xmx, ``pagecache`` Neo4j's page cache. ``plugins=False`` starts
    without APOC/OpenGDS (faster start-up). ``auth=False`` starts with auth
    off (tests of that mode only). ``tx_memory`` caps the heap one
    transaction may use (``"0"``: no cap). ``allow_origins`` are browser
    origins allowed to open a WebSocket to Bolt (none by default). The data
    folder is made private (700). Raises ``RuntimeError`` with the log tail
    when the server does not come up within ``timeout`` seconds.
    """
    build()
    data = Path(data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)  # store files, logs and the password file are for this user only
    if server_running(data):
        raise RuntimeError(f"a Neo4j (pid {_read_pid(data)}) already runs on {data}; stop it first")
    plugin_dir = plugins_dir() if plugins else None
    if port == 0:
        port = free_port()
    elif _port_busy(port):
        raise RuntimeError(f"port {port} on 127.0.0.1 is already in use (is a Neo4j running? try 'stop')")
    # what start_again needs to bring the same server back (same port, so the URI holds)
    saved = {
        "port": port,
        "heap": heap,
        "pagecache": pagecache,
        "plugins": plugins,
        "auth": auth,
        "tx_memory": tx_memory,
        "allow_origins": list(allow_origins),
    }
    _write_private(data / ARGS_FILE, json.dumps(saved, indent=1) + "\n")
    log = data / "launcher.log"
    cmd = [
        _java(),
        f"-Xms{heap}",
        f"-Xmx{heap}",
        *JVM_FLAGS,
        "-cp",
        os.pathsep.join(
            [str(TARGET / "classes"), f"{TARGET / 'lib'}/*"]
            # plugins must be on the classpath too: OpenGDS's extension is found there
            + ([f"{plugin_dir}/*", f"{TARGET / 'plugin-lib'}/*"] if plugin_dir else [])
        ),
        MAIN_CLASS,
        "--port",
        str(port),
        "--data",
        str(data),
        "--pagecache",
        pagecache,
        "--plugins",
        str(plugin_dir or data / "plugins"),
        "--tx-memory",
        tx_memory,
        *[arg for origin in allow_origins for arg in ("--allow-origin", origin)],
        *([] if auth else ["--no-auth"]),
    ]
    with open(log, "w", encoding="utf-8") as out:
        process = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, cwd=data
        )
    uri = f"bolt://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            debug = data / "logs" / "debug.log"
            raise RuntimeError(
                f"Neo4j exited with code {process.returncode} during start-up (log {log}):\n{_log_tail(log)}\n"
                f"--- {debug} ---\n{_log_tail(debug, 20)}"
            )
        if READY in log.read_text(encoding="utf-8", errors="replace"):
            handle = ServerHandle(
                uri=uri, port=port, data_dir=data, process=process, password_file=data / PASSWORD_FILE if auth else None
            )
            try:
                _wait_bolt(uri, handle.auth(), deadline)
            except RuntimeError:
                _kill(process)
                raise
            return handle
        time.sleep(0.3)
    _kill(process)
    debug = data / "logs" / "debug.log"
    raise RuntimeError(
        f"Neo4j did not become ready within {timeout:.0f} s (log {log}):\n{_log_tail(log)}\n"
        f"--- {debug} ---\n{_log_tail(debug, 20)}"
    )


def server_running(data_dir: str | os.PathLike) -> bool:
    """True when the pid file in ``data_dir`` names a live launcher."""
    data = Path(data_dir).resolve()
    pid = _read_pid(data)
    return pid is not None and _pid_alive(pid) and _is_launcher(pid)


def start_again(data_dir: str | os.PathLike, timeout: float = 180) -> ServerHandle:
    """Start the server of ``data_dir`` with the arguments of its last
    :func:`start_server` (same port, heap, page cache, plugins, auth), e.g.
    after an offline import. Raises ``RuntimeError`` if it was never started
    by this module (no ``DATA/launcher-args.json``)."""
    data = Path(data_dir).resolve()
    try:
        saved = json.loads((data / ARGS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise RuntimeError(
            f"no saved start arguments in {data / ARGS_FILE} ({err}); start the server by hand"
        ) from None
    saved["allow_origins"] = tuple(saved.get("allow_origins", ()))
    return start_server(data_dir=data, timeout=timeout, **saved)


@dataclass
class ImportRun:
    """One ``neo4j-admin database import full`` run: wall seconds and its output."""

    seconds: float
    output: str


def import_database(
    data_dir: str | os.PathLike,
    arguments: list[str],
    heap: str = "2g",
    off_heap: str = "2g",
    database: str = "neo4j",
) -> ImportRun:
    """Run Neo4j's offline importer (``neo4j-admin database import full``)
    on the store files of ``data_dir`` with the launcher's own jars.

    ``arguments`` are the importer's options (``--nodes=…``,
    ``--relationships=…``, …); ``--overwrite-destination``,
    ``--max-off-heap-memory`` (``off_heap``) and ``--report-file``
    (``DATA/logs/import.report``) are added; the JVM gets ``heap`` and
    :data:`IMPORT_JVM_FLAGS`. The server of ``data_dir`` must
    be stopped; the database is replaced. Raises ``RuntimeError`` with the
    output's tail when the importer fails.
    """
    build()
    data = Path(data_dir).resolve()
    if server_running(data):
        raise RuntimeError(f"a Neo4j (pid {_read_pid(data)}) runs on {data}: stop it before an offline import")
    (data / "logs").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ringscope-import-conf-") as conf:
        # an empty neo4j.conf: the importer's defaults put the store under DATA/data, as the launcher does
        Path(conf, "neo4j.conf").write_text("", encoding="utf-8")
        cmd = [
            _java(),
            f"-Xms{heap}",
            f"-Xmx{heap}",
            *IMPORT_JVM_FLAGS,
            "-cp",
            f"{TARGET / 'lib'}/*",
            ADMIN_CLASS,
            "database",
            "import",
            "full",
            *arguments,
            "--overwrite-destination=true",
            f"--max-off-heap-memory={off_heap}",
            f"--report-file={data / 'logs' / 'import.report'}",
            database,
        ]
        env = {**os.environ, "NEO4J_HOME": str(data), "NEO4J_CONF": conf}
        started = time.monotonic()
        done = subprocess.run(cmd, env=env, cwd=data, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        seconds = time.monotonic() - started
    output = done.stdout + done.stderr
    _write_private(data / "logs" / "import.log", output)
    if done.returncode != 0:
        tail = "\n".join(output.splitlines()[-25:])
        raise RuntimeError(
            f"the offline import failed (exit {done.returncode}; log {data / 'logs' / 'import.log'}):\n{tail}"
        )
    return ImportRun(seconds=seconds, output=output)


def _write_private(path: Path, text: str) -> None:
    """``text`` to ``path`` with mode 600 (the data folder's files are this user's only)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


def _kill(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_bolt(uri: str, auth: tuple[str, str] | None, deadline: float) -> None:
    from neo4j import GraphDatabase
    from neo4j.exceptions import AuthError

    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with GraphDatabase.driver(uri, auth=auth) as driver:
                driver.verify_connectivity()
            return
        except AuthError as err:  # the message names the user, never the password
            raise RuntimeError(f"Bolt at {uri} refused the launcher's credentials: {err.message}") from None
        except Exception as err:  # ServiceUnavailable until Bolt listens
            last = err
            time.sleep(0.3)
    raise RuntimeError(f"Bolt at {uri} did not answer: {last}")


def _is_launcher(pid: int) -> bool:
    """True unless /proc shows that ``pid`` is some other program (stale pid file)."""
    try:
        return MAIN_CLASS.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        return _pid_alive(pid)  # no /proc: trust the pid file


def _gone(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child: reap it
            return True
    except ChildProcessError:
        pass
    return not _pid_alive(pid)


def stop_server(data_dir: str | os.PathLike = ".neo4j-data", timeout: float = 60, process=None) -> bool:
    """SIGTERM the server whose pid file is in ``data_dir`` (or ``process``) and
    wait for its clean shutdown (SIGKILL after ``timeout`` s). True if one was stopped."""
    data = Path(data_dir).resolve()
    pid_file = data / "neo4j.pid"
    if process is not None:
        if process.poll() is not None:
            pid_file.unlink(missing_ok=True)
            return False
        pid = process.pid
    else:
        pid = _read_pid(data)
        if pid is None:
            return False
        if not _is_launcher(pid):
            pid_file.unlink(missing_ok=True)  # stale: that pid is not our server
            return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (process.poll() is not None) if process is not None else _gone(pid):
            break
        time.sleep(0.2)
    else:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if process is not None:
            process.wait()
    pid_file.unlink(missing_ok=True)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="ringscope's local Neo4j Community 5.26")
    parser.add_argument("command", choices=["build", "start", "stop", "status", "import"])
    parser.add_argument("--port", type=int, default=int(os.environ.get("RINGSCOPE_NEO4J_PORT", 7687)))
    parser.add_argument("--data", default=".neo4j-data")
    parser.add_argument("--heap", default="1g")
    parser.add_argument("--pagecache", default="512m")
    parser.add_argument("--no-plugins", action="store_true", help="start without APOC/OpenGDS")
    parser.add_argument("--no-auth", action="store_true", help="start with auth off (local experiments only)")
    parser.add_argument("--tx-memory", default="0", help="largest heap one transaction may use, e.g. 512m (0: no cap)")
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument("--import-heap", default="2g", help="heap of the offline importer")
    parser.add_argument("--import-off-heap", default="2g", help="the importer's --max-off-heap-memory")
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "import":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "import":
        # everything after the known options goes to `neo4j-admin database import full`
        try:
            run = import_database(args.data, [a for a in rest if a != "--"], args.import_heap, args.import_off_heap)
        except RuntimeError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(run.output.rstrip())
        print(
            f"import done in {run.seconds:.1f} s; start the server with: python tools/neo4j_server.py start --data {args.data}"
        )
        return 0
    if args.command == "build":
        build()
        print(f"launcher built in {TARGET}")
    elif args.command == "start":
        try:
            handle = start_server(
                args.port,
                args.data,
                args.heap,
                args.pagecache,
                timeout=args.timeout,
                plugins=not args.no_plugins,
                auth=not args.no_auth,
                tx_memory=args.tx_memory,
            )
        except RuntimeError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(handle.uri)
        print(
            f"Neo4j Community 5.26 ready at {handle.uri} (data {handle.data_dir}, pid {handle.process.pid}); "
            f"stop with: python tools/neo4j_server.py stop --data {args.data}",
            file=sys.stderr,
        )
        if handle.password_file is not None:
            print(
                f"auth on: user {USER}, password in {handle.password_file} (mode 600). For ringscope:\n"
                f"  export RINGSCOPE_NEO4J_PASSWORD_FILE={handle.password_file}",
                file=sys.stderr,
            )
        else:
            print("auth OFF: any local process can use this server", file=sys.stderr)
    elif args.command == "stop":
        print("stopped" if stop_server(args.data) else "no server running")
    else:
        data = Path(args.data).resolve()
        pid = _read_pid(data)
        running = pid is not None and _pid_alive(pid) and _is_launcher(pid)
        uri = _ready_uri(data) if running else None
        if uri is None and running:
            print(f"starting (pid {pid}, data {data})")
            return 1
        if not running:
            print(f"not running (data {data})")
            return 3
        port = int(uri.rsplit(":", 1)[1])
        up = _port_busy(port)
        print(f"running: {uri} (pid {pid}, data {data}); Bolt {'answers' if up else 'does not answer'}")
        return 0 if up else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
