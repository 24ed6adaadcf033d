#!/usr/bin/env python3
"""redis-py's function API against a server: function_load (with and
without replace), fcall / fcall_ro, function_list, function_dump /
function_restore, function_delete, function_flush, function_stats.
Usage: redispy_functions.py PORT. Prints one line per check; exits 1 on a
failure."""

import sys

import redis

r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]), decode_responses=True)
r.function_flush()
r.delete("redispy:n")
failed = 0


def check(name, ok):
    global failed
    print(("ok    " if ok else "FAIL  ") + name)
    if not ok:
        failed += 1


LIB = """#!lua name=redispy
redis.register_function('hit', function(keys, args)
    local n = redis.call('incr', keys[1])
    redis.call('expire', keys[1], args[1])
    return {n, redis.call('ttl', keys[1])}
end)
redis.register_function{function_name='peek', callback=function(keys)
    return redis.call('get', keys[1])
end, flags={'no-writes'}, description='reads a counter'}
"""

check("function_load", r.function_load(LIB) == "redispy")
try:
    r.function_load(LIB)
    check("loading twice is refused", False)
except redis.exceptions.ResponseError as e:
    check("loading twice is refused", "Library 'redispy' already exists" in str(e))
check("function_load replace", r.function_load(LIB, replace=True) == "redispy")
check("fcall", r.fcall("hit", 1, "redispy:n", 100) == [1, 100])
check("fcall again", r.fcall("hit", 1, "redispy:n", 50) == [2, 50])
check("fcall_ro of a no-writes function", r.fcall_ro("peek", 1, "redispy:n") == "2")
try:
    r.fcall_ro("hit", 1, "redispy:n", 10)
    check("fcall_ro of a writing function is refused", False)
except redis.exceptions.ResponseError as e:
    check("fcall_ro of a writing function is refused", "write flag" in str(e))


def as_dict(v):
    """A RESP2 map (a flat list) or a RESP3 one (a dict) as a dict."""
    if isinstance(v, dict):
        return v
    return {v[i]: v[i + 1] for i in range(0, len(v), 2)}


libs = [as_dict(lib) for lib in r.function_list(library="redis*", withcode=True)]
check(
    "function_list",
    len(libs) == 1
    and libs[0]["library_name"] == "redispy"
    and libs[0]["library_code"] == LIB
    and sorted(as_dict(f)["name"] for f in libs[0]["functions"]) == ["hit", "peek"],
)
stats = as_dict(r.function_stats())
engines = as_dict(stats["engines"])
check("function_stats", stats["running_script"] is None and as_dict(engines["LUA"])["functions_count"] == 2)
raw = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))
payload = raw.function_dump()
check("function_delete", r.function_delete("redispy") is True and r.function_list() == [])
check("function_restore", raw.function_restore(payload) is True)
check("fcall after restore", r.fcall("hit", 1, "redispy:n", 100) == [3, 100])
pipe = r.pipeline()
pipe.fcall("hit", 1, "redispy:n", 100)
pipe.fcall_ro("peek", 1, "redispy:n")
check("fcall in a transaction pipeline", pipe.execute() == [[4, 100], "4"])
check("function_flush", r.function_flush() is True and r.function_list() == [])
r.delete("redispy:n")
sys.exit(1 if failed else 0)
