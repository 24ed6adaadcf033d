//! `cjson`: lua-cjson 2.1.0 as Redis 7.0 vendors it (`deps/lua/src/lua_cjson.c`),
//! written in Rust: `encode`, `decode`, `null`, `new` and the settings
//! functions (`encode_sparse_array`, `encode_max_depth`, `decode_max_depth`,
//! `encode_number_precision`, `encode_keep_buffer`,
//! `encode_invalid_numbers`, `decode_invalid_numbers`).
//!
//! Each module table has its own settings (lua-cjson's `json_config_t`, the
//! functions' shared upvalue): the global `cjson` keeps them for the life of
//! its VM (until SCRIPT FLUSH for EVAL, FUNCTION FLUSH for functions);
//! `cjson.new()` makes a module with the defaults.
//!
//! Encoding and decoding are iterative (explicit stacks), so a high
//! `*_max_depth` cannot overflow the Rust stack; the nesting limit Lua's
//! `lua_checkstack` puts on the C version (`LUAI_MAXCSTACK`, 8000 slots) is
//! counted the same way, so the errors come at the same depth.

use super::convert::fmt_g;
use super::convert::{null, type_name};
use super::{c_function, LuaResult, Raise};
use crate::commands::zsets::float::strtod;
use mlua::{ffi, Lua, MultiValue, Table, Value};
use parking_lot::Mutex;
use std::sync::Arc;

/// Lua 5.1's `LUAI_MAXCSTACK`: `lua_checkstack` fails past it.
const MAX_C_STACK: usize = 8000;

/// lua-cjson's `json_config_t` (the settings; the token tables are code).
#[derive(Clone, Copy, Debug)]
struct Cfg {
    sparse_convert: i32,
    sparse_ratio: i32,
    sparse_safe: i32,
    encode_max_depth: i32,
    decode_max_depth: i32,
    /// 0 refuse, 1 encode (`nan`, `inf`), 2 encode as `null`.
    encode_invalid_numbers: i32,
    decode_invalid_numbers: i32,
    keep_buffer: i32,
    precision: i32,
}

impl Default for Cfg {
    fn default() -> Self {
        Cfg {
            sparse_convert: 0,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            encode_invalid_numbers: 0,
            decode_invalid_numbers: 1,
            keep_buffer: 1,
            precision: 14,
        }
    }
}

type Shared = Arc<Mutex<Cfg>>;

