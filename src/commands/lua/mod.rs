//! Lua scripting as Redis 7.0 runs it (EVAL, EVALSHA, EVAL_RO,
//! EVALSHA_RO, SCRIPT): one Lua 5.1 VM (`mlua`, vendored), the script
//! cache, the sandbox, `redis.*`, and the reply conversions.
//!
//! The VM lives in `Keyspace::scripting` and runs under the keyspace lock:
//! a script is one command, so it is atomic and its effects (those of its
//! `redis.call`s, which go through `commands::call` like EXEC's commands)
//! form the WAL unit of the EVAL. A script that fails half-way keeps the
//! writes it made, as in Redis.
//!
//! `redis.call` runs the command on the script's own client (Redis's "lua
//! client": its own selected database and protocol, blocking denied) and
//! converts the RESP reply the command wrote into Lua values, as
//! `script_lua.c` does (`redisProtocolToLuaType`); the script's result is
//! converted back as `luaReplyToRedisReply`.
//!
//! Functions implemented in Rust raise their errors through a small C
//! trampoline (`raise_tramp`): the Rust side returns `[MARK, error]`, the
//! trampoline raises it with `lua_error` from a C frame, so error objects
//! are Lua tables or strings (never mlua's userdata), positions come out as
//! Redis's C functions give them (`user_script:1: ...`), and a tail call
//! `return redis.call(...)` keeps the script's frame.

pub use crate::node::busy;
mod cjson;
pub mod convert;
pub mod functions;
mod libs;

use crate::commands::{self, flags, table, CmdError, Ctx};
use crate::db::Keyspace;
use crate::node::{Client, ClientHandle, Shared};
use crate::protocol::Out;
use bytes::Bytes;
use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The version scripts see in `redis.REDIS_VERSION` (the reference server's).
pub const REDIS_VERSION: &str = "7.0.15";
pub const REDIS_VERSION_NUM: i64 = 0x0007_000f;

pub use crate::node::busy::{lua_memory_limit, DEFAULT_LUA_MEMORY_LIMIT, MIN_LUA_MEMORY_LIMIT};

/// Script flags (`#!lua flags=...`), Redis's `SCRIPT_FLAG_*`.
pub mod script_flags {
    pub const NO_WRITES: u32 = 1 << 0;
    pub const ALLOW_OOM: u32 = 1 << 1;
    pub const ALLOW_STALE: u32 = 1 << 2;
    pub const NO_CLUSTER: u32 = 1 << 3;
    /// No shebang: EVAL's backwards-compatible mode.
    pub const EVAL_COMPAT_MODE: u32 = 1 << 4;
    pub const ALLOW_CROSS_SLOT: u32 = 1 << 5;

    pub const NAMES: &[(u32, &str)] = &[
        (NO_WRITES, "no-writes"),
        (ALLOW_OOM, "allow-oom"),
        (ALLOW_STALE, "allow-stale"),
        (NO_CLUSTER, "no-cluster"),
        (ALLOW_CROSS_SLOT, "allow-cross-slot-keys"),
    ];
}

use crate::db::engines::ScriptCache;
pub use crate::db::engines::ScriptStats;

/// A cached EVAL script.
struct Script {
    body: Bytes,
    flags: u32,
    func: Function,
}

/// The EVAL engine: the VM and the script cache.
pub struct Scripting {
    lua: Lua,
    scripts: HashMap<String, Script, foldhash::fast::RandomState>,
    /// Bytes of the cached bodies and their SHA1 keys (INFO
    /// `used_memory_scripts_eval`).
    scripts_mem: usize,
    /// The script's own client (Redis's lua client).
    client: Client,
    /// The real globals table (the scripts see a read-only proxy of it).
    globals: Table,
    handler: Function,
    xpcall: Function,
    /// Runs since the last incremental GC step.
    gc_count: u32,
    /// The heap limit applied to `lua` (`lua_memory_limit`).
    mem_limit: usize,
}

impl ScriptCache for Scripting {
    fn flags_of(&self, sha: &str) -> Option<u32> {
        Scripting::flags_of(self, sha)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

impl Scripting {
    /// The keyspace's EVAL engine as this type, if one was created
    /// (there is no other implementation of `ScriptCache`).
    pub fn of(ks: &Keyspace) -> Option<&Scripting> {
        ks.scripting.as_ref().map(|sc| {
            sc.as_any()
                .downcast_ref()
                .expect("Keyspace::scripting is scripting::Scripting")
        })
    }
}

/// An empty keyspace with this module's function libraries: how the
/// server (and tests) make one.
pub fn keyspace() -> Keyspace {
    Keyspace::new(Box::<functions::Functions>::default())
}

impl std::fmt::Debug for Scripting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scripting")
            .field("scripts", &self.scripts.len())
            .finish()
    }
}

/// `math.random`'s generator: Redis's `redisLrand48`, one state per
/// process, so a server start always yields the same sequence.
static LRAND48: AtomicU64 = AtomicU64::new(0x1234_ABCD_330E);
const LRAND48_MAX: i64 = i32::MAX as i64;

fn lrand48() -> i64 {
    let x = LRAND48.load(Ordering::Relaxed);
    let next = x.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB) & 0xFFFF_FFFF_FFFF;
    LRAND48.store(next, Ordering::Relaxed);
    (next >> 17) as i64
}

fn srand48(seed: i32) {
    let s = seed as u32 as u64;
    LRAND48.store(
        ((s >> 16) & 0xFFFF) << 32 | (s & 0xFFFF) << 16 | 0x330E,
        Ordering::Relaxed,
    );
}

