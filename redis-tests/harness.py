"""What the redis-tests scripts that start their own servers share: the
check counters and their output, free ports, polling, the started
processes, and the main that runs a script in a work directory and exits
with its status.

    import harness
    from harness import check, free_port, wait_for

Scripts add the processes they start to `harness.PROCS`.
"""
import shutil
import socket
import sys
import tempfile
import time

import redis

PASSED = 0
FAILED = 0
PROCS = []


def check(name, ok, detail=""):
    """One line per check: `ok    name` or `FAIL  name: detail`."""
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print(f"ok    {name}")
    else:
        FAILED += 1
        print(f"FAIL  {name}: {detail}")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_for(pred, timeout=10.0, interval=0.05):
    """Polls `pred` until it is true (True) or `timeout` seconds passed
    (False); a server not answering yet counts as false."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            if pred():
                return True
        except (redis.exceptions.RedisError, OSError):
            pass
        time.sleep(interval)
    return False


def main(prefix, run, keep_on_failure=False):
    """Runs `run(work)` in a new temporary directory, then kills what is
    left of `PROCS`, removes the directory (kept after a failure when
    `keep_on_failure`), prints the totals and exits 1 on any failure."""
    work = tempfile.mkdtemp(prefix=prefix)
    try:
        run(work)
    finally:
        for p in PROCS:
            if p.poll() is None:
                p.kill()
                p.wait()
        if keep_on_failure and FAILED:
            print(f"(work directory kept: {work})")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{PASSED} passed, {FAILED} failed")
    sys.exit(1 if FAILED else 0)
