"""train's Arrow buffers come from malloc, which keeps freed memory for the
next allocation (mimalloc returned it to the system at once, and train spent
its kernel time re-mapping it)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import os, sys
os.environ.pop("ARROW_DEFAULT_MEMORY_POOL", None)
import pyarrow as pa
from ringscope.detectors.risk.training import reuse_freed_memory
before = pa.default_memory_pool().backend_name
switched = reuse_freed_memory()
print(before != "system", switched, pa.default_memory_pool().backend_name)
os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "jemalloc"
print(reuse_freed_memory())
"""


def test_train_takes_arrow_memory_from_malloc_unless_the_environment_chooses():
    # a child process: the pool is process-wide and other tests measure Arrow's own pool
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "True", "system", "False"]


HEAP = """
import os, resource, sys
import numpy as np
for name in ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_"):
    os.environ.pop(name, None)
from ringscope.detectors.risk.training import keep_malloc_heap

def faults_of_big_blocks():
    np.ones(8_000_000).sum()  # 64 MB: above glibc's largest mmap threshold
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        np.ones(8_000_000).sum()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

plain = faults_of_big_blocks()
kept = keep_malloc_heap()
print(kept, plain, faults_of_big_blocks())
os.environ["MALLOC_MMAP_MAX_"] = "65536"
print(keep_malloc_heap())
"""


def test_train_keeps_freed_malloc_blocks_unless_the_environment_chooses():
    # a child process: malloc's settings are process-wide
    out = subprocess.run([sys.executable, "-c", HEAP], capture_output=True, text=True, check=True).stdout.split()
    kept, plain, after, again = out[0], int(out[1]), int(out[2]), out[3]
    assert kept == "True" and again == "False"
    # ten 64 MB blocks: each one faulted in afresh before (15,625 pages each, or 32 huge
    # pages where numpy's madvise gets them), reused after
    assert plain >= 300
    assert after * 10 < plain


LIBRARY = """
import os, sys
for name in ("ARROW_DEFAULT_MEMORY_POOL", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_"):
    os.environ.pop(name, None)
import pyarrow as pa
from ringscope.detectors.risk import training
calls = []
arrow, heap = training.reuse_freed_memory, training.keep_malloc_heap
training.reuse_freed_memory = lambda: calls.append("arrow") or arrow()
training.keep_malloc_heap = lambda: calls.append("malloc") or heap()
before = pa.default_memory_pool().backend_name
store = sys.argv[1]
from ringscope.graph.embedded import EmbeddedStore
s = EmbeddedStore(store)
try:
    training.train(s, promote="always")
except ValueError:
    pass
finally:
    s.close()
print("library", ",".join(calls) or "-", pa.default_memory_pool().backend_name == before)
from click.testing import CliRunner
from ringscope.app.cli import cli
result = CliRunner().invoke(cli, ["train", "--store", store, "--quiet", "--promote", "always"])
print("command", ",".join(calls) or "-", pa.default_memory_pool().backend_name)
"""


def test_only_the_train_command_changes_the_process_allocators(tmp_path):
    # a notebook or the dashboard calling train() keeps its allocators; the one-job command opts in
    from ringscope.graph.embedded import EmbeddedStore

    EmbeddedStore(tmp_path / "store").close()  # an empty store: train refuses, after the command's choice
    out = subprocess.run(
        [sys.executable, "-c", LIBRARY, str(tmp_path / "store")], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[:3] == ["library", "-", "True"]
    assert out[3:] == ["command", "arrow,malloc", "system"]
