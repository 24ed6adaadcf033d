//! Reply conversions between RESP and Lua, as Redis 7.0's `script_lua.c`:
//! `redisProtocolToLuaType` (a command's reply inside `redis.call`) and
//! `luaReplyToRedisReply` (a script's result).

use crate::protocol::Out;
use mlua::{LightUserData, Lua, Table, Value};

/// Deepest table nesting converted to a reply (Redis stops at the Lua C
/// stack limit with the same error).
const MAX_DEPTH: usize = 1000;

/// C's `(long long)` of a double as x86-64 computes it: out of range and
/// NaN give `i64::MIN`.
pub fn c_ll(d: f64) -> i64 {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    if !(-TWO63..TWO63).contains(&d) {
        i64::MIN
    } else {
        d as i64
    }
}

/// C's `printf("%.<prec>g", d)`.
pub fn fmt_g(d: f64, prec: usize) -> String {
    if d.is_nan() {
        return if d.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf" } else { "-inf" }.into();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let p = prec.max(1);
    let e = format!("{:.*e}", p - 1, d);
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let mant = strip_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{:.*}", decimals, d)).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Lua 5.1's number to string (`%.14g`).
pub fn fmt_g14(d: f64) -> String {
    fmt_g(d, 14)
}

/// Parses one RESP reply (as a command wrote it) into a Lua value.
pub fn resp_to_lua(lua: &Lua, reply: &[u8]) -> mlua::Result<Value> {
    let mut p = Parser { b: reply, at: 0 };
    p.value(lua)
}

struct Parser<'a> {
    b: &'a [u8],
    at: usize,
}

fn bad() -> mlua::Error {
    mlua::Error::RuntimeError("malformed reply".into())
}

impl<'a> Parser<'a> {
    fn line(&mut self) -> mlua::Result<&'a [u8]> {
        let rest = &self.b[self.at..];
        let end = memchr::memmem::find(rest, b"\r\n").ok_or_else(bad)?;
        self.at += end + 2;
        Ok(&rest[..end])
    }

    fn int(&mut self) -> mlua::Result<i64> {
        crate::protocol::parse::parse_i64(self.line()?).ok_or_else(bad)
    }

    fn bytes(&mut self, n: usize) -> mlua::Result<&'a [u8]> {
        let s = self.b.get(self.at..self.at + n).ok_or_else(bad)?;
        self.at += n + 2;
        Ok(s)
    }

    fn value(&mut self, lua: &Lua) -> mlua::Result<Value> {
        let t = *self.b.get(self.at).ok_or_else(bad)?;
        self.at += 1;
        Ok(match t {
            b'+' => {
                let s = self.line()?;
                let t = lua.create_table()?;
                t.raw_set("ok", lua.create_string(s)?)?;
                Value::Table(t)
            }
            b'-' => {
                let s = self.line()?;
                let mut e = Vec::with_capacity(s.len() + 1);
                e.push(b'-');
                e.extend_from_slice(s);
                Value::Table(super::error_table(lua, &e, true)?)
            }
            b':' => Value::Number(self.int()? as f64),
            b'$' => {
                let n = self.int()?;
                if n < 0 {
                    Value::Boolean(false)
                } else {
                    Value::String(lua.create_string(self.bytes(n as usize)?)?)
                }
            }
            b'*' | b'>' => {
                let n = self.int()?;
                if n < 0 {
                    return Ok(Value::Boolean(false));
                }
                let t = lua.create_table_with_capacity(n as usize, 0)?;
                for j in 0..n as usize {
                    let v = self.value(lua)?;
                    t.raw_set(j + 1, v)?;
                }
                Value::Table(t)
            }
            b'%' => {
                let n = self.int()?;
                let inner = lua.create_table()?;
                for _ in 0..n {
                    let k = self.value(lua)?;
                    let v = self.value(lua)?;
                    inner.raw_set(k, v)?;
                }
                wrap(lua, "map", Value::Table(inner))?
            }
            b'~' => {
                let n = self.int()?;
                let inner = lua.create_table()?;
                for _ in 0..n {
                    let k = self.value(lua)?;
                    inner.raw_set(k, true)?;
                }
                wrap(lua, "set", Value::Table(inner))?
            }
            b'_' => {
                self.line()?;
                Value::Nil
            }
            b'#' => Value::Boolean(self.line()? == b"t"),
            b',' => {
                let s = self.line()?;
                let d = match s {
                    b"inf" => f64::INFINITY,
                    b"-inf" => f64::NEG_INFINITY,
                    b"nan" | b"-nan" => f64::NAN,
                    _ => std::str::from_utf8(s)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(bad)?,
                };
                wrap(lua, "double", Value::Number(d))?
            }
            b'(' => {
                let s = self.line()?;
                wrap(lua, "big_number", Value::String(lua.create_string(s)?))?
            }
            b'=' => {
                let n = self.int()? as usize;
                let s = self.bytes(n)?;
                if s.len() < 4 {
                    return Err(bad());
                }
                let inner = lua.create_table()?;
                inner.raw_set("string", lua.create_string(&s[4..])?)?;
                inner.raw_set("format", lua.create_string(&s[..3])?)?;
                wrap(lua, "verbatim_string", Value::Table(inner))?
            }
            b'|' => {
                // Attributes are not shown to scripts: skip them.
                let n = self.int()?;
                for _ in 0..2 * n {
                    self.value(lua)?;
                }
                self.value(lua)?
            }
            _ => return Err(bad()),
        })
    }
}

fn wrap(lua: &Lua, field: &str, v: Value) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(field, v)?;
    Ok(Value::Table(t))
}