/// lua-cjson's `lua_cjson_new`: a module table with its own settings.
pub fn new_module(lua: &Lua) -> mlua::Result<Table> {
    let cfg: Shared = Arc::new(Mutex::new(Cfg::default()));
    let t = lua.create_table()?;
    let c = cfg.clone();
    t.raw_set(
        "encode",
        c_function(lua, move |lua, a| encode(lua, a, *c.lock()))?,
    )?;
    let c = cfg.clone();
    t.raw_set(
        "decode",
        c_function(lua, move |lua, a| decode(lua, a, *c.lock()))?,
    )?;
    let c = cfg.clone();
    t.raw_set(
        "encode_sparse_array",
        c_function(lua, move |lua, a| {
            arg_init(&a, 3)?;
            let mut g = c.lock();
            let convert = enum_option(lua, &a, 0, &mut g.sparse_convert, BOOL_OPTIONS)?;
            let ratio = integer_option(&a, 1, &mut g.sparse_ratio, 0, i32::MAX)?;
            let safe = integer_option(&a, 2, &mut g.sparse_safe, 0, i32::MAX)?;
            Ok(MultiValue::from_iter([convert, ratio, safe]))
        })?,
    )?;
    let int_setting = |f: fn(&mut Cfg) -> &mut i32, min: i32, max: i32| {
        let c = cfg.clone();
        c_function(lua, move |_, a| {
            arg_init(&a, 1)?;
            let mut g = c.lock();
            let v = integer_option(&a, 0, f(&mut g), min, max)?;
            Ok(MultiValue::from_iter([v]))
        })
    };
    t.raw_set(
        "encode_max_depth",
        int_setting(|c| &mut c.encode_max_depth, 1, i32::MAX)?,
    )?;
    t.raw_set(
        "decode_max_depth",
        int_setting(|c| &mut c.decode_max_depth, 1, i32::MAX)?,
    )?;
    t.raw_set(
        "encode_number_precision",
        int_setting(|c| &mut c.precision, 1, 14)?,
    )?;
    let enum_setting = |f: fn(&mut Cfg) -> &mut i32, options: &'static [&'static str]| {
        let c = cfg.clone();
        c_function(lua, move |lua, a| {
            arg_init(&a, 1)?;
            let mut g = c.lock();
            let v = enum_option(lua, &a, 0, f(&mut g), options)?;
            Ok(MultiValue::from_iter([v]))
        })
    };
    // The buffer it keeps or not is an allocation detail: only the
    // setting is observable.
    t.raw_set(
        "encode_keep_buffer",
        enum_setting(|c| &mut c.keep_buffer, BOOL_OPTIONS)?,
    )?;
    t.raw_set(
        "encode_invalid_numbers",
        enum_setting(|c| &mut c.encode_invalid_numbers, &["off", "on", "null"])?,
    )?;
    t.raw_set(
        "decode_invalid_numbers",
        enum_setting(|c| &mut c.decode_invalid_numbers, BOOL_OPTIONS)?,
    )?;
    t.raw_set(
        "new",
        c_function(lua, |lua, _| {
            Ok(MultiValue::from_iter([Value::Table(
                new_module(lua).map_err(lua_err)?,
            )]))
        })?,
    )?;
    t.raw_set("null", null())?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    Ok(t)
}

fn lua_err(e: mlua::Error) -> Raise {
    Raise::Msg(e.to_string())
}

const BOOL_OPTIONS: &[&str] = &["off", "on"];

/// `json_arg_init`: at most `n` arguments.
fn arg_init(a: &MultiValue, n: usize) -> Result<(), Raise> {
    if a.len() > n {
        return Err(Raise::Arg(n as i32 + 1, "found too many arguments".into()));
    }
    Ok(())
}

fn given(a: &MultiValue, i: usize) -> Option<&Value> {
    a.get(i).filter(|v| !matches!(v, Value::Nil))
}

/// Lua 5.1's `lua_tonumber` (numbers, and strings `strtod` reads whole
/// but for trailing spaces).
fn to_number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        Value::String(s) => {
            let b = s.as_bytes();
            let r = strtod(&b);
            if r.consumed == 0 {
                return None;
            }
            let rest = &b[r.consumed..];
            rest.iter()
                .all(|&c| crate::protocol::parse::is_c_space(c))
                .then_some(r.value)
        }
        _ => None,
    }
}

/// `json_integer_option`: `luaL_checkinteger`, the range check (reported
/// as argument #1, as lua-cjson does), then the current value.
fn integer_option(
    a: &MultiValue,
    i: usize,
    setting: &mut i32,
    min: i32,
    max: i32,
) -> Result<Value, Raise> {
    if let Some(v) = given(a, i) {
        let Some(n) = to_number(v) else {
            return Err(Raise::Arg(
                i as i32 + 1,
                format!("number expected, got {}", type_name(Some(v))),
            ));
        };
        // lua_tointeger truncates; lua-cjson keeps an int.
        let value = if n.is_finite() {
            n as i64 as i32
        } else {
            i32::MIN
        };
        if !(min <= value && value <= max) {
            return Err(Raise::Arg(
                1,
                format!("expected integer between {min} and {max}"),
            ));
        }
        *setting = value;
    }
    Ok(Value::Integer(*setting as mlua::Integer))
}

