//! The libraries Redis loads into its Lua, written in Rust with the
//! behaviour of the C versions Redis vendors: `cjson` (lua-cjson 2.1:
//! encode, decode, null) and `bit` (LuaBitOp 1.0).

use super::{c_function, convert::fmt_g14, LuaResult, Raise};
use mlua::{LightUserData, Lua, MultiValue, Table, Value};

/// cjson.null: lua-cjson's NULL light userdata.
fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

pub fn register(lua: &Lua, globals: &Table) -> mlua::Result<()> {
    let cjson = lua.create_table()?;
    cjson.raw_set("encode", c_function(lua, cjson_encode)?)?;
    cjson.raw_set("decode", c_function(lua, cjson_decode)?)?;
    cjson.raw_set("null", null())?;
    cjson.raw_set("_NAME", "cjson")?;
    cjson.raw_set("_VERSION", "2.1.0")?;
    globals.raw_set("cjson", cjson)?;

    let bit = lua.create_table()?;
    bit.raw_set("tobit", c_function(lua, |_, a| bit_unary(a, |x| x))?)?;
    bit.raw_set("bnot", c_function(lua, |_, a| bit_unary(a, |x| !x))?)?;
    bit.raw_set(
        "bswap",
        c_function(lua, |_, a| bit_unary(a, |x| x.swap_bytes()))?,
    )?;
    bit.raw_set(
        "band",
        c_function(lua, |_, a| bit_fold(a, "band", |x, y| x & y))?,
    )?;
    bit.raw_set(
        "bor",
        c_function(lua, |_, a| bit_fold(a, "bor", |x, y| x | y))?,
    )?;
    bit.raw_set(
        "bxor",
        c_function(lua, |_, a| bit_fold(a, "bxor", |x, y| x ^ y))?,
    )?;
    bit.raw_set(
        "lshift",
        c_function(lua, |_, a| bit_shift(a, "lshift", |x, n| x << n))?,
    )?;
    bit.raw_set(
        "rshift",
        c_function(lua, |_, a| bit_shift(a, "rshift", |x, n| x >> n))?,
    )?;
    bit.raw_set(
        "arshift",
        c_function(lua, |_, a| {
            bit_shift(a, "arshift", |x, n| ((x as i32) >> n) as u32)
        })?,
    )?;
    bit.raw_set(
        "rol",
        c_function(lua, |_, a| bit_shift(a, "rol", |x, n| x.rotate_left(n)))?,
    )?;
    bit.raw_set(
        "ror",
        c_function(lua, |_, a| bit_shift(a, "ror", |x, n| x.rotate_right(n)))?,
    )?;
    bit.raw_set("tohex", c_function(lua, bit_tohex)?)?;
    globals.raw_set("bit", bit)?;
    Ok(())
}

// ---- bit (LuaBitOp) ----

fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None => "no value",
        Some(Value::Nil) => "nil",
        Some(Value::Boolean(_)) => "boolean",
        Some(Value::Integer(_)) | Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Table(_)) => "table",
        Some(Value::Function(_)) => "function",
        Some(Value::Thread(_)) => "thread",
        _ => "userdata",
    }
}

/// LuaBitOp's `barg`: a number (or numeric string) normalised to 32 bits
/// the way its `tobit` does (round to nearest, keep the low 32 bits).
fn barg(a: &MultiValue, i: usize, fname: &str) -> Result<u32, Raise> {
    let v = a.get(i);
    let n = match v {
        Some(Value::Integer(n)) => *n as f64,
        Some(Value::Number(n)) => *n,
        Some(Value::String(s)) => std::str::from_utf8(&s.as_bytes())
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .ok_or_else(|| bad_arg(i, fname, "number", v))?,
        _ => return Err(bad_arg(i, fname, "number", v)),
    };
    let b = n + 6_755_399_441_055_744.0;
    Ok(b.to_bits() as u32)
}

fn bad_arg(i: usize, fname: &str, want: &str, got: Option<&Value>) -> Raise {
    Raise::Msg(format!(
        "bad argument #{} to '{fname}' ({want} expected, got {})",
        i + 1,
        type_name(got)
    ))
}

