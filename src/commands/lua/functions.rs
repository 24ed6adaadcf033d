//! Redis 7.0 functions (`functions.c`, `function_lua.c`): libraries loaded
//! with FUNCTION LOAD, their functions called with FCALL / FCALL_RO.
//!
//! One Lua VM for every library (Redis's single Lua engine context), with
//! the same runtime API and sandbox as the EVAL VM. Library code is
//! compiled with its own environment table (empty, read-only) whose
//! `__index` points at the load-time API while the library's top level
//! runs (`redis.register_function`, `redis.log`, the `LOG_*` levels and
//! the version fields, nothing else) and at the runtime globals after, so
//! the registered callbacks see the full API, as Redis switches the
//! globals' metatable. Callbacks get `(keys, args)` as their parameters.
//!
//! The library set lives in `Keyspace::functions`; every change is logged
//! as a WAL effect (tags 80-83, `db::effect`) with the library code, and
//! replay loads the code again.

use super::{busy, c_function, lua_tostring, raise_table, script_flags, LuaResult};
use crate::commands::{CmdError, Ctx};
use crate::node::{Client, ClientHandle, Shared};
use bytes::Bytes;
use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The engine name FUNCTION LIST / STATS show.
pub const ENGINE: &str = "LUA";

/// How long a library's top level may run (Redis's `LOAD_TIMEOUT_MS`).
const LOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);
const LOAD_TIMEOUT_MSG: &str = "FUNCTION LOAD timeout";

const NAME_RULES: &str = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

pub use crate::db::engines::FunctionStats;
use crate::db::engines::{FunctionLibrary, LibraryChange, LibraryError};
use crate::db::Keyspace;

/// A registered function.
pub struct FuncInfo {
    pub name: Bytes,
    pub desc: Option<Bytes>,
    /// `script_flags::*`.
    pub flags: u32,
    func: Function,
    /// The name as the run's errors and FUNCTION STATS show it.
    display_name: String,
}

/// A loaded library.
pub struct Library {
    pub name: Bytes,
    /// The whole code as given, shebang included (FUNCTION LIST WITHCODE,
    /// DUMP, the WAL).
    pub code: Bytes,
    pub functions: BTreeMap<Bytes, FuncInfo>,
}

/// A set of libraries (Redis's `functionsLibCtx`).
#[derive(Default)]
struct LibSet {
    libs: BTreeMap<Bytes, Library>,
    /// Function name, lower-cased (Redis's function dict ignores case) ->
    /// its library's name.
    funcs: HashMap<Vec<u8>, Bytes>,
}

impl LibSet {
    /// Function `name` (any case), if it exists.
    fn find(&self, name: &[u8]) -> Option<&FuncInfo> {
        // Lower-cased on the stack for the usual short names (no
        // allocation per FCALL).
        let mut buf = [0u8; 64];
        let lib_name = if name.len() <= buf.len() {
            let lower = &mut buf[..name.len()];
            lower.copy_from_slice(name);
            lower.make_ascii_lowercase();
            self.funcs.get(&*lower)?
        } else {
            self.funcs.get(&name.to_ascii_lowercase())?
        };
        let lib = self.libs.get(lib_name)?;
        lib.functions.get(name).or_else(|| {
            lib.functions
                .values()
                .find(|f| f.name.eq_ignore_ascii_case(name))
        })
    }

    fn link(&mut self, lib: Library) {
        for f in lib.functions.keys() {
            self.funcs.insert(f.to_ascii_lowercase(), lib.name.clone());
        }
        self.libs.insert(lib.name.clone(), lib);
    }

    fn unlink(&mut self, name: &[u8]) -> Option<Library> {
        let lib = self.libs.remove(name)?;
        for f in lib.functions.keys() {
            self.funcs.remove(&f.to_ascii_lowercase());
        }
        Some(lib)
    }

    /// The first function of `lib` that another library already has.
    fn collision(&self, lib: &Library) -> Option<Bytes> {
        lib.functions
            .keys()
            .find(|f| self.funcs.contains_key(&f.to_ascii_lowercase()))
            .cloned()
    }
}

