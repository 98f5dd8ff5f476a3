"""Starting and stopping the Spark session the Spark engine runs in.

In local mode (``local``, ``local[N]``) Spark binds to 127.0.0.1 only, runs
without its web UI, and keeps its scratch and checkpoint files in a private
temporary folder removed when the engine closes: a detection run makes no
request off the machine. Any other master (``spark://host:7077``, ``yarn``,
``k8s://https://host:443``) is handed to Spark as given; how the cluster
is reached is then Spark's configuration (``spark-defaults.conf``,
``spark-submit``), not ours.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ringscope.graph.files import atomic_write_text, private_dir

__all__ = ["SparkStartError", "check_master", "is_local", "quiet", "start_session", "LOOPBACK"]

LOOPBACK = "127.0.0.1"

_MASTER = re.compile(
    r"^(local(\[(\*|[1-9]\d*)(,[1-9]\d*)?\])?|local-cluster\[\d+,\d+,\d+\]|spark://[^/\s]+|yarn|k8s://\S+)$"
)


_LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
"""


class SparkStartError(RuntimeError):
    """Spark could not be started (bad master URL, no Java, cluster unreachable)."""


def check_master(master: str) -> str:
    """``master`` if it is a Spark master URL, else a :class:`ValueError` saying what is accepted.

    Example
    -------
    >>> check_master("local[2]"), check_master("spark://10.0.0.5:7077")
    ('local[2]', 'spark://10.0.0.5:7077')
    >>> check_master("http://x")
    Traceback (most recent call last):
    ...
    ValueError: 'http://x' is not a Spark master URL: give local, local[N], spark://HOST:PORT, yarn or k8s://URL.
    """
    master = str(master).strip()
    if not _MASTER.match(master):
        raise ValueError(
            f"{master!r} is not a Spark master URL: give local, local[N], spark://HOST:PORT, yarn or k8s://URL."
        )
    return master


def local_cores(master: str) -> int:
    """The cores a local master uses (its shuffles need no more partitions than that).

    Example
    -------
    >>> local_cores("local[3]"), local_cores("local")
    (3, 1)
    """
    found = re.match(r"^local\[(\*|\d+)", master)
    if not found:
        return 1 if master == "local" else max(1, os.cpu_count() or 1)
    return max(1, os.cpu_count() or 1) if found.group(1) == "*" else int(found.group(1))


def is_local(master: str) -> bool:
    """Whether ``master`` runs Spark inside this machine (``local``, ``local[N]``, ``local-cluster[...]``)."""
    return master.startswith("local")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence PySpark's warning about pandas 3: the engine never converts
    through pandas (data crosses as Arrow tables), so it does not apply."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*PySpark does not yet fully support pandas.*")
        warnings.filterwarnings("ignore", message=".*pandas.*", category=FutureWarning, module="pyspark")
        yield


def start_session(master: str, scratch: Path, app_name: str, conf: dict[str, str] | None = None) -> tuple[Any, bool]:
    """A Spark session on ``master`` with its files under ``scratch``; and
    whether this call started it (a session already running in this
    process, a notebook's or a test's, is used as it is and left running).

    Raises :class:`SparkStartError` with Spark's own first line when Spark
    does not start.
    """
    master = check_master(master)
    try:
        with quiet():
            from pyspark import SparkContext
            from pyspark.sql import SparkSession
    except ImportError as err:  # pragma: no cover - the `spark` extra is not installed
        raise SparkStartError("PySpark is not installed: pip install 'ringscope[spark]'.") from err
    existing = SparkContext._active_spark_context
    if existing is not None:
        return SparkSession.builder.getOrCreate(), False
    private_dir(scratch)
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.warehouse.dir", str(scratch / "warehouse"))
        .config("spark.sql.session.timeZone", "UTC")
    )
    local = is_local(master)
    if local:
        builder = (
            builder.config("spark.driver.host", LOOPBACK)
            .config("spark.driver.bindAddress", LOOPBACK)
            .config("spark.local.dir", str(scratch / "local"))
            .config("spark.sql.shuffle.partitions", str(local_cores(master)))
            # local mode runs every task in the driver's JVM, whose default 1 GB heap
            # cannot hold a large book's links; RINGSCOPE_SPARK_MEMORY overrides
            .config("spark.driver.memory", os.environ.get("RINGSCOPE_SPARK_MEMORY", "4g"))
        )
        for sub in ("local", "tmp"):
            private_dir(scratch / sub)
        # Python workers (the cash-flow pass runs Python on Arrow batches) start this
        # interpreter, whose packages they import, unless the user named another
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # Spark's own log: errors only (its start-up warnings are about Hadoop and hosts, not the job)
    atomic_write_text(scratch / "log4j2.properties", _LOG4J)
    builder = builder.config(
        "spark.driver.extraJavaOptions",
        f"-Dlog4j2.configurationFile={(scratch / 'log4j2.properties').as_uri()}"
        + (f" -Djava.io.tmpdir={scratch / 'tmp'}" if local else ""),
    )
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    saved = os.environ.get("SPARK_LOCAL_IP")
    if local:
        # the JVM picks its own address from the host name otherwise (an interface, not loopback)
        os.environ["SPARK_LOCAL_IP"] = LOOPBACK
    try:
        with quiet():
            session = builder.getOrCreate()
            session.sparkContext.setLogLevel("ERROR")
    except Exception as err:  # Py4J and Spark raise many kinds; all mean "no Spark"
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise SparkStartError(f"Spark did not start on master {master!r}: {first}") from err
    finally:
        if local:
            if saved is None:
                os.environ.pop("SPARK_LOCAL_IP", None)
            else:
                os.environ["SPARK_LOCAL_IP"] = saved
    return session, True


def scratch_dir() -> Path:
    """A new private folder for one engine's Spark files."""
    return Path(tempfile.mkdtemp(prefix="ringscope-spark-"))


def remove_scratch(path: Path) -> None:
    """Remove an engine's Spark files (best effort: Spark may still hold a file open)."""
    shutil.rmtree(path, ignore_errors=True)