fn num(x: u32) -> LuaResult {
    Ok(MultiValue::from_iter([Value::Number(x as i32 as f64)]))
}

fn bit_unary(a: MultiValue, f: fn(u32) -> u32) -> LuaResult {
    num(f(barg(&a, 0, "tobit")?))
}

fn bit_fold(a: MultiValue, name: &str, f: fn(u32, u32) -> u32) -> LuaResult {
    let mut acc = barg(&a, 0, name)?;
    for i in 1..a.len() {
        acc = f(acc, barg(&a, i, name)?);
    }
    num(acc)
}

fn bit_shift(a: MultiValue, name: &str, f: fn(u32, u32) -> u32) -> LuaResult {
    let x = barg(&a, 0, name)?;
    let n = barg(&a, 1, name)? & 31;
    num(f(x, n))
}

fn bit_tohex(lua: &Lua, a: MultiValue) -> LuaResult {
    let mut x = barg(&a, 0, "tohex")?;
    let mut n: i32 = if matches!(a.get(1), None | Some(Value::Nil)) {
        8
    } else {
        barg(&a, 1, "tohex")? as i32
    };
    let upper = n < 0;
    if upper {
        n = -n;
    }
    let n = n.clamp(0, 8) as usize;
    let digits: &[u8] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut buf = vec![b'0'; n];
    for i in (0..n).rev() {
        buf[i] = digits[(x & 15) as usize];
        x >>= 4;
    }
    let s = lua
        .create_string(&buf)
        .map_err(|e| Raise::Msg(e.to_string()))?;
    Ok(MultiValue::from_iter([Value::String(s)]))
}

// ---- cjson ----

const MAX_DEPTH: usize = 1000;

fn cjson_encode(lua: &Lua, a: MultiValue) -> LuaResult {
    if a.len() != 1 {
        return Err(Raise::Msg(
            "bad argument #1 to 'encode' (expected 1 argument)".into(),
        ));
    }
    let mut out = Vec::new();
    encode_value(&a[0], &mut out, 0)?;
    let s = lua
        .create_string(&out)
        .map_err(|e| Raise::Msg(e.to_string()))?;
    Ok(MultiValue::from_iter([Value::String(s)]))
}

fn encode_number(n: f64, out: &mut Vec<u8>) -> Result<(), Raise> {
    if !n.is_finite() {
        return Err(Raise::Msg(
            "Cannot serialise number: must not be NaN or Inf".into(),
        ));
    }
    out.extend_from_slice(fmt_g14(n).as_bytes());
    Ok(())
}

fn encode_string(s: &[u8], out: &mut Vec<u8>) {
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

/// lua-cjson's `lua_array_length`: Some(max index) for an array, None for
/// an object; an excessively sparse array is an error.
fn array_length(t: &Table) -> Result<Option<usize>, Raise> {
    let mut max = 0f64;
    let mut items = 0usize;
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair.map_err(|e| Raise::Msg(e.to_string()))?;
        let k = match k {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            _ => return Ok(None),
        };
        if k.floor() == k && k >= 1.0 {
            if k > max {
                max = k;
            }
            items += 1;
        } else {
            return Ok(None);
        }
    }
    if max > (items * 2) as f64 && max > 10.0 {
        return Err(Raise::Msg(
            "Cannot serialise table: excessively sparse array".into(),
        ));
    }
    Ok(if max > 0.0 { Some(max as usize) } else { None })
}