/// The VM and what switching its library environment needs.
struct Engine {
    lua: Lua,
    /// The metatable of the libraries' environment table.
    env_mt: Table,
    env: Table,
    load_index: Function,
    run_index: Table,
    /// `invoke(f, keys, args)`: xpcall of `f(keys, args)` with Redis's
    /// error handler.
    invoke: Function,
    /// `load(chunk)`: pcall of the chunk, errors as they were raised.
    load: Function,
    gc_count: u32,
    /// The heap limit applied to `lua` (`lua_memory_limit`).
    mem_limit: usize,
}

/// A function registered while a library loads.
struct Reg {
    name: Bytes,
    desc: Option<Bytes>,
    flags: u32,
    func: Function,
}

thread_local! {
    /// The functions registered by the library being loaded on this
    /// thread (None outside FUNCTION LOAD).
    static LOADING: RefCell<Option<Vec<Reg>>> = const { RefCell::new(None) };
}

pub use crate::db::engines::RestorePolicy;

/// The libraries and their VM (`Keyspace::functions`).
#[derive(Default)]
pub struct Functions {
    engine: Option<Engine>,
    set: LibSet,
    /// The functions' own client (Redis's engine client).
    client: Option<Client>,
}

impl std::fmt::Debug for Functions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Functions")
            .field("libraries", &self.set.libs.len())
            .finish()
    }
}

impl FunctionLibrary for Functions {
    fn apply(&mut self, change: LibraryChange<'_>) -> Result<(), LibraryError> {
        match change {
            LibraryChange::Load { code, replace } => {
                self.load(code, replace)?;
            }
            LibraryChange::Delete { name } => {
                self.delete(name);
            }
            LibraryChange::Flush => self.flush(),
            LibraryChange::Restore { codes, policy } => self.restore(codes, policy)?,
        }
        Ok(())
    }

    fn stats(&self) -> FunctionStats {
        Functions::stats(self)
    }

    fn codes(&self) -> Vec<Bytes> {
        self.libraries().map(|l| l.code.clone()).collect()
    }

    fn flags_of(&self, name: &[u8]) -> Option<u32> {
        Functions::flags_of(self, name)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

impl Functions {
    /// The keyspace's libraries as this type (there is no other
    /// implementation of `FunctionLibrary`).
    pub fn of(ks: &Keyspace) -> &Functions {
        ks.functions
            .as_any()
            .downcast_ref()
            .expect("Keyspace::functions is scripting::functions::Functions")
    }

    /// [`Functions::of`], mutable.
    pub fn of_mut(ks: &mut Keyspace) -> &mut Functions {
        ks.functions
            .as_any_mut()
            .downcast_mut()
            .expect("Keyspace::functions is scripting::functions::Functions")
    }
}

/// Redis's `functionsVerifyName`.
fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
}

fn c_lossy(b: &[u8]) -> String {
    let z = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..z]).into_owned()
}

/// Why FUNCTION LOAD or RESTORE refused a library: the reply's text
/// after `ERR ` (Redis's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FunctionError {
    #[error("Missing library metadata")]
    MissingMetadata,
    #[error("Invalid library metadata")]
    InvalidMetadata,
    #[error("Invalid metadata value, name argument was given multiple times")]
    NameTwice,
    #[error("Invalid metadata value given: {0}")]
    MetadataValue(String),
    #[error("Library name was not given")]
    NoName,
    #[error("{NAME_RULES}")]
    BadName,
    #[error("Engine '{0}' not found")]
    NoEngine(String),
    /// FUNCTION LOAD without REPLACE.
    #[error("Library '{0}' already exists")]
    LibraryExists(String),
    /// FUNCTION RESTORE APPEND (Redis quotes the name only in LOAD's).
    #[error("Library {0} already exists")]
    RestoredLibraryExists(String),
    #[error("Function {0} already exists")]
    FunctionExists(String),
    #[error("No functions registered")]
    NoFunctions,
    #[error("Error compiling function: {0}")]
    Compile(String),
    /// The library's top level failed (the message has its `ERR `).
    #[error("Error registering functions: {0}")]
    Register(String),
    #[error("Lua initialisation failed: {0}")]
    LuaInit(String),
}

/// Why a FUNCTION RESTORE payload cannot be read (Redis's texts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("DUMP payload version or checksum are wrong")]
    Envelope,
    #[error("can not read data type")]
    DataType,
    /// A field of a library record, named (`library name`, ...).
    #[error("Failed loading {0}")]
    Field(&'static str),
    #[error("Pre-GA function format not supported")]
    PreGa,
    #[error("given type is not a function")]
    NotAFunction,
}