/// C's view of a Lua string (`lua_tostring` then `%s`): up to the first NUL.
fn c_str(b: &[u8]) -> &[u8] {
    let z = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..z]
}

/// `\r` and `\n` become spaces (Redis's `sdsmapchars` on status lines).
fn map_crlf(b: &[u8]) -> Vec<u8> {
    b.iter()
        .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c })
        .collect()
}

/// Writes the script's result `v` to `out` (Redis's `luaReplyToRedisReply`);
/// `script_resp3` is the protocol the script set with `redis.setresp`.
pub fn lua_to_resp(out: &mut Out, v: &Value, script_resp3: bool, depth: usize) {
    if depth > MAX_DEPTH {
        out.error("ERR reached lua stack limit");
        return;
    }
    match v {
        Value::String(s) => out.bulk(&s.as_bytes()),
        Value::Boolean(b) => {
            if script_resp3 {
                out.boolean(*b);
            } else if *b {
                out.int(1);
            } else {
                out.null();
            }
        }
        Value::Integer(i) => out.int(*i),
        Value::Number(n) => out.int(c_ll(*n)),
        Value::Table(t) => table_to_resp(out, t, script_resp3, depth),
        _ => out.null(),
    }
}

fn table_to_resp(out: &mut Out, t: &Table, script_resp3: bool, depth: usize) {
    if let Ok(Value::String(e)) = t.raw_get::<Value>("err") {
        let b = e.as_bytes();
        let msg = c_str(&b);
        let start = msg
            .iter()
            .position(|&c| c != b'\r' && c != b'\n')
            .unwrap_or(msg.len());
        let end = msg
            .iter()
            .rposition(|&c| c != b'\r' && c != b'\n')
            .map_or(start, |i| i + 1);
        out.error_bytes(&msg[start..end.max(start)]);
        return;
    }
    if let Ok(Value::String(s)) = t.raw_get::<Value>("ok") {
        let line = map_crlf(c_str(&s.as_bytes()));
        out.buf.push(b'+');
        out.buf.extend_from_slice(&line);
        out.buf.extend_from_slice(b"\r\n");
        return;
    }
    match t.raw_get::<Value>("double") {
        Ok(Value::Number(d)) => return out.double(d),
        Ok(Value::Integer(i)) => return out.double(i as f64),
        _ => {}
    }
    if let Ok(Value::String(s)) = t.raw_get::<Value>("big_number") {
        let n = map_crlf(&s.as_bytes());
        if out.resp3 {
            out.buf.push(b'(');
            out.buf.extend_from_slice(&n);
            out.buf.extend_from_slice(b"\r\n");
        } else {
            out.bulk(&n);
        }
        return;
    }
    if let Ok(Value::Table(vt)) = t.raw_get::<Value>("verbatim_string") {
        if let (Ok(Value::String(f)), Ok(Value::String(s))) =
            (vt.raw_get::<Value>("format"), vt.raw_get::<Value>("string"))
        {
            let s = s.as_bytes();
            if out.resp3 {
                let f = f.as_bytes();
                let mut fmt = [b' '; 3];
                for (d, c) in fmt.iter_mut().zip(c_str(&f)) {
                    *d = *c;
                }
                out.buf.push(b'=');
                out.buf
                    .extend_from_slice(itoa::Buffer::new().format(s.len() + 4).as_bytes());
                out.buf.extend_from_slice(b"\r\n");
                out.buf.extend_from_slice(&fmt);
                out.buf.push(b':');
                out.buf.extend_from_slice(&s);
                out.buf.extend_from_slice(b"\r\n");
            } else {
                out.bulk(&s);
            }
            return;
        }
    }
    if let Ok(Value::Table(m)) = t.raw_get::<Value>("map") {
        let pairs: Vec<(Value, Value)> = m.pairs::<Value, Value>().filter_map(Result::ok).collect();
        out.map(pairs.len());
        for (k, v) in &pairs {
            lua_to_resp(out, k, script_resp3, depth + 1);
            lua_to_resp(out, v, script_resp3, depth + 1);
        }
        return;
    }
    if let Ok(Value::Table(s)) = t.raw_get::<Value>("set") {
        let keys: Vec<Value> = s
            .pairs::<Value, Value>()
            .filter_map(|r| r.ok().map(|(k, _)| k))
            .collect();
        out.set(keys.len());
        for k in &keys {
            lua_to_resp(out, k, script_resp3, depth + 1);
        }
        return;
    }
    let mut items = Vec::new();
    let mut j = 1;
    loop {
        match t.raw_get::<Value>(j) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(v),
        }
        j += 1;
    }
    out.array(items.len());
    for v in &items {
        lua_to_resp(out, v, script_resp3, depth + 1);
    }
}

/// cjson.null: lua-cjson's NULL light userdata.
pub(super) fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

pub(super) fn type_name(v: Option<&Value>) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_formats_as_c() {
        assert_eq!(fmt_g14(1.0), "1");
        assert_eq!(fmt_g14(0.1), "0.1");
        assert_eq!(fmt_g14(1e15), "1e+15");
        assert_eq!(fmt_g14(123456789012345.0), "1.2345678901234e+14");
        assert_eq!(fmt_g14(0.0001), "0.0001");
        assert_eq!(fmt_g14(0.00001), "1e-05");
        assert_eq!(fmt_g14(-3.5), "-3.5");
        assert_eq!(fmt_g(1.0 / 3.0, 17), "0.33333333333333331");
        assert_eq!(c_ll(f64::NAN), i64::MIN);
        assert_eq!(c_ll(-3.7), -3);
    }
}
