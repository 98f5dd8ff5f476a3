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