/// Redis's `functionExtractLibMetaData`: (engine, name, offset of the code
/// after the shebang line, its `\n` included).
fn metadata(code: &[u8]) -> Result<(Vec<u8>, Vec<u8>, usize), FunctionError> {
    if !code.starts_with(b"#!") {
        return Err(FunctionError::MissingMetadata);
    }
    // strchr on the C string: a NUL ends the search.
    let z = code.iter().position(|&b| b == 0).unwrap_or(code.len());
    let Some(end) = code[..z].iter().position(|&b| b == b'\n') else {
        return Err(FunctionError::InvalidMetadata);
    };
    let parts = match crate::protocol::parse::split_args(&code[..end]) {
        Some(p) if !p.is_empty() => p,
        _ => return Err(FunctionError::InvalidMetadata),
    };
    let engine = parts[0].get(2..).unwrap_or_default().to_vec();
    let mut name: Option<Vec<u8>> = None;
    for p in &parts[1..] {
        if p.len() >= 5 && p[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err(FunctionError::NameTwice);
            }
            name = Some(p[5..].to_vec());
            continue;
        }
        return Err(FunctionError::MetadataValue(c_lossy(p)));
    }
    let Some(name) = name else {
        return Err(FunctionError::NoName);
    };
    Ok((engine, name, end))
}

/// The library name of `code`, if its metadata parse (for the WAL's
/// readers and tests).
pub fn library_name(code: &[u8]) -> Option<Vec<u8>> {
    metadata(code).ok().map(|(_, n, _)| n)
}

impl Engine {
    fn new() -> mlua::Result<Engine> {
        // SAFETY: the debug library is needed by the error handler and is
        // removed from the globals by the sandbox before any code runs.
        let lua = unsafe {
            Lua::unsafe_new_with(
                StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG,
                LuaOptions::default(),
            )
        };
        lua.set_named_registry_value(super::MARK_KEY, lua.create_table()?)?;
        let globals = lua.globals();
        let redis = lua.create_table()?;
        super::register_redis_api(&lua, &redis)?;
        globals.raw_set("redis", redis.clone())?;
        let math: Table = globals.raw_get("math")?;
        math.raw_set("random", c_function(&lua, super::math_random)?)?;
        math.raw_set("randomseed", c_function(&lua, super::math_randomseed)?)?;
        super::libs::register(&lua, &globals)?;
        let setup = lua
            .load(include_str!("sandbox.lua"))
            .set_name("=sandbox")
            .into_function()?;
        let (handler, proxy): (Function, Table) = setup.call((globals.clone(), Value::Nil))?;
        lua.set_globals(proxy.clone())?;
        let api = lua.create_table()?;
        api.raw_set("register_function", c_function(&lua, register_function)?)?;
        for k in [
            "log",
            "LOG_DEBUG",
            "LOG_VERBOSE",
            "LOG_NOTICE",
            "LOG_WARNING",
            "REDIS_VERSION",
            "REDIS_VERSION_NUM",
        ] {
            api.raw_set(k, redis.raw_get::<Value>(k)?)?;
        }
        let fsetup = lua
            .load(include_str!("functions.lua"))
            .set_name("=sandbox")
            .into_function()?;
        let (env, env_mt, load_index, invoke, load): (Table, Table, Function, Function, Function) =
            fsetup.call((api, handler, proxy.clone()))?;
        Ok(Engine {
            lua,
            env_mt,
            env,
            load_index,
            run_index: proxy,
            invoke,
            load,
            gc_count: 0,
            mem_limit: usize::MAX,
        })
    }