/// `json_enum_option` (`bool_true` 1: a boolean sets 0 or 1, and those
/// values read back as booleans).
fn enum_option(
    lua: &Lua,
    a: &MultiValue,
    i: usize,
    setting: &mut i32,
    options: &[&str],
) -> Result<Value, Raise> {
    if let Some(v) = given(a, i) {
        match v {
            Value::Boolean(b) => *setting = *b as i32,
            _ => {
                let name: Vec<u8> = match v {
                    Value::String(s) => s.as_bytes().to_vec(),
                    Value::Integer(n) => fmt_g(*n as f64, 14).into_bytes(),
                    Value::Number(n) => fmt_g(*n, 14).into_bytes(),
                    other => {
                        return Err(Raise::Arg(
                            i as i32 + 1,
                            format!("string expected, got {}", type_name(Some(other))),
                        ))
                    }
                };
                // luaL_checkoption compares C strings.
                let name = match name.iter().position(|&c| c == 0) {
                    Some(p) => &name[..p],
                    None => &name[..],
                };
                match options.iter().position(|o| o.as_bytes() == name) {
                    Some(p) => *setting = p as i32,
                    None => {
                        return Err(Raise::Arg(
                            i as i32 + 1,
                            format!("invalid option '{}'", String::from_utf8_lossy(name)),
                        ))
                    }
                }
            }
        }
    }
    if *setting == 0 || *setting == 1 {
        Ok(Value::Boolean(*setting == 1))
    } else {
        let s = options.get(*setting as usize).copied().unwrap_or("");
        Ok(Value::String(lua.create_string(s).map_err(lua_err)?))
    }
}

// ---- encode ----

fn encode(lua: &Lua, a: MultiValue, cfg: Cfg) -> LuaResult {
    if a.len() != 1 {
        return Err(Raise::Arg(1, "expected 1 argument".into()));
    }
    let out = encode_value(lua, &a[0], &cfg)?;
    let s = lua.create_string(&out).map_err(lua_err)?;
    Ok(MultiValue::from_iter([Value::String(s)]))
}

fn encode_number(n: f64, cfg: &Cfg, out: &mut Vec<u8>) -> Result<(), Raise> {
    match cfg.encode_invalid_numbers {
        0 => {
            if !n.is_finite() {
                return Err(Raise::Msg(
                    "Cannot serialise number: must not be NaN or Inf".into(),
                ));
            }
        }
        1 => {
            if n.is_nan() {
                out.extend_from_slice(b"nan");
                return Ok(());
            }
        }
        _ => {
            if !n.is_finite() {
                out.extend_from_slice(b"null");
                return Ok(());
            }
        }
    }
    out.extend_from_slice(fmt_g(n, cfg.precision.clamp(1, 14) as usize).as_bytes());
    Ok(())
}

fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\x08' => out.extend_from_slice(b"\\b"),
            b'\x0c' => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            c if c < 0x20 || c == 0x7f => {
                out.extend_from_slice(format!("\\u{:04x}", c).as_bytes());
            }
            c => out.push(c),
        }
    }
    out.push(b'"');
}

/// lua-cjson's `lua_array_length` of the table on the top of the stack:
/// the array length (max index; 0 for an empty table), or None for an
/// object. An excessively sparse array is an error, or an object with
/// `encode_sparse_array(true)`. Leaves the stack as it found it.
///
/// # Safety
/// `l` has a table on its top and 2 free slots.
unsafe fn array_length(l: *mut ffi::lua_State, cfg: &Cfg) -> Result<Option<i32>, Raise> {
    let mut max: i32 = 0;
    let mut items: i32 = 0;
    ffi::lua_pushnil(l);
    while ffi::lua_next(l, -2) != 0 {
        if ffi::lua_type(l, -2) == ffi::LUA_TNUMBER {
            let k = ffi::lua_tonumber(l, -2);
            if k != 0.0 && k.floor() == k && k >= 1.0 {
                if k > max as f64 {
                    // C's `max = k` (int); out of range is INT_MIN on x86.
                    max = if k < 2147483648.0 { k as i32 } else { i32::MIN };
                }
                items = items.wrapping_add(1);
                ffi::lua_pop(l, 1);
                continue;
            }
        }
        ffi::lua_pop(l, 2);
        return Ok(None);
    }
    if cfg.sparse_ratio > 0 && max > items.wrapping_mul(cfg.sparse_ratio) && max > cfg.sparse_safe {
        if cfg.sparse_convert == 0 {
            return Err(Raise::Msg(
                "Cannot serialise table: excessively sparse array".into(),
            ));
        }
        return Ok(None);
    }
    Ok(Some(max))
}

