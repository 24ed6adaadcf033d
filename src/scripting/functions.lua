-- redlog's set-up of the functions VM, run once after sandbox.lua.
-- Arguments: the load-time API (register_function, log, the LOG_* levels,
-- the version fields), the error handler, the runtime globals proxy.
-- Returns the libraries' environment table, its metatable, the load-time
-- __index, `invoke` and `load`.
--
-- As Redis 7.0's function_lua.c: library code runs with an empty,
-- read-only globals table whose __index is switched between the load-time
-- API (only `redis` with the functions above; anything else is a missing
-- global) and the runtime globals.
local api, handler, globals = ...
local setmetatable, error, tostring, xpcall = setmetatable, error, tostring, xpcall

local function readonly()
    error('Attempt to modify a readonly table', 2)
end

local redis_load = setmetatable({}, {
    __index = function(_, k)
        local v = api[k]
        if v == nil then
            error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
        end
        return v
    end,
    __newindex = readonly,
    __metatable = false,
})

local function load_index(_, k)
    if k == 'redis' then
        return redis_load
    end
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end

local env_mt = {__index = globals, __newindex = readonly, __metatable = false}
local env = setmetatable({}, env_mt)

-- f(keys, args) under Redis's error handler (Lua 5.1's xpcall passes no
-- arguments: the closure does, with a tail call so the function's own
-- frame is the one errors report).
local function invoke(f, keys, args)
    return xpcall(function() return f(keys, args) end, handler)
end

-- The library's top level, errors as raised (Redis's lua_pcall without a
-- handler).
local function load(chunk)
    return xpcall(chunk, function(e) return e end)
end

return env, env_mt, load_index, invoke, load