    /// Compiles `code` and runs its top level with the load-time API;
    /// the functions it registered.
    fn create(&mut self, code: &[u8]) -> Result<Vec<Reg>, FunctionError> {
        let func = self
            .lua
            .load(code)
            .set_name("@user_function")
            .set_mode(mlua::chunk::ChunkMode::Text)
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| {
                let msg = match &e {
                    mlua::Error::SyntaxError { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                FunctionError::Compile(msg)
            })?;
        let internal = |e: mlua::Error| FunctionError::Register(format!("ERR {e}"));
        self.env_mt
            .raw_set("__index", self.load_index.clone())
            .map_err(internal)?;
        LOADING.with(|l| *l.borrow_mut() = Some(Vec::new()));
        // Redis's load hook: a top level running past 500 ms is stopped.
        let start = std::time::Instant::now();
        let hooked = self.lua.set_hook(
            mlua::HookTriggers::new().every_nth_instruction(100_000),
            move |_, _| {
                if start.elapsed() > LOAD_TIMEOUT {
                    return Err(mlua::Error::RuntimeError(LOAD_TIMEOUT_MSG.into()));
                }
                Ok(mlua::VmState::Continue)
            },
        );
        let result = match hooked {
            Ok(()) => self.load.call::<MultiValue>(func),
            Err(e) => Err(e),
        };
        self.lua.remove_hook();
        let regs = LOADING.with(|l| l.borrow_mut().take()).unwrap_or_default();
        self.env_mt
            .raw_set("__index", self.run_index.clone())
            .map_err(internal)?;
        let mut vals = result.map_err(internal)?.into_iter();
        if matches!(vals.next(), Some(Value::Boolean(true))) {
            return Ok(regs);
        }
        let err = vals.next().unwrap_or(Value::Nil);
        let msg = match &err {
            Value::Table(t) => t
                .raw_get::<Value>("err")
                .ok()
                .and_then(|m| lua_tostring(&m))
                .map(|m| c_lossy(&m))
                .unwrap_or_default(),
            Value::Error(e) if e.to_string().contains(LOAD_TIMEOUT_MSG) => {
                format!("ERR {LOAD_TIMEOUT_MSG}")
            }
            other => format!(
                "ERR {}",
                lua_tostring(other).map(|m| c_lossy(&m)).unwrap_or_default()
            ),
        };
        Err(FunctionError::Register(msg))
    }
}

/// `redis.register_function` (Redis's `luaRegisterFunction`).
fn register_function(lua: &Lua, a: MultiValue) -> LuaResult {
    let loading = LOADING.with(|l| l.borrow().is_some());
    if !loading {
        return Err(raise_table(
            lua,
            "redis.register_function can only be called on FUNCTION LOAD command",
        ));
    }
    let reg = read_register_args(lua, &a).map_err(|m| raise_table(lua, m))?;
    if !valid_name(&reg.name) {
        return Err(raise_table(lua, NAME_RULES));
    }
    let dup = LOADING.with(|l| {
        let mut l = l.borrow_mut();
        let regs = l.get_or_insert_with(Vec::new);
        if regs.iter().any(|r| r.name == reg.name) {
            return true;
        }
        regs.push(reg);
        false
    });
    if dup {
        return Err(raise_table(lua, "Function already exists in the library"));
    }
    Ok(MultiValue::new())
}

/// `lua_isstring` then `lua_tolstring`: strings and numbers.
fn string_arg(v: &Value) -> Option<Bytes> {
    match v {
        Value::String(_) | Value::Integer(_) | Value::Number(_) => lua_tostring(v).map(Bytes::from),
        _ => None,
    }
}

fn read_register_args(_lua: &Lua, a: &MultiValue) -> Result<Reg, &'static str> {
    if a.is_empty() || a.len() > 2 {
        return Err("wrong number of arguments to redis.register_function");
    }
    if a.len() == 2 {
        let Some(name) = string_arg(&a[0]) else {
            return Err("first argument to redis.register_function must be a string");
        };
        let Value::Function(f) = &a[1] else {
            return Err("second argument to redis.register_function must be a function");
        };
        return Ok(Reg {
            name,
            desc: None,
            flags: 0,
            func: f.clone(),
        });
    }
    let Value::Table(t) = &a[0] else {
        return Err("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).");
    };
    let (mut name, mut desc, mut func, mut flags) = (None, None, None, 0u32);
    for pair in t.clone().pairs::<Value, Value>() {
        let Ok((k, v)) = pair else {
            return Err("unknown argument given to redis.register_function");
        };
        let Some(key) = string_arg(&k) else {
            return Err("named argument key given to redis.register_function is not a string");
        };
        let key = c_lossy(&key);
        if key.eq_ignore_ascii_case("function_name") {
            name = Some(string_arg(&v).ok_or(
                "function_name argument given to redis.register_function must be a string",
            )?);
        } else if key.eq_ignore_ascii_case("description") {
            desc =
                Some(string_arg(&v).ok_or(
                    "description argument given to redis.register_function must be a string",
                )?);
        } else if key.eq_ignore_ascii_case("callback") {
            let Value::Function(f) = v else {
                return Err(
                    "callback argument given to redis.register_function must be a function",
                );
            };
            func = Some(f);
        } else if key.eq_ignore_ascii_case("flags") {
            let Value::Table(ft) = v else {
                return Err("flags argument to redis.register_function must be a table representing function flags");
            };
            flags = read_flags(&ft).ok_or("unknown flag given")?;
        } else {
            return Err("unknown argument given to redis.register_function");
        }
    }
    let Some(name) = name else {
        return Err("redis.register_function must get a function name argument");
    };
    let Some(func) = func else {
        return Err("redis.register_function must get a callback argument");
    };
    Ok(Reg {
        name,
        desc,
        flags,
        func,
    })
}