/// What a running script's Rust callbacks need: the command's context.
pub(crate) struct Run<'a> {
    pub(crate) ks: &'a mut Keyspace,
    pub(crate) shared: &'a Shared,
    pub(crate) client: &'a mut Client,
    pub(crate) now_ms: u64,
    pub(crate) read_only: bool,
    /// A write command ran (the script can no longer be refused for it).
    pub(crate) write_dirty: bool,
    /// The script declared `allow-oom`.
    allow_oom: bool,
    /// Memory was over `maxmemory` when the script started.
    pre_oom: bool,
    /// `redis.setresp`: the protocol of the replies `redis.call` converts.
    pub(crate) resp3: bool,
    /// The function's name (or the script's `f_<sha>`) and the command
    /// that runs it, for FUNCTION STATS once the run is busy.
    name: &'a str,
    command: &'a [Bytes],
}

impl Run<'_> {
    /// FUNCTION STATS' `running_script` and `engines` of this run.
    pub(crate) fn info(&self) -> busy::RunInfo {
        let st = self.ks.function_stats;
        busy::RunInfo {
            name: self.name.to_string(),
            command: self.command.to_vec(),
            libraries: st.libraries,
            functions: st.functions,
        }
    }
}

thread_local! {
    /// The running script's context, set by `Scripting::run` for the
    /// duration of the (synchronous) Lua call on this thread.
    pub(crate) static RUN: Cell<*mut Run<'static>> = const { Cell::new(std::ptr::null_mut()) };
}

/// Calls `f` with the running script's context, None outside a script.
pub(crate) fn with_run<R>(f: impl FnOnce(&mut Run<'_>) -> R) -> Option<R> {
    let p = RUN.with(|c| c.get());
    if p.is_null() {
        return None;
    }
    // SAFETY: `RUN` points at a `Run` on the stack of `Scripting::run`,
    // which clears it (guard) before returning; Rust callbacks run only on
    // this thread inside that call, and never re-enter one another (EVAL
    // and SCRIPT are `noscript`, refused inside scripts), so this is the
    // only live reference.
    Some(f(unsafe { &mut *p }))
}

/// What the busy-script hook (`node::busy`) may ask of the running
/// script.
const RUN_HOOKS: busy::RunHooks = busy::RunHooks {
    run_job: |job| with_run(|r| job(r.ks)).is_some(),
    info: || with_run(|r| r.info()),
};

pub(crate) struct RunGuard;

impl Drop for RunGuard {
    fn drop(&mut self) {
        RUN.with(|c| c.set(std::ptr::null_mut()));
    }
}

/// The error marker a Rust callback returns first to make the trampoline
/// raise the value after it (a string gets the caller's position prefixed).
pub(crate) const MARK_KEY: &str = "__redlog_raise_mark";

unsafe extern "C-unwind" fn raise_tramp(l: *mut mlua::ffi::lua_State) -> std::os::raw::c_int {
    use mlua::ffi;
    // Only C API calls here and no Rust values with destructors: `lua_error`
    // unwinds this frame with longjmp.
    let n = ffi::lua_gettop(l);
    ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
    ffi::lua_insert(l, 1);
    ffi::lua_call(l, n, ffi::LUA_MULTRET);
    let nres = ffi::lua_gettop(l);
    if nres >= 2 && ffi::lua_rawequal(l, 1, ffi::lua_upvalueindex(2)) != 0 {
        if nres >= 3 && ffi::lua_type(l, 3) == ffi::LUA_TNUMBER {
            // `Raise::Arg`: luaL_argerror names the function as the
            // caller's code called it (`f` for `local f = cjson.encode`).
            let narg = ffi::lua_tointeger(l, 3) as std::os::raw::c_int;
            let msg = ffi::lua_tolstring(l, 2, std::ptr::null_mut());
            ffi::luaL_argerror(l, narg, msg);
        }
        if ffi::lua_type(l, 2) == ffi::LUA_TSTRING {
            ffi::luaL_where(l, 1);
            ffi::lua_pushvalue(l, 2);
            ffi::lua_concat(l, 2);
        } else {
            ffi::lua_pushvalue(l, 2);
        }
        ffi::lua_error(l);
    }
    nres
}

/// A Rust function's result: values, or an error the trampoline raises.
pub enum Raise {
    /// A string error: the caller's position is prefixed (`luaL_error`).
    Msg(String),
    /// Any value, raised as it is (Redis's error tables).
    Value(Value),
    /// `luaL_argerror(n, msg)`: "bad argument #n to 'name' (msg)", the
    /// name taken from the calling code as Lua does.
    Arg(i32, String),
}

pub type LuaResult = Result<MultiValue, Raise>;

/// Makes a Lua function of `f` that raises its `Raise` errors as Redis's C
/// functions do.
pub fn c_function<F>(lua: &Lua, f: F) -> mlua::Result<Function>
where
    F: Fn(&Lua, MultiValue) -> LuaResult + mlua::MaybeSend + 'static,
{
    let mark: Table = lua.named_registry_value(MARK_KEY)?;
    let m2 = mark.clone();
    let inner = lua.create_function(move |lua, args: MultiValue| match f(lua, args) {
        Ok(v) => Ok(v),
        Err(Raise::Msg(s)) => Ok(MultiValue::from_iter([
            Value::Table(m2.clone()),
            Value::String(lua.create_string(s)?),
        ])),
        Err(Raise::Value(v)) => Ok(MultiValue::from_iter([Value::Table(m2.clone()), v])),
        Err(Raise::Arg(n, s)) => Ok(MultiValue::from_iter([
            Value::Table(m2.clone()),
            Value::String(lua.create_string(s)?),
            Value::Integer(n as mlua::Integer),
        ])),
    })?;
    // SAFETY: pushes a C closure over the two values exec_raw pushed.
    unsafe {
        lua.exec_raw::<Function>((inner, mark), |l| {
            mlua::ffi::lua_pushcclosure(l, raise_tramp, 2);
        })
    }
}

/// Redis's `luaPushErrorBuff`: a `{err=...}` table from "-CODE msg" or "msg".
pub fn error_table(lua: &Lua, err: &[u8], ignore_stats: bool) -> mlua::Result<Table> {
    let mut text: Vec<u8> = Vec::with_capacity(err.len() + 4);
    if let Some(rest) = err.strip_prefix(b"-") {
        match rest.iter().position(|&b| b == b' ') {
            None => {
                text.extend_from_slice(b"ERR ");
                text.extend_from_slice(trim_crlf(rest));
            }
            Some(i) => {
                text.extend_from_slice(&rest[..i]);
                text.push(b' ');
                text.extend_from_slice(trim_crlf(&rest[i + 1..]));
            }
        }
    } else {
        text.extend_from_slice(b"ERR ");
        text.extend_from_slice(trim_crlf(err));
    }
    // lua_pushstring: up to the first NUL.
    if let Some(z) = text.iter().position(|&b| b == 0) {
        text.truncate(z);
    }
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(&text)?)?;
    if ignore_stats {
        t.raw_set("ignore_error_stats_update", true)?;
    }
    Ok(t)
}