fn encode_value(v: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), Raise> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(i) => encode_number(*i as f64, out)?,
        Value::Number(n) => encode_number(*n, out)?,
        Value::String(s) => encode_string(&s.as_bytes(), out),
        Value::Table(t) => {
            let depth = depth + 1;
            if depth > MAX_DEPTH {
                return Err(Raise::Msg(format!(
                    "Cannot serialise, excessive nesting ({depth})"
                )));
            }
            match array_length(t)? {
                Some(len) => {
                    out.push(b'[');
                    for i in 1..=len {
                        if i > 1 {
                            out.push(b',');
                        }
                        let v: Value = t.raw_get(i).map_err(|e| Raise::Msg(e.to_string()))?;
                        encode_value(&v, out, depth)?;
                    }
                    out.push(b']');
                }
                None => {
                    out.push(b'{');
                    let mut first = true;
                    for pair in t.pairs::<Value, Value>() {
                        let (k, v) = pair.map_err(|e| Raise::Msg(e.to_string()))?;
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        match &k {
                            Value::String(s) => encode_string(&s.as_bytes(), out),
                            Value::Integer(i) => {
                                out.push(b'"');
                                encode_number(*i as f64, out)?;
                                out.push(b'"');
                            }
                            Value::Number(n) => {
                                out.push(b'"');
                                encode_number(*n, out)?;
                                out.push(b'"');
                            }
                            other => {
                                return Err(Raise::Msg(format!(
                                    "Cannot serialise {}: table key must be a number or string",
                                    type_name(Some(other))
                                )))
                            }
                        }
                        out.push(b':');
                        encode_value(&v, out, depth)?;
                    }
                    out.push(b'}');
                }
            }
        }
        other => {
            return Err(Raise::Msg(format!(
                "Cannot serialise {}: type not supported",
                type_name(Some(other))
            )))
        }
    }
    Ok(())
}

fn cjson_decode(lua: &Lua, a: MultiValue) -> LuaResult {
    if a.len() != 1 {
        return Err(Raise::Msg(
            "bad argument #1 to 'decode' (expected 1 argument)".into(),
        ));
    }
    let text = match &a[0] {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Integer(i) => fmt_g14(*i as f64).into_bytes(),
        Value::Number(n) => fmt_g14(*n).into_bytes(),
        other => return Err(bad_arg(0, "decode", "string", Some(other))),
    };
    let mut p = Json {
        b: &text,
        at: 0,
        lua,
    };
    let v = p.value(0)?;
    let tok = p.token()?;
    if !matches!(tok.kind, Tok::End) {
        return Err(p.expected("the end", &tok));
    }
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
    /// 1-based character position, as lua-cjson reports it.
    at: usize,
}

struct Json<'a> {
    b: &'a [u8],
    at: usize,
    lua: &'a Lua,
}