/// An open table: the table is on the Lua stack (an object's current key
/// above it), as in lua-cjson's recursion.
struct EncFrame {
    /// The array length, or None for an object.
    len: Option<i32>,
    /// The next array index / whether an object member was written.
    i: i32,
}

/// `lua_typename` of the value at `idx`.
unsafe fn typename_at(l: *mut ffi::lua_State, idx: i32) -> String {
    let p = ffi::lua_typename(l, ffi::lua_type(l, idx));
    std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
}

/// The string at `idx` (a string value: no conversion).
unsafe fn str_at<'a>(l: *mut ffi::lua_State, idx: i32) -> &'a [u8] {
    let mut len = 0usize;
    let p = ffi::lua_tolstring(l, idx, &mut len);
    if p.is_null() {
        return &[];
    }
    std::slice::from_raw_parts(p as *const u8, len)
}

/// lua-cjson's `json_append_data` over the value on the top of the stack,
/// iterative (the open tables stay on the Lua stack as in the C version,
/// so `lua_checkstack` fails at the same depth).
///
/// # Safety
/// `l` has the value on its top; only non-raising C API calls are made
/// but for `lua_checkstack` (memory errors are caught by `exec_raw`).
unsafe fn encode_raw(l: *mut ffi::lua_State, cfg: &Cfg, out: &mut Vec<u8>) -> Result<(), Raise> {
    let mut frames: Vec<EncFrame> = Vec::new();
    loop {
        // Encode the value on the top: a scalar is popped, a table opens a
        // frame and stays.
        match ffi::lua_type(l, -1) {
            ffi::LUA_TSTRING => {
                encode_string(str_at(l, -1), out);
                ffi::lua_pop(l, 1);
            }
            ffi::LUA_TNUMBER => {
                encode_number(ffi::lua_tonumber(l, -1), cfg, out)?;
                ffi::lua_pop(l, 1);
            }
            ffi::LUA_TBOOLEAN => {
                out.extend_from_slice(if ffi::lua_toboolean(l, -1) != 0 {
                    b"true"
                } else {
                    b"false"
                });
                ffi::lua_pop(l, 1);
            }
            ffi::LUA_TNIL => {
                out.extend_from_slice(b"null");
                ffi::lua_pop(l, 1);
            }
            ffi::LUA_TLIGHTUSERDATA if ffi::lua_touserdata(l, -1).is_null() => {
                out.extend_from_slice(b"null");
                ffi::lua_pop(l, 1);
            }
            ffi::LUA_TTABLE => {
                let depth = frames.len() + 1;
                if depth > cfg.encode_max_depth as usize || ffi::lua_checkstack(l, 3) == 0 {
                    return Err(Raise::Msg(format!(
                        "Cannot serialise, excessive nesting ({depth})"
                    )));
                }
                match array_length(l, cfg)? {
                    Some(len) if len > 0 => {
                        out.push(b'[');
                        frames.push(EncFrame {
                            len: Some(len),
                            i: 1,
                        });
                    }
                    _ => {
                        out.push(b'{');
                        ffi::lua_pushnil(l);
                        frames.push(EncFrame { len: None, i: 0 });
                    }
                }
            }
            _ => {
                return Err(Raise::Msg(format!(
                    "Cannot serialise {}: type not supported",
                    typename_at(l, -1)
                )))
            }
        }
        // Push the next value to encode, closing finished tables.
        loop {
            let Some(f) = frames.last_mut() else {
                return Ok(());
            };
            match f.len {
                Some(len) => {
                    if f.i > len {
                        out.push(b']');
                        ffi::lua_pop(l, 1);
                        frames.pop();
                        continue;
                    }
                    if f.i > 1 {
                        out.push(b',');
                    }
                    ffi::lua_rawgeti(l, -1, f.i as _);
                    f.i += 1;
                    break;
                }
                None => {
                    // Stack: table, key.
                    if ffi::lua_next(l, -2) == 0 {
                        out.push(b'}');
                        ffi::lua_pop(l, 1);
                        frames.pop();
                        continue;
                    }
                    if f.i != 0 {
                        out.push(b',');
                    }
                    f.i = 1;
                    match ffi::lua_type(l, -2) {
                        ffi::LUA_TNUMBER => {
                            out.push(b'"');
                            encode_number(ffi::lua_tonumber(l, -2), cfg, out)?;
                            out.extend_from_slice(b"\":");
                        }
                        ffi::LUA_TSTRING => {
                            encode_string(str_at(l, -2), out);
                            out.push(b':');
                        }
                        _ => {
                            return Err(Raise::Msg(format!(
                                "Cannot serialise {}: table key must be a number or string",
                                typename_at(l, -2)
                            )))
                        }
                    }
                    break;
                }
            }
        }
    }
}