fn trim_crlf(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| b != b'\r' && b != b'\n')
        .map_or(start, |i| i + 1);
    &s[start..end.max(start)]
}

pub(crate) fn raise_table(lua: &Lua, msg: &str) -> Raise {
    match error_table(lua, msg.as_bytes(), false) {
        Ok(t) => Raise::Value(Value::Table(t)),
        Err(e) => Raise::Msg(e.to_string()),
    }
}

pub(crate) fn lua_err(e: mlua::Error) -> Raise {
    Raise::Msg(e.to_string())
}

/// SHA1 as 40 lower-case hex digits (Redis's `sha1hex`).
pub fn sha1hex(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}

/// A script's shebang line refused (Redis's texts, after `ERR `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShebangError {
    #[error("Invalid script shebang")]
    NoNewline,
    #[error("Invalid engine in script shebang")]
    InvalidEngine,
    #[error("Unexpected engine in script shebang: {0}")]
    UnexpectedEngine(String),
    #[error("Unexpected flag in script shebang: {0}")]
    UnexpectedFlag(String),
    #[error("Unknown lua shebang option: {0}")]
    UnknownOption(String),
}

/// Redis's `evalExtractShebangFlags`: the flags and the shebang's length
/// (the line without its `\n`, which stays for the line numbers).
pub fn shebang_flags(body: &[u8]) -> Result<(u32, usize), ShebangError> {
    if !body.starts_with(b"#!") {
        return Ok((script_flags::EVAL_COMPAT_MODE, 0));
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err(ShebangError::NoNewline);
    };
    let parts = match crate::protocol::parse::split_args(&body[..end]) {
        Some(p) if !p.is_empty() => p,
        _ => return Err(ShebangError::InvalidEngine),
    };
    let c = |b: &[u8]| {
        let z = b.iter().position(|&x| x == 0).unwrap_or(b.len());
        String::from_utf8_lossy(&b[..z]).into_owned()
    };
    if c(&parts[0]) != "#!lua" || parts[0].contains(&0) {
        return Err(ShebangError::UnexpectedEngine(c(&parts[0])));
    }
    let mut flags = 0;
    for p in &parts[1..] {
        if let Some(list) = p.strip_prefix(b"flags=") {
            // sdssplitlen: an empty list has no elements.
            if list.is_empty() {
                continue;
            }
            for f in list.split(|&b| b == b',') {
                match script_flags::NAMES.iter().find(|(_, n)| n.as_bytes() == f) {
                    Some((bit, _)) => flags |= bit,
                    None => {
                        return Err(ShebangError::UnexpectedFlag(c(f)));
                    }
                }
            }
        } else {
            return Err(ShebangError::UnknownOption(c(p)));
        }
    }
    Ok((flags, end))
}

impl Scripting {
    /// A new VM with Redis's libraries, `redis.*` and the sandbox.
    pub fn new(shared: &Shared) -> mlua::Result<Scripting> {
        // SAFETY: the debug library is needed by the error handler and is
        // removed from the globals before any script runs.
        let lua = unsafe {
            Lua::unsafe_new_with(
                StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG,
                LuaOptions::default(),
            )
        };
        lua.set_named_registry_value(MARK_KEY, lua.create_table()?)?;
        let globals = lua.globals();
        let redis = lua.create_table()?;
        register_redis_api(&lua, &redis)?;
        globals.raw_set("redis", redis)?;
        let math: Table = globals.raw_get("math")?;
        math.raw_set("random", c_function(&lua, math_random)?)?;
        math.raw_set("randomseed", c_function(&lua, math_randomseed)?)?;
        libs::register(&lua, &globals)?;
        let xpcall: Function = globals.raw_get("xpcall")?;
        let setup = lua
            .load(include_str!("sandbox.lua"))
            .set_name("=sandbox")
            .into_function()?;
        let (handler, proxy): (Function, Table) = setup.call((globals.clone(), Value::Nil))?;
        lua.set_globals(proxy)?;
        let id = shared.next_client_id.fetch_add(1, Ordering::Relaxed);
        let none: std::net::SocketAddr = ([0, 0, 0, 0], 0).into();
        let handle = Arc::new(ClientHandle::new(id, none, none, -1));
        let mut client = Client::new(handle, true);
        client.in_exec = true;
        client.in_script = true;
        Ok(Scripting {
            lua,
            scripts: HashMap::default(),
            scripts_mem: 0,
            client,
            globals,
            handler,
            xpcall,
            gc_count: 0,
            mem_limit: usize::MAX,
        })
    }