/// Redis's `luaRegisterFunctionReadFlags`: `t[1]`, `t[2]`... up to the
/// first nil, each a known flag (any case).
fn read_flags(t: &Table) -> Option<u32> {
    let mut flags = 0;
    let mut j = 1i64;
    loop {
        let v: Value = t.get(j).ok()?;
        j += 1;
        if v.is_nil() {
            return Some(flags);
        }
        let s = string_arg(&v)?;
        let s = c_lossy(&s);
        let (bit, _) = script_flags::NAMES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(&s))?;
        flags |= bit;
    }
}

/// What a FUNCTION RESTORE payload holds: the library codes in order.
pub fn parse_payload(payload: &[u8]) -> Result<Vec<Bytes>, PayloadError> {
    if crate::rdb::check_envelope(payload).is_none() {
        return Err(PayloadError::Envelope);
    }
    // As Redis, reads go on while more than the 10-byte footer is left,
    // and a read may run into the footer.
    let mut r = crate::rdb::Reader::new(payload);
    let mut codes = Vec::new();
    while r.remaining() > 10 {
        match r.u8() {
            Err(_) => return Err(PayloadError::DataType),
            Ok(246) => {
                // The 7.0 release candidates' format: name, engine,
                // optional description, code.
                let failed = |field| move |_| PayloadError::Field(field);
                r.string().map_err(failed("library name"))?;
                r.string().map_err(failed("engine name"))?;
                let has_desc = r.len().map_err(failed("library description indicator"))?;
                if has_desc != 0 {
                    r.string().map_err(failed("library description"))?;
                }
                r.string().map_err(failed("library payload"))?;
                return Err(PayloadError::PreGa);
            }
            Ok(245) => {}
            Ok(_) => return Err(PayloadError::NotAFunction),
        }
        let Ok(code) = r.string() else {
            return Err(PayloadError::Field("library payload"));
        };
        codes.push(Bytes::from(code));
    }
    Ok(codes)
}

impl Functions {
    fn engine(&mut self) -> Result<&mut Engine, FunctionError> {
        let engine = match self.engine.take() {
            Some(e) => e,
            None => Engine::new().map_err(|e| FunctionError::LuaInit(e.to_string()))?,
        };
        Ok(self.engine.insert(engine))
    }

    pub fn stats(&self) -> FunctionStats {
        let mut memory = 232;
        for lib in self.set.libs.values() {
            memory += 64 + lib.name.len() + lib.code.len();
            for f in lib.functions.values() {
                memory += 72 + f.name.len() + f.desc.as_ref().map_or(0, |d| d.len());
            }
        }
        FunctionStats {
            vm_memory: self.vm_memory(),
            memory,
            functions: self.set.funcs.len(),
            libraries: self.set.libs.len(),
        }
    }

    /// `used_memory_vm_functions`: the functions VM's heap in whole KiB.
    pub fn vm_memory(&self) -> usize {
        self.engine
            .as_ref()
            .map_or(0, |e| e.lua.used_memory() / 1024 * 1024)
    }

    pub fn libraries(&self) -> impl Iterator<Item = &Library> {
        self.set.libs.values()
    }

