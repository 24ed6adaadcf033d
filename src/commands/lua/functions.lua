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

-- f(keys, args) under Redis's error handler. Lua 5.1's xpcall passes no
-- arguments: `run` takes them from upvalues set just before (one function
-- made once, not a closure per call; FCALL is `noscript`, so runs never
-- nest) and clears them, so the run's KEYS and ARGV tables are garbage
-- once it ends; then a tail call, so the function's own frame is the one
-- errors report. No Lua line may run after xpcall returns: a killed
-- script's line hook would raise again there.
local cur_f, cur_keys, cur_args
local function run()
    local f, keys, args = cur_f, cur_keys, cur_args
    cur_f, cur_keys, cur_args = nil, nil, nil
    return f(keys, args)
end
local function invoke(f, keys, args)
    cur_f, cur_keys, cur_args = f, keys, args
    return xpcall(run, handler)
end

-- The library's top level, errors as raised (Redis's lua_pcall without a
-- handler).
local function load(chunk)
    return xpcall(chunk, function(e) return e end)
end

return env, env_mt, load_index, invoke, load
