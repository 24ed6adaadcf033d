#!/usr/bin/env python3
"""redis-py's script users against a server: Lock (acquire, extend,
reacquire, release are Lua scripts run with EVALSHA) and register_script.
Usage: redispy_scripts.py PORT. Prints one line per check; exits 1 on a
failure."""

import sys

import redis

r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))
r.script_flush()
failed = 0


def check(name, ok):
    global failed
    print(("ok    " if ok else "FAIL  ") + name)
    if not ok:
        failed += 1


lock = r.lock("redispy:lock", timeout=10)
check("Lock.acquire", lock.acquire(blocking=False))
other = r.lock("redispy:lock", timeout=10)
check("a second Lock cannot acquire", not other.acquire(blocking=False))
check("Lock.extend", lock.extend(20) and 10 < r.ttl("redispy:lock") <= 30)
check("Lock.reacquire", lock.reacquire() and r.ttl("redispy:lock") <= 10)
lock.release()
check("Lock.release", r.get("redispy:lock") is None)
# A lock whose key another owner holds now: the release script refuses.
stale = r.lock("redispy:lock", timeout=10)
stale.acquire(blocking=False)
r.set("redispy:lock", "someone-else")
try:
    stale.release()
    check("releasing a lock owned by another raises LockNotOwnedError", False)
except redis.exceptions.LockNotOwnedError:
    check("releasing a lock owned by another raises LockNotOwnedError", True)
r.delete("redispy:lock")

incr_by = r.register_script(
    "local v = redis.call('incrby', KEYS[1], ARGV[1]) "
    "redis.call('expire', KEYS[1], 100) return v"
)
check("register_script (EVALSHA after NOSCRIPT)", incr_by(keys=["redispy:n"], args=[5]) == 5)
check("register_script again", incr_by(keys=["redispy:n"], args=[2]) == 7)
pipe = r.pipeline()
incr_by(keys=["redispy:n"], args=[1], client=pipe)
incr_by(keys=["redispy:n"], args=[1], client=pipe)
check("register_script in a pipeline", pipe.execute() == [8, 9])
r.delete("redispy:n")
sys.exit(1 if failed else 0)