    /// The library `code` in a new `Library` (not linked): Redis's
    /// `functionsCreateWithLibraryCtx` up to the checks against `set`.
    fn compile(&mut self, code: &Bytes) -> Result<Library, FunctionError> {
        let (engine, name, end) = metadata(code)?;
        if !valid_name(&name) {
            return Err(FunctionError::BadName);
        }
        if !engine.eq_ignore_ascii_case(b"lua") {
            return Err(FunctionError::NoEngine(c_lossy(&engine)));
        }
        let regs = self.engine()?.create(&code[end..])?;
        if regs.is_empty() {
            return Err(FunctionError::NoFunctions);
        }
        let functions = regs
            .into_iter()
            .map(|r| {
                (
                    r.name.clone(),
                    FuncInfo {
                        display_name: c_lossy(&r.name),
                        name: r.name,
                        desc: r.desc,
                        flags: r.flags,
                        func: r.func,
                    },
                )
            })
            .collect();
        Ok(Library {
            name: Bytes::from(name),
            code: code.clone(),
            functions,
        })
    }

    /// FUNCTION LOAD [REPLACE]: the library's name, or the error text
    /// (without the ERR code).
    pub fn load(&mut self, code: &Bytes, replace: bool) -> Result<Bytes, FunctionError> {
        let mut set = std::mem::take(&mut self.set);
        let r = self.load_into(&mut set, code, replace);
        self.set = set;
        r
    }

    fn load_into(
        &mut self,
        set: &mut LibSet,
        code: &Bytes,
        replace: bool,
    ) -> Result<Bytes, FunctionError> {
        // The checks before compiling, in Redis's order.
        let (engine, name, _) = metadata(code)?;
        if !valid_name(&name) {
            return Err(FunctionError::BadName);
        }
        if !engine.eq_ignore_ascii_case(b"lua") {
            return Err(FunctionError::NoEngine(c_lossy(&engine)));
        }
        if set.libs.contains_key(name.as_slice()) && !replace {
            return Err(FunctionError::LibraryExists(c_lossy(&name)));
        }
        let old = set.unlink(&name);
        let lib = match self.compile(code) {
            Ok(lib) => lib,
            Err(e) => {
                if let Some(o) = old {
                    set.link(o);
                }
                return Err(e);
            }
        };
        if let Some(f) = set.collision(&lib) {
            if let Some(o) = old {
                set.link(o);
            }
            return Err(FunctionError::FunctionExists(c_lossy(&f)));
        }
        let name = lib.name.clone();
        set.link(lib);
        Ok(name)
    }

    /// FUNCTION DELETE: false when there is no such library.
    pub fn delete(&mut self, name: &[u8]) -> bool {
        self.set.unlink(name).is_some()
    }

    /// FUNCTION FLUSH: no libraries, a new VM.
    pub fn flush(&mut self) {
        self.set = LibSet::default();
        self.engine = None;
    }

    /// FUNCTION DUMP's payload.
    pub fn dump(&self) -> Vec<u8> {
        let mut w = crate::rdb::Writer::new();
        for lib in self.set.libs.values() {
            w.u8(245);
            w.string(&lib.code);
        }
        crate::rdb::dump_envelope(w.buf)
    }

    /// FUNCTION RESTORE of the library `codes` (Redis's
    /// `functionRestoreCommand` after the payload is read).
    pub fn restore(&mut self, codes: &[Bytes], policy: RestorePolicy) -> Result<(), FunctionError> {
        let mut fresh = LibSet::default();
        for code in codes {
            self.load_into(&mut fresh, code, false)?;
        }
        if policy == RestorePolicy::Flush {
            self.set = fresh;
            return Ok(());
        }
        // libraryJoin.
        let mut old = Vec::new();
        let revert = |set: &mut LibSet, old: Vec<Library>| {
            for o in old {
                set.link(o);
            }
        };
        for name in fresh.libs.keys() {
            if self.set.libs.contains_key(name) {
                if policy == RestorePolicy::Append {
                    revert(&mut self.set, old);
                    return Err(FunctionError::RestoredLibraryExists(c_lossy(name)));
                }
                if let Some(o) = self.set.unlink(name) {
                    old.push(o);
                }
            }
        }
        if let Some(f) = fresh.libs.values().find_map(|l| self.set.collision(l)) {
            revert(&mut self.set, old);
            return Err(FunctionError::FunctionExists(c_lossy(&f)));
        }
        for (_, lib) in std::mem::take(&mut fresh.libs) {
            self.set.link(lib);
        }
        Ok(())
    }

    /// Function `name` (any case), if it exists.
    fn find(&self, name: &[u8]) -> Option<&FuncInfo> {
        self.set.find(name)
    }

    /// The flags of function `name` (any case), if it exists.
    pub fn flags_of(&self, name: &[u8]) -> Option<u32> {
        self.find(name).map(|f| f.flags)
    }