    pub fn stats(&self) -> ScriptStats {
        ScriptStats {
            vm_memory: self.vm_memory(),
            scripts_memory: self.scripts_memory(),
            scripts: self.scripts.len(),
        }
    }

    pub fn script_count(&self) -> usize {
        self.scripts.len()
    }

    /// INFO `used_memory_vm_eval`: the Lua heap in whole KiB, as Redis
    /// reports it (`lua_gc(LUA_GCCOUNT) * 1024`).
    pub fn vm_memory(&self) -> usize {
        self.lua.used_memory() / 1024 * 1024
    }

    /// INFO `used_memory_scripts_eval`.
    pub fn scripts_memory(&self) -> usize {
        self.scripts_mem
    }

    pub fn exists(&self, sha: &[u8]) -> bool {
        std::str::from_utf8(sha).is_ok_and(|s| self.scripts.contains_key(s))
    }

    /// Redis's `luaCreateFunction`: compiles and caches `body`, returning
    /// its SHA1; the error is the reply text.
    pub fn create(&mut self, body: &Bytes) -> Result<String, CmdError> {
        let sha = sha1hex(body);
        if self.scripts.contains_key(&sha) {
            return Ok(sha);
        }
        let (flags, skip) = shebang_flags(body).map_err(|e| CmdError::new(format!("ERR {e}")))?;
        let func = self
            .lua
            .load(&body[skip..])
            .set_name("@user_script")
            .set_mode(mlua::chunk::ChunkMode::Text)
            .into_function()
            .map_err(|e| {
                let msg = match &e {
                    mlua::Error::SyntaxError { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                CmdError::new(format!("ERR Error compiling script (new function): {msg}"))
            })?;
        self.scripts_mem += sha.len() + body.len();
        self.scripts.insert(
            sha.clone(),
            Script {
                body: body.clone(),
                flags,
                func,
            },
        );
        Ok(sha)
    }

    /// The flags of a cached script (for SCRIPT / EVAL checks).
    pub fn flags_of(&self, sha: &str) -> Option<u32> {
        self.scripts.get(sha).map(|s| s.flags)
    }

    /// The body of a cached script.
    pub fn body_of(&self, sha: &str) -> Option<&Bytes> {
        self.scripts.get(sha).map(|s| &s.body)
    }

    /// Runs the cached script `sha` for the command in `ctx`, writing its
    /// reply (or error) to `ctx.out`.
    pub fn run(
        &mut self,
        ctx: &mut Ctx,
        sha: &str,
        keys: &[Bytes],
        args: &[Bytes],
        read_only: bool,
    ) -> Result<(), CmdError> {
        let Some(script) = self.scripts.get(sha) else {
            return Err(CmdError::new(
                "NOSCRIPT No matching script. Please use EVAL.",
            ));
        };
        let func = &script.func;
        let allow_oom = script.flags & script_flags::ALLOW_OOM != 0;
        let lua = self.lua.clone();
        let mk = |items: &[Bytes]| -> mlua::Result<Table> {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, a) in items.iter().enumerate() {
                t.raw_seti(i + 1, lua.create_string(a)?)?;
            }
            Ok(t)
        };
        let internal = |e: mlua::Error| CmdError::new(format!("ERR {e}"));
        self.globals
            .raw_set("KEYS", mk(keys).map_err(internal)?)
            .map_err(internal)?;
        self.globals
            .raw_set("ARGV", mk(args).map_err(internal)?)
            .map_err(internal)?;

        let spec = RunSpec {
            kind: busy::Kind::Eval,
            command: &[],
            name: sha,
            read_only,
            allow_oom,
        };
        let (xpcall, handler) = (&self.xpcall, &self.handler);
        run_script(
            ctx,
            &mut self.client,
            &lua,
            &mut self.gc_count,
            &mut self.mem_limit,
            spec,
            || xpcall.call::<MultiValue>((func, handler)),
        )
    }

    /// SCRIPT FLUSH: a new VM, an empty cache.
    pub fn flush(&mut self, shared: &Shared) -> mlua::Result<()> {
        *self = Scripting::new(shared)?;
        Ok(())
    }
}

/// What a script or function run is, for [`run_script`].
pub(crate) struct RunSpec<'a> {
    pub kind: busy::Kind,
    /// The command that runs it (FUNCTION STATS' `command`).
    pub command: &'a [Bytes],
    /// The sha (`f_<sha>`-style name in errors) or the function's name.
    pub name: &'a str,
    pub read_only: bool,
    pub allow_oom: bool,
}