impl Json<'_> {
    fn expected(&self, what: &str, t: &Token) -> Raise {
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
            "Expected {what} but found {found} at character {}",
            t.at
        ))
    }

    fn token(&mut self) -> Result<Token, Raise> {
        while self.at < self.b.len() && matches!(self.b[self.at], b' ' | b'\t' | b'\n' | b'\r') {
            self.at += 1;
        }
        let at = self.at + 1;
        let Some(&c) = self.b.get(self.at) else {
            return Ok(Token { kind: Tok::End, at });
        };
        let simple = |k| Token { kind: k, at };
        let kind = match c {
            b'{' => {
                self.at += 1;
                Tok::ObjBegin
            }
            b'}' => {
                self.at += 1;
                Tok::ObjEnd
            }
            b'[' => {
                self.at += 1;
                Tok::ArrBegin
            }
            b']' => {
                self.at += 1;
                Tok::ArrEnd
            }
            b':' => {
                self.at += 1;
                Tok::Colon
            }
            b',' => {
                self.at += 1;
                Tok::Comma
            }
            b'"' => return Ok(simple(self.string())),
            b'-' | b'0'..=b'9' => return Ok(simple(self.number())),
            _ => {
                let rest = &self.b[self.at..];
                if rest.starts_with(b"true") {
                    self.at += 4;
                    Tok::Bool(true)
                } else if rest.starts_with(b"false") {
                    self.at += 5;
                    Tok::Bool(false)
                } else if rest.starts_with(b"null") {
                    self.at += 4;
                    Tok::Null
                } else {
                    Tok::Error("invalid token")
                }
            }
        };
        Ok(simple(kind))
    }

    fn number(&mut self) -> Tok {
        let start = self.at;
        let mut end = start;
        while end < self.b.len()
            && matches!(self.b[end], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
        {
            end += 1;
        }
        let s = std::str::from_utf8(&self.b[start..end]).unwrap_or("");
        match s.parse::<f64>() {
            Ok(n) => {
                self.at = end;
                Tok::Num(n)
            }
            Err(_) => Tok::Error("invalid number"),
        }
    }

    fn string(&mut self) -> Tok {
        let mut out = Vec::new();
        let mut i = self.at + 1;
        loop {
            let Some(&c) = self.b.get(i) else {
                return Tok::Error("unexpected end of string");
            };
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.b.get(i + 1) else {
                        return Tok::Error("unexpected end of string");
                    };
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let Some(cp) = self.unicode(i + 2, &mut i) else {
                                return Tok::Error("invalid unicode escape code");
                            };
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(cp.encode_utf8(&mut buf).as_bytes());
                            i += 1;
                            continue;
                        }
                        _ => return Tok::Error("invalid escape code"),
                    }
                    i += 2;
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        self.at = i + 1;
        Tok::Str(out)
    }

    /// A `\uXXXX` escape (with a surrogate pair) at `at`; `i` is left on
    /// its last hex digit.
    fn unicode(&self, at: usize, i: &mut usize) -> Option<char> {
        let hex = |p: usize| -> Option<u32> {
            let s = std::str::from_utf8(self.b.get(p..p + 4)?).ok()?;
            u32::from_str_radix(s, 16).ok()
        };
        let hi = hex(at)?;
        if (0xD800..0xDC00).contains(&hi) {
            if self.b.get(at + 4..at + 6)? != b"\\u" {
                return None;
            }
            let lo = hex(at + 6)?;
            if !(0xDC00..0xE000).contains(&lo) {
                return None;
            }
            *i = at + 9;
            return char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
        }
        if (0xDC00..0xE000).contains(&hi) {
            return None;
        }
        *i = at + 3;
        char::from_u32(hi)
    }

    fn value(&mut self, depth: usize) -> Result<Value, Raise> {
        let t = self.token()?;
        self.value_from(t, depth)
    }

    fn value_from(&mut self, t: Token, depth: usize) -> Result<Value, Raise> {
        let lua_e = |e: mlua::Error| Raise::Msg(e.to_string());
        Ok(match t.kind {
            Tok::Str(s) => Value::String(self.lua.create_string(&s).map_err(lua_e)?),
            Tok::Num(n) => Value::Number(n),
            Tok::Bool(b) => Value::Boolean(b),
            Tok::Null => null(),
            Tok::ObjBegin => {
                let depth = depth + 1;
                if depth > MAX_DEPTH {
                    return Err(Raise::Msg(format!(
                        "Found too many nested data structures ({depth}) at character {}",
                        t.at
                    )));
                }
                let tbl = self.lua.create_table().map_err(lua_e)?;
                let mut k = self.token()?;
                if matches!(k.kind, Tok::ObjEnd) {
                    return Ok(Value::Table(tbl));
                }
                loop {
                    let Tok::Str(key) = &k.kind else {
                        return Err(self.expected("object key string", &k));
                    };
                    let key = self.lua.create_string(key).map_err(lua_e)?;
                    let c = self.token()?;
                    if !matches!(c.kind, Tok::Colon) {
                        return Err(self.expected("colon", &c));
                    }
                    let v = self.value(depth)?;
                    tbl.raw_set(key, v).map_err(lua_e)?;
                    let n = self.token()?;
                    match n.kind {
                        Tok::ObjEnd => break,
                        Tok::Comma => {}
                        _ => return Err(self.expected("comma or object end", &n)),
                    }
                    k = self.token()?;
                }
                Value::Table(tbl)
            }
            Tok::ArrBegin => {
                let depth = depth + 1;
                if depth > MAX_DEPTH {
                    return Err(Raise::Msg(format!(
                        "Found too many nested data structures ({depth}) at character {}",
                        t.at
                    )));
                }
                let tbl = self.lua.create_table().map_err(lua_e)?;
                let first = self.token()?;
                if matches!(first.kind, Tok::ArrEnd) {
                    return Ok(Value::Table(tbl));
                }
                let mut v = self.value_from(first, depth)?;
                let mut i = 1;
                loop {
                    tbl.raw_set(i, v).map_err(lua_e)?;
                    i += 1;
                    let n = self.token()?;
                    match n.kind {
                        Tok::ArrEnd => break,
                        Tok::Comma => {}
                        _ => return Err(self.expected("comma or array end", &n)),
                    }
                    v = self.value(depth)?;
                }
                Value::Table(tbl)
            }
            _ => return Err(self.expected("value", &t)),
        })
    }
}