fn encode_value(lua: &Lua, v: &Value, cfg: &Cfg) -> Result<Vec<u8>, Raise> {
    let mut out = Vec::new();
    let mut result = Ok(());
    // SAFETY: `exec_raw` runs the closure in a protected C frame with `v`
    // on its stack; `encode_raw` keeps to the stack discipline above.
    unsafe {
        lua.exec_raw::<()>(v, |l| {
            result = encode_raw(l, cfg, &mut out);
        })
    }
    .map_err(lua_err)?;
    result.map(|()| out)
}

// ---- decode ----

fn decode(lua: &Lua, a: MultiValue, cfg: Cfg) -> LuaResult {
    if a.len() != 1 {
        return Err(Raise::Arg(1, "expected 1 argument".into()));
    }
    let text = match &a[0] {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Integer(i) => fmt_g(*i as f64, 14).into_bytes(),
        Value::Number(n) => fmt_g(*n, 14).into_bytes(),
        other => {
            return Err(Raise::Arg(
                1,
                format!("string expected, got {}", type_name(Some(other))),
            ))
        }
    };
    if text.len() >= 2 && (text[0] == 0 || text[1] == 0) {
        return Err(Raise::Msg(
            "JSON parser does not support UTF-16 or UTF-32".into(),
        ));
    }
    let mut p = Json {
        b: &text,
        ptr: 0,
        cfg,
        lua,
        spill: None,
    };
    let v = p.parse()?;
    Ok(MultiValue::from_iter([v]))
}

enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str(Vec<u8>),
    Num(f64),
    Bool(bool),
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

struct Token {
    kind: Tok,
    /// 0-based index (`token->index`).
    index: usize,
}

/// Open tables held as Rust references (mlua keeps each in a slot of its
/// reference stack, which has Lua's 8000-slot limit); deeper ones are kept
/// in a Lua table (`Json::spill`).
const HELD_TABLES: usize = 1000;

enum DecFrame {
    /// `t` is None when spilled.
    Array {
        t: Option<Table>,
        i: i64,
    },
    Object {
        t: Option<Table>,
        key: Vec<u8>,
    },
}

struct Json<'a> {
    b: &'a [u8],
    ptr: usize,
    cfg: Cfg,
    lua: &'a Lua,
    /// Open tables deeper than `HELD_TABLES`, by depth.
    spill: Option<Table>,
}