/// Runs `call` (the script's Lua call on `lua`) as the script of the
/// command in `ctx`, on the script client `client` (Redis's
/// `scriptPrepareForRun`, `scriptCall` and `scriptResetRun`): the client
/// takes the caller's database and ACL user, the run is timed by the busy
/// machinery, every 50 runs make one incremental GC step, and the reply
/// (or the error) is the caller's.
pub(crate) fn run_script(
    ctx: &mut Ctx,
    client: &mut Client,
    lua: &Lua,
    gc_count: &mut u32,
    mem_limit: &mut usize,
    spec: RunSpec<'_>,
    call: impl FnOnce() -> mlua::Result<MultiValue>,
) -> Result<(), CmdError> {
    client.db = ctx.client.db;
    client.no_touch = ctx.client.no_touch;
    // Redis's `scriptPrepareForRun`: the script runs as its caller.
    client.user = ctx.client.user.clone();
    client.script_caller = Some(ctx.client.handle.clone());
    let pre_oom = ctx.ks.pre_command_oom;
    let mut run = Run {
        ks: &mut *ctx.ks,
        shared: ctx.shared,
        client,
        now_ms: ctx.now_ms,
        read_only: spec.read_only,
        write_dirty: false,
        allow_oom: spec.allow_oom,
        pre_oom,
        resp3: false,
        name: spec.name,
        command: spec.command,
    };
    let limit = ctx.shared.busy.lua_limit();
    if *mem_limit != limit {
        *mem_limit = limit;
        let _ = lua.set_memory_limit(limit);
    }
    let running = ctx.shared.busy.begin(spec.kind, lua, RUN_HOOKS);
    let result = {
        let p: *mut Run<'_> = &mut run;
        RUN.with(|c| c.set(p.cast()));
        let _guard = RunGuard;
        call()
    };
    let script_resp3 = run.resp3;
    if running.finish() == busy::Ended::Shutdown {
        // SHUTDOWN NOSAVE stopped the script: as Redis exits in the
        // middle of it, nothing of it is logged and its client gets
        // no reply.
        drop(ctx.ks.take_unit());
        ctx.client.close_after_reply = true;
        return Ok(());
    }
    *gc_count += 1;
    if *gc_count == 50 {
        *gc_count = 0;
        // SAFETY: one incremental GC step, as Redis's LUA_GC_CYCLE_PERIOD.
        let _ = unsafe {
            lua.exec_raw::<()>((), |l| {
                mlua::ffi::lua_gc(l, mlua::ffi::LUA_GCSTEP, 50);
            })
        };
    }
    let mut vals = match result {
        Ok(v) => v.into_iter(),
        Err(e) => {
            return Err(CmdError::new(format!(
                "ERR Error running script {}, {e}",
                spec.name
            )))
        }
    };
    let ok = matches!(vals.next(), Some(Value::Boolean(true)));
    let v = vals.next().unwrap_or(Value::Nil);
    if ok {
        convert::lua_to_resp(ctx.out, &v, script_resp3, 0);
        return Ok(());
    }
    if matches!(&v, Value::String(s) if s.as_bytes().as_ref() == b"not enough memory") {
        // The heap limit stopped it (Lua 5.1 has no emergency collection):
        // free its garbage now, so the next script starts with room.
        let _ = lua.gc_collect();
    }
    Err(script_error(&v, spec.name))
}

/// The error reply of a failed script (Redis's `luaCallFunction`).
pub(crate) fn script_error(v: &Value, sha: &str) -> CmdError {
    match v {
        Value::Table(t) => {
            let msg = t
                .get::<Value>("err")
                .ok()
                .and_then(|m| lua_tostring(&m))
                .unwrap_or_default();
            let mut out = msg;
            let source = t.get::<Value>("source").ok().and_then(|m| lua_tostring(&m));
            let line = t.get::<Value>("line").ok().and_then(|m| lua_tostring(&m));
            if let (Some(source), Some(line)) = (source, line) {
                out.extend_from_slice(format!(" script: {sha}, on ").as_bytes());
                out.extend_from_slice(&source);
                out.push(b':');
                out.extend_from_slice(&line);
                out.push(b'.');
            }
            CmdError::from_bytes(out)
        }
        other => {
            let msg = lua_tostring(other)
                .map(|m| String::from_utf8_lossy(&m[..m.len().min(100)]).into_owned())
                .unwrap_or_else(|| "execution failure".into());
            CmdError::new(format!("ERR Error running script {sha}, {msg}\n"))
        }
    }
}

/// `lua_tostring` of strings and numbers (numbers as Lua's `%.14g`).
pub fn lua_tostring(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Integer(i) => Some(convert::fmt_g14(*i as f64).into_bytes()),
        Value::Number(n) => Some(convert::fmt_g14(*n).into_bytes()),
        _ => None,
    }
}

