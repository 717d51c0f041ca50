"""Run one command and print its wall time and peak RSS as JSON.

A separate, small launcher: Linux carries a parent's memory high-water mark into
a child across fork/vfork and exec, so a big benchmark process would inflate
every child's peak RSS. This script stays tiny.

    python benchmarks/measure.py CMD [ARGS...]
"""

import json
import os
import subprocess
import sys
import time

started = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
_, status, usage = os.wait4(child.pid, 0)
wall = time.perf_counter() - started
stderr = child.stderr.read().decode(errors="replace")[-2000:]
print(json.dumps({"wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024, "status": os.waitstatus_to_exitcode(status),
                  "stderr": stderr}))