impl Json<'_> {
    /// The byte at `i`, read as a C string (0 past the end).
    fn ch(&self, i: usize) -> u8 {
        self.b.get(i).copied().unwrap_or(0)
    }

    fn error(&self, exp: &str, t: &Token) -> Raise {
        let found = match &t.kind {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::Str(_) => "T_STRING",
            Tok::Num(_) => "T_NUMBER",
            Tok::Bool(_) => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error(m) => m,
        };
        Raise::Msg(format!(
            "Expected {exp} but found {found} at character {}",
            t.index + 1
        ))
    }

    fn err_token(&self, m: &'static str) -> Token {
        Token {
            kind: Tok::Error(m),
            index: self.ptr,
        }
    }

    /// `json_is_invalid_number` at `ptr`.
    fn is_invalid_number(&self) -> bool {
        let mut p = self.ptr;
        if self.ch(p) == b'+' {
            return true;
        }
        if self.ch(p) == b'-' {
            p += 1;
        }
        let c = self.ch(p);
        if c == b'0' {
            let c2 = self.ch(p + 1);
            return (c2 | 0x20) == b'x' || c2.is_ascii_digit();
        } else if c <= b'9' {
            return false;
        }
        let rest = &self.b[p.min(self.b.len())..];
        let starts = |w: &[u8]| rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(w);
        starts(b"inf") || starts(b"nan")
    }

    /// `json_next_token`.
    fn token(&mut self) -> Token {
        while matches!(self.ch(self.ptr), b' ' | b'\t' | b'\n' | b'\r') {
            self.ptr += 1;
        }
        let index = self.ptr;
        let c = self.ch(self.ptr);
        let single = match c {
            b'{' => Some(Tok::ObjBegin),
            b'}' => Some(Tok::ObjEnd),
            b'[' => Some(Tok::ArrBegin),
            b']' => Some(Tok::ArrEnd),
            b',' => Some(Tok::Comma),
            b':' => Some(Tok::Colon),
            _ => None,
        };
        if let Some(kind) = single {
            self.ptr += 1;
            return Token { kind, index };
        }
        if c == 0 {
            return Token {
                kind: Tok::End,
                index,
            };
        }
        if !matches!(
            c,
            b'f' | b'i' | b'I' | b'n' | b'N' | b't' | b'"' | b'+' | b'-' | b'0'..=b'9'
        ) {
            return self.err_token("invalid token");
        }
        if c == b'"' {
            return self.string(index);
        }
        if c == b'-' || c.is_ascii_digit() {
            if self.cfg.decode_invalid_numbers == 0 && self.is_invalid_number() {
                return self.err_token("invalid number");
            }
            return self.number(index);
        }
        let rest = &self.b[self.ptr..];
        if rest.starts_with(b"true") {
            self.ptr += 4;
            Token {
                kind: Tok::Bool(true),
                index,
            }
        } else if rest.starts_with(b"false") {
            self.ptr += 5;
            Token {
                kind: Tok::Bool(false),
                index,
            }
        } else if rest.starts_with(b"null") {
            self.ptr += 4;
            Token {
                kind: Tok::Null,
                index,
            }
        } else if self.cfg.decode_invalid_numbers != 0 && self.is_invalid_number() {
            self.number(index)
        } else {
            self.err_token("invalid token")
        }
    }

    fn number(&mut self, index: usize) -> Token {
        let r = strtod(&self.b[self.ptr..]);
        if r.consumed == 0 {
            return self.err_token("invalid number");
        }
        self.ptr += r.consumed;
        Token {
            kind: Tok::Num(r.value),
            index,
        }
    }

    /// `json_next_string_token`: errors point where the scan stopped.
    fn string(&mut self, index: usize) -> Token {
        let mut out = Vec::new();
        self.ptr += 1;
        loop {
            let c = self.ch(self.ptr);
            if c == b'"' {
                break;
            }
            if c == 0 {
                return self.err_token("unexpected end of string");
            }
            if c == b'\\' {
                let e = match self.ch(self.ptr + 1) {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 8,
                    b't' => b'\t',
                    b'n' => b'\n',
                    b'f' => 12,
                    b'r' => b'\r',
                    b'u' => {
                        if self.unicode_escape(&mut out) {
                            continue;
                        }
                        return self.err_token("invalid unicode escape code");
                    }
                    _ => return self.err_token("invalid escape code"),
                };
                out.push(e);
                self.ptr += 2;
                continue;
            }
            out.push(c);
            self.ptr += 1;
        }
        self.ptr += 1;
        Token {
            kind: Tok::Str(out),
            index,
        }
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let mut v = 0u32;
        for i in 0..4 {
            let d = (self.ch(at + i) as char).to_digit(16)?;
            v = (v << 4) | d;
        }
        Some(v)
    }

    /// `json_append_unicode_escape` at `ptr` (on the backslash).
    fn unicode_escape(&mut self, out: &mut Vec<u8>) -> bool {
        let Some(mut cp) = self.hex4(self.ptr + 2) else {
            return false;
        };
        let mut escape_len = 6;
        if cp & 0xF800 == 0xD800 {
            if cp & 0x400 != 0 {
                return false;
            }
            if self.ch(self.ptr + 6) != b'\\' || self.ch(self.ptr + 7) != b'u' {
                return false;
            }
            let Some(low) = self.hex4(self.ptr + 8) else {
                return false;
            };
            if low & 0xFC00 != 0xDC00 {
                return false;
            }
            cp = (((cp & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
            escape_len = 12;
        }
        // codepoint_to_utf8 (no validity check beyond the range).
        if cp <= 0x7F {
            out.push(cp as u8);
        } else if cp <= 0x7FF {
            out.extend_from_slice(&[(cp >> 6) as u8 | 0xC0, (cp & 0x3F) as u8 | 0x80]);
        } else if cp <= 0xFFFF {
            out.extend_from_slice(&[
                (cp >> 12) as u8 | 0xE0,
                ((cp >> 6) & 0x3F) as u8 | 0x80,
                (cp & 0x3F) as u8 | 0x80,
            ]);
        } else {
            out.extend_from_slice(&[
                (cp >> 18) as u8 | 0xF0,
                ((cp >> 12) & 0x3F) as u8 | 0x80,
                ((cp >> 6) & 0x3F) as u8 | 0x80,
                (cp & 0x3F) as u8 | 0x80,
            ]);
        }
        self.ptr += escape_len;
        true
    }

    /// `json_decode_descend`: `depth` levels open, `slots` Lua stack slots
    /// the C version holds, `need` the slots it asks for.
    fn descend(&self, depth: usize, slots: usize, need: usize) -> Result<(), Raise> {
        if depth <= self.cfg.decode_max_depth as usize && slots + need <= MAX_C_STACK {
            return Ok(());
        }
        Err(Raise::Msg(format!(
            "Found too many nested data structures ({depth}) at character {}",
            self.ptr
        )))
    }

    fn new_table(&self) -> Result<Table, Raise> {
        self.lua.create_table().map_err(lua_err)
    }

    /// Keeps the table of the frame at `depth` (1-based).
    fn hold(&mut self, depth: usize, t: Table) -> Result<Option<Table>, Raise> {
        if depth <= HELD_TABLES {
            return Ok(Some(t));
        }
        if self.spill.is_none() {
            self.spill = Some(self.new_table()?);
        }
        if let Some(sp) = &self.spill {
            sp.raw_set(depth, t).map_err(lua_err)?;
        }
        Ok(None)
    }

    /// The table of the frame at `depth`; `take` drops it from the spill.
    fn table_at(&self, depth: usize, t: &Option<Table>, take: bool) -> Result<Table, Raise> {
        if let Some(t) = t {
            return Ok(t.clone());
        }
        let sp = self
            .spill
            .as_ref()
            .ok_or_else(|| Raise::Msg("cjson: lost table".into()))?;
        let t: Table = sp.raw_get(depth).map_err(lua_err)?;
        if take {
            sp.raw_set(depth, Value::Nil).map_err(lua_err)?;
        }
        Ok(t)
    }

    /// `json_process_value` and the two contexts, with an explicit stack.
    fn parse(&mut self) -> Result<Value, Raise> {
        let mut stack: Vec<DecFrame> = Vec::new();
        // The argument string, a table per array level, a table and a key
        // per object level.
        let mut slots = 1usize;
        let mut tok = self.token();
        let result = 'outer: loop {
            // `tok` is a value's first token.
            let mut v = match tok.kind {
                Tok::Str(s) => Value::String(self.lua.create_string(&s).map_err(lua_err)?),
                Tok::Num(n) => Value::Number(n),
                Tok::Bool(b) => Value::Boolean(b),
                Tok::Null => null(),
                Tok::ObjBegin => {
                    self.descend(stack.len() + 1, slots, 3)?;
                    let t = self.new_table()?;
                    let k = self.token();
                    if matches!(k.kind, Tok::ObjEnd) {
                        Value::Table(t)
                    } else {
                        let key = self.object_key(k)?;
                        let t = self.hold(stack.len() + 1, t)?;
                        stack.push(DecFrame::Object { t, key });
                        slots += 2;
                        tok = self.token();
                        continue;
                    }
                }
                Tok::ArrBegin => {
                    self.descend(stack.len() + 1, slots, 2)?;
                    let t = self.new_table()?;
                    let first = self.token();
                    if matches!(first.kind, Tok::ArrEnd) {
                        Value::Table(t)
                    } else {
                        let t = self.hold(stack.len() + 1, t)?;
                        stack.push(DecFrame::Array { t, i: 1 });
                        slots += 1;
                        tok = first;
                        continue;
                    }
                }
                _ => return Err(self.error("value", &tok)),
            };
            // A complete value: store it in its container.
            loop {
                let depth = stack.len();
                match stack.last_mut() {
                    None => break 'outer v,
                    Some(DecFrame::Array { t, i }) => {
                        match t {
                            Some(t) => t.raw_set(*i, v).map_err(lua_err)?,
                            None => self
                                .table_at(depth, t, false)?
                                .raw_set(*i, v)
                                .map_err(lua_err)?,
                        }
                        *i += 1;
                        let n = self.token();
                        match n.kind {
                            Tok::ArrEnd => {
                                let Some(DecFrame::Array { t, .. }) = stack.pop() else {
                                    unreachable!("the top frame is an array")
                                };
                                slots -= 1;
                                v = Value::Table(self.table_at(depth, &t, true)?);
                            }
                            Tok::Comma => {
                                tok = self.token();
                                continue 'outer;
                            }
                            _ => return Err(self.error("comma or array end", &n)),
                        }
                    }
                    Some(DecFrame::Object { t, key }) => {
                        let k = self.lua.create_string(&*key).map_err(lua_err)?;
                        match t {
                            Some(t) => t.raw_set(k, v).map_err(lua_err)?,
                            None => self
                                .table_at(depth, t, false)?
                                .raw_set(k, v)
                                .map_err(lua_err)?,
                        }
                        let n = self.token();
                        match n.kind {
                            Tok::ObjEnd => {
                                let Some(DecFrame::Object { t, .. }) = stack.pop() else {
                                    unreachable!("the top frame is an object")
                                };
                                slots -= 2;
                                v = Value::Table(self.table_at(depth, &t, true)?);
                            }
                            Tok::Comma => {
                                let k = self.token();
                                let new_key = self.object_key(k)?;
                                if let Some(DecFrame::Object { key, .. }) = stack.last_mut() {
                                    *key = new_key;
                                }
                                tok = self.token();
                                continue 'outer;
                            }
                            _ => return Err(self.error("comma or object end", &n)),
                        }
                    }
                }
            }
        };
        let end = self.token();
        if !matches!(end.kind, Tok::End) {
            return Err(self.error("the end", &end));
        }
        Ok(result)
    }

    /// An object's key and its colon.
    fn object_key(&mut self, k: Token) -> Result<Vec<u8>, Raise> {
        let Tok::Str(key) = k.kind else {
            return Err(self.error("object key string", &k));
        };
        let c = self.token();
        if !matches!(c.kind, Tok::Colon) {
            return Err(self.error("colon", &c));
        }
        Ok(key)
    }
}