pub(crate) fn register_redis_api(lua: &Lua, redis: &Table) -> mlua::Result<()> {
    redis.raw_set("call", c_function(lua, |lua, a| redis_call(lua, a, true))?)?;
    redis.raw_set(
        "pcall",
        c_function(lua, |lua, a| redis_call(lua, a, false))?,
    )?;
    redis.raw_set("log", c_function(lua, redis_log)?)?;
    for (name, level) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
    ] {
        redis.raw_set(name, level)?;
    }
    redis.raw_set("REDIS_VERSION_NUM", REDIS_VERSION_NUM)?;
    redis.raw_set("REDIS_VERSION", REDIS_VERSION)?;
    redis.raw_set(
        "setresp",
        c_function(lua, |lua, a| {
            let in_run = with_run(|_| ()).is_some();
            if !in_run {
                return Err(raise_table(
                    lua,
                    "redis.setresp can only be called inside a script invocation",
                ));
            }
            if a.len() != 1 {
                return Err(raise_table(lua, "redis.setresp() requires one argument."));
            }
            let resp = to_number(&a[0]).unwrap_or(0.0) as i32;
            if resp != 2 && resp != 3 {
                return Err(raise_table(lua, "RESP version must be 2 or 3."));
            }
            with_run(|r| r.resp3 = resp == 3);
            Ok(MultiValue::new())
        })?,
    )?;
    redis.raw_set(
        "sha1hex",
        c_function(lua, |lua, a| {
            if a.len() != 1 {
                return Err(raise_table(lua, "wrong number of arguments"));
            }
            let data = lua_tostring(&a[0]).unwrap_or_default();
            let s = lua.create_string(sha1hex(&data)).map_err(lua_err)?;
            Ok(MultiValue::from_iter([Value::String(s)]))
        })?,
    )?;
    redis.raw_set(
        "error_reply",
        c_function(lua, |lua, a| {
            let t = match a.front() {
                Some(Value::String(s)) if a.len() == 1 => {
                    let b = s.as_bytes();
                    let mut err = Vec::with_capacity(b.len() + 1);
                    if !b.starts_with(b"-") {
                        err.push(b'-');
                    }
                    err.extend_from_slice(&b);
                    error_table(lua, &err, false)
                }
                _ => error_table(lua, b"wrong number or type of arguments", false),
            }
            .map_err(lua_err)?;
            Ok(MultiValue::from_iter([Value::Table(t)]))
        })?,
    )?;
    redis.raw_set(
        "status_reply",
        c_function(lua, |lua, a| {
            let t = match a.front() {
                Some(Value::String(s)) if a.len() == 1 => {
                    let t = lua.create_table().map_err(lua_err)?;
                    t.raw_set("ok", s.clone()).map_err(lua_err)?;
                    t
                }
                _ => error_table(lua, b"wrong number or type of arguments", false)
                    .map_err(lua_err)?,
            };
            Ok(MultiValue::from_iter([Value::Table(t)]))
        })?,
    )?;
    redis.raw_set(
        "set_repl",
        c_function(lua, |lua, a| {
            if with_run(|_| ()).is_none() {
                return Err(raise_table(
                    lua,
                    "redis.set_repl can only be called inside a script invocation",
                ));
            }
            if a.len() != 1 {
                return Err(raise_table(lua, "redis.set_repl() requires two arguments."));
            }
            let f = to_number(&a[0]).unwrap_or(0.0) as i64;
            if f & !3 != 0 {
                return Err(raise_table(
                    lua,
                    "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                ));
            }
            // Effects are what the WAL logs whatever the flags say.
            Ok(MultiValue::new())
        })?,
    )?;
    for (name, v) in [
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_SLAVE", 2),
        ("REPL_REPLICA", 2),
        ("REPL_ALL", 3),
    ] {
        redis.raw_set(name, v)?;
    }
    redis.raw_set("acl_check_cmd", c_function(lua, acl_check_cmd)?)?;
    redis.raw_set("replicate_commands", lua.create_function(|_, ()| Ok(true))?)?;
    // Outside a debugging session (redlog has no LDB): false / nothing.
    redis.raw_set("breakpoint", lua.create_function(|_, ()| Ok(false))?)?;
    redis.raw_set("debug", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    Ok(())
}

fn to_number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        Value::String(s) => {
            let b = s.as_bytes();
            let t = std::str::from_utf8(&b).ok()?.trim();
            if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                return u64::from_str_radix(h, 16).ok().map(|n| n as f64);
            }
            t.parse::<f64>().ok()
        }
        _ => None,
    }
}

/// redis.log(level, ...)
fn redis_log(lua: &Lua, a: MultiValue) -> LuaResult {
    if a.len() < 2 {
        return Err(raise_table(
            lua,
            "redis.log() requires two arguments or more.",
        ));
    }
    let Some(level) = to_number(&a[0]) else {
        return Err(raise_table(
            lua,
            "First argument must be a number (log level).",
        ));
    };
    let level = level as i64;
    if !(0..=3).contains(&level) {
        return Err(raise_table(lua, "Invalid debug level."));
    }
    let mut msg = Vec::new();
    for (j, v) in a.iter().enumerate().skip(1) {
        if let Some(s) = lua_tostring(v) {
            if j != 1 {
                msg.push(b' ');
            }
            msg.extend_from_slice(&s);
        }
    }
    let text = String::from_utf8_lossy(&msg);
    match level {
        0 => tracing::debug!("{text}"),
        1 => tracing::debug!("{text}"),
        2 => tracing::info!("{text}"),
        _ => tracing::warn!("{text}"),
    }
    Ok(MultiValue::new())
}

fn check_int(v: Option<&Value>, n: usize, fname: &str) -> Result<i32, Raise> {
    match v.and_then(to_number) {
        Some(x) => Ok(x as i64 as i32),
        None => {
            let got = match v {
                None | Some(Value::Nil) => "no value",
                Some(Value::Boolean(_)) => "boolean",
                Some(Value::Table(_)) => "table",
                Some(Value::Function(_)) => "function",
                Some(Value::String(_)) => "string",
                _ => "userdata",
            };
            Err(Raise::Msg(format!(
                "bad argument #{n} to '{fname}' (number expected, got {got})"
            )))
        }
    }
}

/// Redis's `redis_math_random`: Lua 5.1's, over `redisLrand48`.
pub(crate) fn math_random(lua: &Lua, a: MultiValue) -> LuaResult {
    if with_run(|_| ()).is_none() {
        return Err(Raise::Msg(
            "math.random can only be called inside a script invocation".into(),
        ));
    }
    let r = (lrand48() % LRAND48_MAX) as f64 / LRAND48_MAX as f64;
    let v = match a.len() {
        0 => r,
        1 => {
            let u = check_int(a.front(), 1, "random")?;
            if u < 1 {
                return Err(Raise::Msg(
                    "bad argument #1 to 'random' (interval is empty)".into(),
                ));
            }
            (r * u as f64).floor() + 1.0
        }
        2 => {
            let l = check_int(a.front(), 1, "random")?;
            let u = check_int(a.get(1), 2, "random")?;
            if l > u {
                return Err(Raise::Msg(
                    "bad argument #2 to 'random' (interval is empty)".into(),
                ));
            }
            (r * (u as f64 - l as f64 + 1.0)).floor() + l as f64
        }
        _ => return Err(Raise::Msg("wrong number of arguments".into())),
    };
    let _ = lua;
    Ok(MultiValue::from_iter([Value::Number(v)]))
}