    /// Runs function `name` for the FCALL in `ctx` (it exists: see
    /// `flags_of`), writing its reply or returning its error.
    pub fn call(
        &mut self,
        ctx: &mut Ctx,
        command: &[Bytes],
        keys: &[Bytes],
        args: &[Bytes],
        read_only: bool,
    ) -> Result<(), CmdError> {
        let name: &[u8] = &command[1];
        // Borrowed, not cloned: the set is not changed while it runs.
        let Some(f) = self.set.find(name) else {
            return Err(CmdError::new("ERR Function not found"));
        };
        let func = &f.func;
        let allow_oom = f.flags & script_flags::ALLOW_OOM != 0;
        let client = self.client.get_or_insert_with(|| new_client(ctx.shared));
        let Some(engine) = self.engine.as_mut() else {
            return Err(CmdError::new("ERR Function not found"));
        };
        let lua = engine.lua.clone();
        let internal = |e: mlua::Error| CmdError::new(format!("ERR {e}"));
        let mk = |items: &[Bytes]| -> mlua::Result<Table> {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, a) in items.iter().enumerate() {
                t.raw_seti(i + 1, lua.create_string(a)?)?;
            }
            Ok(t)
        };
        let keys_t = mk(keys).map_err(internal)?;
        let args_t = mk(args).map_err(internal)?;
        let spec = super::RunSpec {
            kind: busy::Kind::Function,
            command,
            name: &f.display_name,
            read_only,
            allow_oom,
        };
        let invoke = &engine.invoke;
        super::run_script(
            ctx,
            client,
            &lua,
            &mut engine.gc_count,
            &mut engine.mem_limit,
            spec,
            || invoke.call::<MultiValue>((func, keys_t, args_t)),
        )
    }
}

