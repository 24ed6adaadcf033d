-- redlog's Lua set-up, run once per VM with the debug library still
-- loaded. Arguments: the real globals table, the table of Rust functions.
-- Returns the error handler and the read-only globals proxy.
--
-- Redis 7.0 patches its Lua with read-only tables; redlog's Lua is the
-- stock 5.1, so scripts see read-only *proxies*: empty tables whose
-- __index is the real table and whose __newindex raises Redis's error.
local real, rust = ...
local dbg = debug
local rawset, rawget, setmetatable, error, type, tostring, pairs =
    rawset, rawget, setmetatable, error, type, tostring, pairs

-- Redis's `__redis__err__handler`, with one more step: frames of this
-- file (the wrappers below) are skipped, as they are C functions in Redis.
local function handler(err)
    local i = dbg.getinfo(2, 'nSl')
    local level = 2
    if i and i.what == 'C' then
        level = 3
        i = dbg.getinfo(3, 'nSl')
    end
    -- The read-only and missing-global errors come from this file's
    -- functions (C functions in Redis): report their caller.
    if i and i.source == '=sandbox' then
        i = dbg.getinfo(level + 1, 'nSl')
    end
    if type(err) ~= 'table' then
        err = {err = 'ERR ' .. tostring(err)}
    end
    if i then
        err['source'] = i.source
        err['line'] = i.currentline
    end
    return err
end

local function readonly()
    error('Attempt to modify a readonly table', 2)
end

-- proxy -> real table, so that pairs and next see through proxies.
local real_of = setmetatable({}, {__mode = 'k'})

local function proxy(t)
    local p = setmetatable({}, {__index = t, __newindex = readonly, __metatable = false})
    real_of[p] = t
    return p
end

local rawnext, rawpairs = next, pairs
rawset(real, 'next', function(t, k)
    return rawnext(real_of[t] or t, k)
end)
rawset(real, 'pairs', function(t)
    local r = real_of[t]
    if r then
        return rawnext, r, nil
    end
    return rawpairs(t)
end)

-- pcall as Redis 7.0 replaces it: an error table with an `err` string is
-- returned as that string.
local rawpcall = pcall
local function fix(ok, ...)
    if ok then
        return true, ...
    end
    local e = ...
    if type(e) == 'table' then
        local m = e.err
        if type(m) == 'string' or type(m) == 'number' then
            return false, m
        end
    end
    return false, e
end
rawset(real, 'pcall', function(...)
    return fix(rawpcall(...))
end)

-- Binary chunks are refused, as Redis's patched Lua refuses them.
local rawloadstring, rawload = loadstring, load
rawset(real, 'loadstring', function(s, name)
    if type(s) == 'string' and s:byte(1) == 27 then
        return nil, 'binary chunks are not allowed'
    end
    return rawloadstring(s, name)
end)
rawset(real, 'load', function(f, name)
    local parts = {}
    while true do
        local p = f()
        if p == nil or p == '' then break end
        if type(p) ~= 'string' then
            return nil, 'reader function must return a string'
        end
        parts[#parts + 1] = p
    end
    return real.loadstring(table.concat(parts), name)
end)

rawset(real, 'debug', nil)
rawset(real, 'getfenv', nil)
rawset(real, 'setfenv', nil)
rawset(real, 'newproxy', nil)
rawset(real, 'print', nil)
rawset(real, 'dofile', nil)
rawset(real, 'loadfile', nil)
rawset(real, '__redis__err__handler', handler)

-- Library tables become read-only proxies (the string metatable keeps the
-- real string table, so ("x"):rep(2) works as before).
for _, name in pairs({'string', 'table', 'math', 'coroutine', 'redis', 'cjson', 'bit', 'struct', 'cmsgpack'}) do
    local t = rawget(real, name)
    if type(t) == 'table' then
        rawset(real, name, proxy(t))
    end
end

-- Reading a missing global is an error; the globals seen by scripts are a
-- proxy, so every assignment to a global is refused.
setmetatable(real, {__index = function(_, k)
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end})
local g = proxy(real)
rawset(real, '_G', g)
return handler, g