pub(crate) fn math_randomseed(_lua: &Lua, a: MultiValue) -> LuaResult {
    if with_run(|_| ()).is_none() {
        return Err(Raise::Msg(
            "math.randomseed can only be called inside a script invocation".into(),
        ));
    }
    srand48(check_int(a.front(), 1, "randomseed")?);
    Ok(MultiValue::new())
}

/// A number argument as Redis's `%.17g` prints it; integers below 1e17
/// (what scripts pass nearly always) print as their digits.
fn number_arg(n: f64) -> Bytes {
    if n.fract() == 0.0 && n.abs() < 1e17 && !(n == 0.0 && n.is_sign_negative()) {
        return Bytes::copy_from_slice(itoa::Buffer::new().format(n as i64).as_bytes());
    }
    Bytes::from(crate::protocol::format_double(n))
}

/// Redis's `luaArgsToRedisArgv`: numbers as `%.17g`, strings as they are.
fn lua_argv(lua: &Lua, a: &MultiValue) -> Result<Vec<Bytes>, Table> {
    let fail = |msg: &str| match error_table(lua, msg.as_bytes(), false) {
        Ok(t) => t,
        Err(_) => lua.globals(),
    };
    if a.is_empty() {
        return Err(fail(
            "Please specify at least one argument for this redis lib call",
        ));
    }
    let mut argv: Vec<Bytes> = Vec::with_capacity(a.len());
    for v in a.iter() {
        match v {
            Value::Integer(i) => argv.push(number_arg(*i as f64)),
            Value::Number(n) => argv.push(number_arg(*n)),
            Value::String(s) => argv.push(Bytes::copy_from_slice(&s.as_bytes())),
            _ => {
                return Err(fail(
                    "Lua redis lib command arguments must be strings or integers",
                ))
            }
        }
    }
    Ok(argv)
}

/// redis.acl_check_cmd(cmd, ...): redlog's only user may run every
/// command, so this is true for any existing command.
fn acl_check_cmd(lua: &Lua, a: MultiValue) -> LuaResult {
    if with_run(|_| ()).is_none() {
        return Err(raise_table(
            lua,
            "redis.acl_check_cmd can only be called inside a script invocation",
        ));
    }
    let argv = lua_argv(lua, &a).map_err(|t| Raise::Value(Value::Table(t)))?;
    let t = table();
    let found = t.lookup(&argv[0]).is_some_and(|idx| {
        t.entries[idx].cmd.subcommands.is_empty()
            || argv.len() < 2
            || t.lookup_sub(idx, &argv[1]).is_some()
    });
    if !found {
        return Err(raise_table(
            lua,
            "Invalid command passed to redis.acl_check_cmd()",
        ));
    }
    Ok(MultiValue::from_iter([Value::Boolean(true)]))
}

/// redis.call / redis.pcall: Redis's `luaRedisGenericCommand`.
fn redis_call(lua: &Lua, a: MultiValue, raise: bool) -> LuaResult {
    let argv = match lua_argv(lua, &a) {
        Ok(v) => v,
        Err(t) if raise => return Err(Raise::Value(Value::Table(t))),
        Err(t) => return Ok(MultiValue::from_iter([Value::Table(t)])),
    };
    let outcome = with_run(|run| call_command(run, &argv));
    let Some((reply, resp3)) = outcome else {
        return Err(raise_table(
            lua,
            "redis.call/pcall can only be called inside a script invocation",
        ));
    };
    let reply = match reply {
        Err(why) => {
            let t = error_table(lua, why.to_string().as_bytes(), true).map_err(lua_err)?;
            return if raise {
                Err(Raise::Value(Value::Table(t)))
            } else {
                Ok(MultiValue::from_iter([Value::Table(t)]))
            };
        }
        Ok(r) => r,
    };
    let _ = resp3;
    let converted = convert::resp_to_lua(lua, &reply);
    let is_err = reply.first() == Some(&b'-');
    give_back_reply_buf(reply);
    let v = converted.map_err(lua_err)?;
    if raise && is_err {
        return Err(Raise::Value(v));
    }
    Ok(MultiValue::from_iter([v]))
}