fn new_client(shared: &Shared) -> Client {
    let id = shared.next_client_id.fetch_add(1, Ordering::Relaxed);
    let none: std::net::SocketAddr = ([0, 0, 0, 0], 0).into();
    let handle = Arc::new(ClientHandle::new(id, none, none, -1));
    let mut client = Client::new(handle, true);
    client.in_exec = true;
    client.in_script = true;
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `FUNCTION DUMP` of redis-server 7.0.15 with one library, the code
    /// stored as it is (LZF would not save 4 bytes).
    const REDIS_DUMP: &[u8] = b"\xf5\x40\x4c#!lua name=mylib\nredis.register_function('myfunc', function() return 1 end)\n\n\x00\xf9\x8d\xf5\x17\xd0\x1a\x40\xa5";

    /// The same with a longer library, whose code Redis stores LZF-compressed.
    const REDIS_DUMP_LZF: &[u8] = b"\xf5\xc3\x40\x57\x40\xeb\x1f\x23\x21\x6c\x75\x61\x20\x6e\x61\x6d\x65\x3d\x62\x69\x67\x0a\x72\x65\x64\x69\x73\x2e\x72\x65\x67\x69\x73\x74\x65\x72\x5f\x66\x75\x0c\x6e\x63\x74\x69\x6f\x6e\x28\x27\x66\x31\x27\x2c\x20\xe0\x00\x0e\x0e\x29\x20\x72\x65\x74\x75\x72\x6e\x20\x31\x20\x65\x6e\x64\x29\xe0\x12\x36\x00\x32\xe0\x2d\x36\x00\x33\xe0\x2d\x36\x00\x34\xe0\x11\x36\x01\x29\x0a\x0a\x00\xb7\x5b\xa3\xab\xb3\x97\xb6\x43";

    /// A payload's one library, checked to re-encode to the same bytes.
    fn library(p: &[u8]) -> Vec<u8> {
        let codes = parse_payload(p).expect("valid payload");
        assert_eq!(codes.len(), 1);
        let mut w = crate::rdb::Writer::new();
        w.u8(245);
        w.string(&codes[0]);
        assert_eq!(
            crate::rdb::dump_envelope(w.buf),
            p,
            "re-encoded as Redis does"
        );
        codes[0].to_vec()
    }

    #[test]
    fn redis_payloads_open_and_round_trip() {
        assert_eq!(
            library(REDIS_DUMP),
            b"#!lua name=mylib\nredis.register_function('myfunc', function() return 1 end)\n"
        );
        let code = library(REDIS_DUMP_LZF);
        assert!(code.starts_with(b"#!lua name=big\n"));
        assert!(code.ends_with(b"redis.register_function('f4', function() return 1 end)\n"));
        let mut bad = REDIS_DUMP.to_vec();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert_eq!(
            parse_payload(&bad).unwrap_err().to_string(),
            "DUMP payload version or checksum are wrong"
        );
    }

    fn code(s: &str) -> Bytes {
        Bytes::from(s.to_string())
    }

    #[test]
    fn metadata_errors_as_redis() {
        assert_eq!(
            metadata(b"x").unwrap_err().to_string(),
            "Missing library metadata"
        );
        assert_eq!(
            metadata(b"#!lua").unwrap_err().to_string(),
            "Invalid library metadata"
        );
        assert_eq!(
            metadata(b"#!lua\nx").unwrap_err().to_string(),
            "Library name was not given"
        );
        assert_eq!(
            metadata(b"#!lua name=a foo=b\n").unwrap_err().to_string(),
            "Invalid metadata value given: foo=b"
        );
        assert_eq!(
            metadata(b"#!lua name=a NAME=b\n").unwrap_err().to_string(),
            "Invalid metadata value, name argument was given multiple times"
        );
        assert_eq!(
            metadata(b"#!LUA name=abc\nx").unwrap(),
            (b"LUA".to_vec(), b"abc".to_vec(), 14)
        );
    }

    #[test]
    fn load_register_and_errors() {
        let mut f = Functions::default();
        let lib = "#!lua name=lib1\nredis.register_function('f1', function(k, a) return 1 end)\nredis.register_function{function_name='f2', callback=function() end, flags={'no-writes', 'ALLOW-OOM'}, description='d'}";
        assert_eq!(f.load(&code(lib), false).unwrap(), "lib1");
        assert_eq!(
            f.load(&code(lib), false).unwrap_err().to_string(),
            "Library 'lib1' already exists"
        );
        assert_eq!(f.load(&code(lib), true).unwrap(), "lib1");
        assert_eq!(
            f.flags_of(b"f2"),
            Some(script_flags::NO_WRITES | script_flags::ALLOW_OOM)
        );
        assert_eq!(
            f.load(
                &code("#!lua name=lib2\nredis.register_function('f1', function() end)"),
                false
            )
            .unwrap_err()
            .to_string(),
            "Function f1 already exists"
        );
        for (body, err) in [
            ("local x = string.len('a')", "Error registering functions: ERR user_function:2: Script attempted to access nonexistent global variable 'string'"),
            ("return redis.call('ping')", "Error registering functions: ERR user_function:2: Script attempted to access nonexistent global variable 'call'"),
            ("foo = 1", "Error registering functions: ERR user_function:2: Attempt to modify a readonly table"),
            ("redis.register_function('a')", "Error registering functions: ERR calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments)."),
            ("redis.register_function('a b', function() end)", "Error registering functions: ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"),
            ("redis.register_function('a', function() end) redis.register_function('a', function() end)", "Error registering functions: ERR Function already exists in the library"),
            ("redis.register_function{function_name='a', callback=function() end, flags={'bad'}}", "Error registering functions: ERR unknown flag given"),
            ("local x = 1", "No functions registered"),
            ("x(", "Error compiling function: user_function:2: unexpected symbol near '<eof>'"),
            ("while true do end", "Error registering functions: ERR FUNCTION LOAD timeout"),
        ] {
            let c = format!("#!lua name=bad\n{body}");
            assert_eq!(f.load(&code(&c), false).unwrap_err().to_string(), err, "{body}");
        }
        assert_eq!(f.stats().libraries, 1);
        assert_eq!(f.stats().functions, 2);
        // DUMP then RESTORE into a fresh set.
        let dump = f.dump();
        let codes = parse_payload(&dump).unwrap();
        let mut g = Functions::default();
        g.restore(&codes, RestorePolicy::Append).unwrap();
        assert_eq!(g.stats().functions, 2);
        assert_eq!(
            g.restore(&codes, RestorePolicy::Append)
                .unwrap_err()
                .to_string(),
            "Library lib1 already exists"
        );
        g.restore(&codes, RestorePolicy::Replace).unwrap();
        assert!(g.delete(b"lib1"));
        assert!(!g.delete(b"lib1"));
        assert_eq!(g.stats().functions, 0);
    }
}