thread_local! {
    /// The reply buffer `redis.call` reuses from one call to the next (one
    /// allocation per thread, not one per call).
    static REPLY_BUF: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// A reply buffer larger than this is freed, not kept for the next call.
const REPLY_BUF_KEEP: usize = 16 * 1024;

fn take_reply_buf() -> Vec<u8> {
    let mut buf = REPLY_BUF.with(|b| b.take());
    buf.clear();
    if buf.capacity() == 0 {
        buf.reserve(256);
    }
    buf
}

fn give_back_reply_buf(buf: Vec<u8>) {
    if buf.capacity() <= REPLY_BUF_KEEP {
        REPLY_BUF.with(|b| b.set(buf));
    }
}

/// Why `redis.call` refused a command before running it: the error
/// table's text (Redis's `scriptCall`; without code, or with the `-CODE`
/// Redis gives it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum CallRefused {
    #[error("Unknown Redis command called from script")]
    Unknown,
    #[error("Wrong number of args calling Redis command from script")]
    Arity,
    #[error("This Redis command is not allowed from script")]
    NoScript,
    /// The ACL's denial, as `AclDenied::script_message` words it.
    #[error("The user executing the script {0}")]
    Acl(&'static str),
    #[error("Write commands are not allowed from read-only scripts.")]
    ReadOnlyScript,
    #[error("-OOM command not allowed when used memory > 'maxmemory'.")]
    Oom,
    #[error("-READONLY You can't write against a read only replica.")]
    ReadOnlyReplica,
    #[error("-{0}")]
    Misconf(crate::node::durability::Misconf),
}

/// Redis's `scriptCall`: the checks, then the command on the script's
/// client; the reply's RESP bytes, or the refusal.
fn call_command(run: &mut Run<'_>, argv: &[Bytes]) -> (Result<Vec<u8>, CallRefused>, bool) {
    let t = table();
    let resp3 = run.resp3;
    let refuse = |why: CallRefused| (Err(why), resp3);
    let Some(mut idx) = t.lookup(&argv[0]) else {
        return refuse(CallRefused::Unknown);
    };
    if !t.entries[idx].cmd.subcommands.is_empty() && argv.len() >= 2 {
        match t.lookup_sub(idx, &argv[1]) {
            Some(s) => idx = s,
            None => return refuse(CallRefused::Unknown),
        }
    }
    let e = &t.entries[idx];
    let cmd = e.cmd;
    let argc = argv.len() as i32;
    if (cmd.arity > 0 && argc != cmd.arity) || argc < -cmd.arity {
        return refuse(CallRefused::Arity);
    }
    if cmd.has(flags::NOSCRIPT) {
        return refuse(CallRefused::NoScript);
    }
    if let Err(d) = commands::acl::check_logged(
        run.shared,
        run.client,
        idx,
        argv,
        crate::acl::LogContext::Lua,
    ) {
        return refuse(CallRefused::Acl(d.script_message()));
    }
    if run.read_only && cmd.has(flags::WRITE | flags::MAY_REPLICATE) {
        return refuse(CallRefused::ReadOnlyScript);
    }
    // Redis's `scriptVerifyOOM`: over the limit at the script's start, its
    // first write, if it may grow memory, is refused.
    if !run.allow_oom && !run.write_dirty && run.pre_oom && cmd.has(flags::DENYOOM) {
        return refuse(CallRefused::Oom);
    }
    if cmd.has(flags::WRITE) && !run.write_dirty {
        // Redis's `scriptVerifyWriteCommandAllow`: a read-only replica
        // refuses writes unless the script came from its primary.
        if run.shared.repl.is_replica()
            && !run
                .client
                .script_caller
                .as_ref()
                .is_some_and(|h| h.meta.lock().master)
            && run.shared.config.read().get("replica-read-only") != Some("no")
        {
            return refuse(CallRefused::ReadOnlyReplica);
        }
        if let Some(reason) = run.shared.durability.failure() {
            return refuse(CallRefused::Misconf(crate::node::durability::Misconf {
                reason,
            }));
        }
    }
    if cmd.has(flags::WRITE) {
        run.write_dirty = true;
        run.shared.busy.mark_write();
    }
    commands::bump(&run.shared.stats.total_commands_processed, 1);
    let mut out = Out::new_with_buf(take_reply_buf(), resp3);
    let mut ctx = Ctx {
        ks: &mut *run.ks,
        shared: run.shared,
        client: &mut *run.client,
        out: &mut out,
        now_ms: run.now_ms,
    };
    if let Err(e) = commands::call(&mut ctx, idx, argv) {
        out.error_bytes(&e.0);
    }
    run.shared.count_errors(&mut out);
    (Ok(out.buf), resp3)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `math.random`'s draws as a fresh redis-server 7.0.15 gives them:
    /// `{tostring(math.random()), math.random(100), math.random(5,10),
    /// tostring(math.random())}` then after `math.randomseed(42)`
    /// `{tostring(math.random()), math.random(1000)}`.
    #[test]
    fn lrand48_matches_redis() {
        let r = || (lrand48() % LRAND48_MAX) as f64 / LRAND48_MAX as f64;
        assert_eq!(convert::fmt_g14(r()), "0.39646477363839");
        assert_eq!((r() * 100.0).floor() + 1.0, 85.0);
        assert_eq!((r() * 6.0).floor() + 5.0, 7.0);
        assert_eq!(convert::fmt_g14(r()), "0.44658343468168");
        srand48(42);
        assert_eq!(convert::fmt_g14(r()), "0.74452500033403");
        assert_eq!((r() * 1000.0).floor() + 1.0, 343.0);
    }

    #[test]
    fn number_args_as_g17() {
        for n in [
            0.0,
            -0.0,
            1.0,
            -7.0,
            100.0,
            1e16,
            99999999999999999.0,
            1e17,
            0.1,
            2f64.powi(53) + 2.0,
        ] {
            assert_eq!(
                &number_arg(n)[..],
                crate::protocol::format_double(n).as_bytes(),
                "{n}"
            );
        }
    }

    #[test]
    fn shebang_flags_as_redis() {
        assert_eq!(
            shebang_flags(b"return 1"),
            Ok((script_flags::EVAL_COMPAT_MODE, 0))
        );
        assert_eq!(
            shebang_flags(b"#!lua flags=no-writes,allow-oom\nreturn 1"),
            Ok((script_flags::NO_WRITES | script_flags::ALLOW_OOM, 31))
        );
        assert_eq!(shebang_flags(b"#!lua"), Err(ShebangError::NoNewline));
        assert_eq!(
            shebang_flags(b"#!lua x=1\n"),
            Err(ShebangError::UnknownOption("x=1".into()))
        );
    }
}
