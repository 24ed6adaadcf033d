//! The libraries Redis loads into its Lua, written in Rust with the
//! behaviour of the C versions Redis vendors: `bit` (LuaBitOp 1.0),
//! `cmsgpack` and `struct`; `cjson` is in `cjson.rs`.

use super::convert::{fmt_g14, type_name};
use super::{c_function, LuaResult, Raise};
use mlua::{Lua, MultiValue, Table, Value};

pub fn register(lua: &Lua, globals: &Table) -> mlua::Result<()> {
    globals.raw_set("cjson", super::cjson::new_module(lua)?)?;

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
    register_cmsgpack(lua, globals)?;
    register_struct(lua, globals)?;
    Ok(())
}

// ---- bit (LuaBitOp) ----

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

// ---- cmsgpack (lua-cmsgpack 0.4.0) ----

/// Tables nested deeper than this are packed as nil (cycles survive).
const MP_MAX_NESTING: usize = 16;

pub fn register_cmsgpack(lua: &Lua, globals: &Table) -> mlua::Result<()> {
    let m = lua.create_table()?;
    m.raw_set("pack", c_function(lua, mp_pack)?)?;
    m.raw_set(
        "unpack",
        c_function(lua, |lua, a| mp_unpack(lua, a, "unpack", 0, 0))?,
    )?;
    m.raw_set(
        "unpack_one",
        c_function(lua, |lua, a| {
            let offset = opt_integer(&a, 1, "unpack_one")?;
            mp_unpack(lua, a, "unpack_one", 1, offset)
        })?,
    )?;
    m.raw_set(
        "unpack_limit",
        c_function(lua, |lua, a| {
            let limit = match a.get(1).and_then(as_number) {
                Some(n) => n as i64,
                None => return Err(bad_arg(1, "unpack_limit", "number", a.get(1))),
            };
            let offset = opt_integer(&a, 2, "unpack_limit")?;
            mp_unpack(lua, a, "unpack_limit", limit, offset)
        })?,
    )?;
    m.raw_set("_NAME", "cmsgpack")?;
    m.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    m.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    m.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    globals.raw_set("cmsgpack", m)?;
    Ok(())
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        Value::String(s) => std::str::from_utf8(&s.as_bytes())
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok()),
        _ => None,
    }
}

fn opt_integer(a: &MultiValue, i: usize, fname: &str) -> Result<i64, Raise> {
    match a.get(i) {
        None | Some(Value::Nil) => Ok(0),
        Some(v) => as_number(v)
            .map(|n| n as i64)
            .ok_or_else(|| bad_arg(i, fname, "number", Some(v))),
    }
}

fn mp_pack(_lua: &Lua, a: MultiValue) -> LuaResult {
    if a.is_empty() {
        return Err(Raise::Msg(
            "bad argument #0 to 'pack' (MessagePack pack needs input.)".into(),
        ));
    }
    let mut out = Vec::new();
    for v in a.iter() {
        mp_encode(v, &mut out, 0)?;
    }
    let s = _lua
        .create_string(&out)
        .map_err(|e| Raise::Msg(e.to_string()))?;
    Ok(MultiValue::from_iter([Value::String(s)]))
}

fn mp_encode_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn mp_encode_number(n: f64, out: &mut Vec<u8>) {
    // IS_INT64_EQUIVALENT: not inf, and (int64_t)n == n.
    if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&n)
        && (n as i64) as f64 == n
    {
        mp_encode_int(n as i64, out);
    } else {
        let f = n as f32;
        if f as f64 == n {
            out.push(0xca);
            out.extend_from_slice(&f.to_be_bytes());
        } else {
            out.push(0xcb);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

fn mp_encode_bytes(s: &[u8], out: &mut Vec<u8>) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

fn mp_len_header(n: usize, fix: u8, b16: u8, b32: u8, out: &mut Vec<u8>) {
    if n <= 15 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(b16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(b32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn mp_encode(v: &Value, out: &mut Vec<u8>, level: usize) -> Result<(), Raise> {
    let lua_e = |e: mlua::Error| Raise::Msg(e.to_string());
    match v {
        Value::String(s) => mp_encode_bytes(&s.as_bytes(), out),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => mp_encode_number(*i as f64, out),
        Value::Number(n) => mp_encode_number(*n, out),
        Value::Table(t) if level < MP_MAX_NESTING => {
            // table_is_an_array: every key a positive int-equivalent number
            // and as many keys as the largest one.
            let mut count = 0usize;
            let mut max = 0f64;
            let mut array = true;
            for pair in t.pairs::<Value, Value>() {
                let (k, _) = pair.map_err(lua_e)?;
                let n = match k {
                    Value::Integer(i) => i as f64,
                    Value::Number(n) => n,
                    _ => {
                        array = false;
                        break;
                    }
                };
                if n <= 0.0 || n.is_infinite() || (n as i32) as f64 != n {
                    array = false;
                    break;
                }
                if n > max {
                    max = n;
                }
                count += 1;
            }
            if array && max as usize == count {
                let len = t.raw_len();
                mp_len_header(len, 0x90, 0xdc, 0xdd, out);
                for j in 1..=len {
                    let v: Value = t.get(j).map_err(lua_e)?;
                    mp_encode(&v, out, level + 1)?;
                }
            } else {
                let pairs: Vec<(Value, Value)> = t
                    .pairs::<Value, Value>()
                    .collect::<mlua::Result<_>>()
                    .map_err(lua_e)?;
                mp_len_header(pairs.len(), 0x80, 0xde, 0xdf, out);
                for (k, v) in &pairs {
                    mp_encode(k, out, level + 1)?;
                    mp_encode(v, out, level + 1)?;
                }
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

enum MpErr {
    Eof,
    BadFmt,
    Lua(String),
}

struct Cur<'a> {
    b: &'a [u8],
    at: usize,
}

impl Cur<'_> {
    fn need(&self, n: usize) -> Result<(), MpErr> {
        if self.b.len() - self.at < n {
            Err(MpErr::Eof)
        } else {
            Ok(())
        }
    }

    fn be(&self, from: usize, n: usize) -> u64 {
        self.b[self.at + from..self.at + from + n]
            .iter()
            .fold(0u64, |acc, &x| acc << 8 | x as u64)
    }

    fn decode(&mut self, lua: &Lua) -> Result<Value, MpErr> {
        let lua_e = |e: mlua::Error| MpErr::Lua(e.to_string());
        self.need(1)?;
        let c = self.b[self.at];
        let num = |n: f64| Value::Number(n);
        macro_rules! fixed {
            ($len:expr, $v:expr) => {{
                self.need($len)?;
                let v = $v;
                self.at += $len;
                v
            }};
        }
        Ok(match c {
            0xcc => fixed!(2, num(self.be(1, 1) as f64)),
            0xd0 => fixed!(2, num(self.be(1, 1) as u8 as i8 as f64)),
            0xcd => fixed!(3, num(self.be(1, 2) as f64)),
            0xd1 => fixed!(3, num(self.be(1, 2) as u16 as i16 as f64)),
            0xce => fixed!(5, num(self.be(1, 4) as f64)),
            0xd2 => fixed!(5, num(self.be(1, 4) as u32 as i32 as f64)),
            0xcf => fixed!(9, num(self.be(1, 8) as f64)),
            0xd3 => fixed!(9, num(self.be(1, 8) as i64 as f64)),
            0xc0 => fixed!(1, Value::Nil),
            0xc3 => fixed!(1, Value::Boolean(true)),
            0xc2 => fixed!(1, Value::Boolean(false)),
            0xca => fixed!(5, num(f32::from_bits(self.be(1, 4) as u32) as f64)),
            0xcb => fixed!(9, num(f64::from_bits(self.be(1, 8)))),
            0xd9..=0xdb => {
                let h = match c {
                    0xd9 => 1,
                    0xda => 2,
                    _ => 4,
                };
                self.need(1 + h)?;
                let l = self.be(1, h) as usize;
                self.at += 1 + h;
                self.need(l)?;
                let s = lua
                    .create_string(&self.b[self.at..self.at + l])
                    .map_err(lua_e)?;
                self.at += l;
                Value::String(s)
            }
            0xdc..=0xdf => {
                let h = if c == 0xdc || c == 0xde { 2 } else { 4 };
                self.need(1 + h)?;
                let l = self.be(1, h) as usize;
                self.at += 1 + h;
                if c <= 0xdd {
                    self.array(lua, l)?
                } else {
                    self.map(lua, l)?
                }
            }
            c if c & 0x80 == 0 => fixed!(1, num(c as f64)),
            c if c & 0xe0 == 0xe0 => fixed!(1, num(c as i8 as f64)),
            c if c & 0xe0 == 0xa0 => {
                let l = (c & 0x1f) as usize;
                self.need(1 + l)?;
                let s = lua
                    .create_string(&self.b[self.at + 1..self.at + 1 + l])
                    .map_err(lua_e)?;
                self.at += 1 + l;
                Value::String(s)
            }
            c if c & 0xf0 == 0x90 => {
                self.at += 1;
                self.array(lua, (c & 0xf) as usize)?
            }
            c if c & 0xf0 == 0x80 => {
                self.at += 1;
                self.map(lua, (c & 0xf) as usize)?
            }
            _ => return Err(MpErr::BadFmt),
        })
    }

    fn array(&mut self, lua: &Lua, n: usize) -> Result<Value, MpErr> {
        let t = lua.create_table().map_err(|e| MpErr::Lua(e.to_string()))?;
        for i in 1..=n {
            let v = self.decode(lua)?;
            t.raw_set(i, v).map_err(|e| MpErr::Lua(e.to_string()))?;
        }
        Ok(Value::Table(t))
    }

    fn map(&mut self, lua: &Lua, n: usize) -> Result<Value, MpErr> {
        let t = lua.create_table().map_err(|e| MpErr::Lua(e.to_string()))?;
        for _ in 0..n {
            let k = self.decode(lua)?;
            let v = self.decode(lua)?;
            t.raw_set(k, v).map_err(|e| MpErr::Lua(e.to_string()))?;
        }
        Ok(Value::Table(t))
    }
}

/// lua-cmsgpack's `mp_unpack_full`.
fn mp_unpack(lua: &Lua, a: MultiValue, fname: &str, limit: i64, offset: i64) -> LuaResult {
    let data = match a.front() {
        Some(Value::String(s)) => s.as_bytes().to_vec(),
        Some(Value::Integer(i)) => fmt_g14(*i as f64).into_bytes(),
        Some(Value::Number(n)) => fmt_g14(*n).into_bytes(),
        other => return Err(bad_arg(0, fname, "string", other)),
    };
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        return Err(Raise::Msg(format!(
            "Invalid request to unpack with offset of {} and limit of {}.",
            offset as i32,
            data.len() as i32
        )));
    } else if offset as u64 > data.len() as u64 {
        return Err(Raise::Msg(format!(
            "Start offset {} greater than input length {}.",
            offset as i32,
            data.len() as i32
        )));
    }
    let limit = if decode_all { i32::MAX as i64 } else { limit };
    let mut cur = Cur {
        b: &data,
        at: offset as usize,
    };
    let mut vals = Vec::new();
    let mut cnt = 0;
    while cur.at < data.len() && cnt < limit {
        match cur.decode(lua) {
            Ok(v) => vals.push(v),
            Err(MpErr::Eof) => return Err(Raise::Msg("Missing bytes in input.".into())),
            Err(MpErr::BadFmt) => return Err(Raise::Msg("Bad data format in input.".into())),
            Err(MpErr::Lua(m)) => return Err(Raise::Msg(m)),
        }
        cnt += 1;
    }
    if !decode_all {
        let next = if cur.at == data.len() {
            -1
        } else {
            cur.at as i64
        };
        vals.insert(0, Value::Number(next as f64));
    }
    Ok(MultiValue::from_iter(vals))
}

// ---- struct (Roberto Ierusalimschy's lua_struct, as Redis vendors it) ----

const STRUCT_MAXINTSIZE: usize = 32;
/// `MAXALIGN` on x86-64: the padding of `struct { char c; double d; }`.
const STRUCT_MAXALIGN: usize = 8;

pub fn register_struct(lua: &Lua, globals: &Table) -> mlua::Result<()> {
    let m = lua.create_table()?;
    m.raw_set("pack", c_function(lua, struct_pack)?)?;
    m.raw_set("unpack", c_function(lua, struct_unpack)?)?;
    m.raw_set("size", c_function(lua, struct_size)?)?;
    globals.raw_set("struct", m)?;
    Ok(())
}

struct Header {
    little: bool,
    align: usize,
}

fn arg_err(n: usize, fname: &str, msg: &str) -> Raise {
    Raise::Msg(format!("bad argument #{n} to '{fname}' ({msg})"))
}

fn check_string(a: &MultiValue, i: usize, fname: &str) -> Result<Vec<u8>, Raise> {
    match a.get(i) {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(Value::Integer(n)) => Ok(fmt_g14(*n as f64).into_bytes()),
        Some(Value::Number(n)) => Ok(fmt_g14(*n).into_bytes()),
        other => Err(bad_arg(i, fname, "string", other)),
    }
}

fn check_number(a: &MultiValue, i: usize, fname: &str) -> Result<f64, Raise> {
    a.get(i)
        .and_then(as_number)
        .ok_or_else(|| bad_arg(i, fname, "number", a.get(i)))
}

/// `getnum`: digits at `fmt[*at..]`, or `df`.
fn getnum(fmt: &[u8], at: &mut usize, df: usize) -> Result<usize, Raise> {
    if !fmt.get(*at).is_some_and(u8::is_ascii_digit) {
        return Ok(df);
    }
    let mut a: i64 = 0;
    while let Some(&c) = fmt.get(*at).filter(|c| c.is_ascii_digit()) {
        let d = (c - b'0') as i64;
        if a > (i32::MAX as i64) / 10 || a * 10 > i32::MAX as i64 - d {
            return Err(Raise::Msg("integral size overflow".into()));
        }
        a = a * 10 + d;
        *at += 1;
    }
    Ok(a as usize)
}

fn optsize(opt: u8, fmt: &[u8], at: &mut usize) -> Result<usize, Raise> {
    Ok(match opt {
        b'B' | b'b' | b'x' => 1,
        b'H' | b'h' => 2,
        b'L' | b'l' | b'T' | b'd' => 8,
        b'f' => 4,
        b'c' => getnum(fmt, at, 1)?,
        b'i' | b'I' => {
            let sz = getnum(fmt, at, 4)?;
            if sz > STRUCT_MAXINTSIZE {
                return Err(Raise::Msg(format!(
                    "integral size {sz} is larger than limit of {STRUCT_MAXINTSIZE}"
                )));
            }
            sz
        }
        _ => 0,
    })
}

fn gettoalign(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    (size.wrapping_sub(len & (size - 1))) & (size - 1)
}

fn controloptions(
    opt: u8,
    fmt: &[u8],
    at: &mut usize,
    h: &mut Header,
    fname: &str,
) -> Result<(), Raise> {
    match opt {
        b' ' => {}
        b'>' => h.little = false,
        b'<' => h.little = true,
        b'!' => {
            let a = getnum(fmt, at, STRUCT_MAXALIGN)?;
            if a == 0 || a & (a - 1) != 0 {
                return Err(Raise::Msg(format!("alignment {a} is not a power of 2")));
            }
            h.align = a;
        }
        c => {
            return Err(arg_err(
                1,
                fname,
                &format!("invalid format option '{}'", c as char),
            ))
        }
    }
    Ok(())
}

fn header() -> Header {
    Header {
        little: true,
        align: 1,
    }
}

fn struct_pack(lua: &Lua, a: MultiValue) -> LuaResult {
    let fmt = check_string(&a, 0, "pack")?;
    let fmt = &fmt[..fmt.iter().position(|&c| c == 0).unwrap_or(fmt.len())];
    let mut h = header();
    let mut arg = 1usize;
    let mut out: Vec<u8> = Vec::new();
    let mut total = 0usize;
    let mut at = 0usize;
    while at < fmt.len() {
        let opt = fmt[at];
        at += 1;
        let mut size = optsize(opt, fmt, &mut at)?;
        let toalign = gettoalign(total, &h, opt, size);
        total += toalign;
        out.resize(out.len() + toalign, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = check_number(&a, arg, "pack")?;
                arg += 1;
                let mut value: u64 = if n < 0.0 { c_ll_i(n) as u64 } else { c_ull(n) };
                let mut buf = vec![0u8; size];
                if h.little {
                    for b in buf.iter_mut() {
                        *b = value as u8;
                        value = value.checked_shr(8).unwrap_or(0);
                    }
                } else {
                    for b in buf.iter_mut().rev() {
                        *b = value as u8;
                        value = value.checked_shr(8).unwrap_or(0);
                    }
                }
                out.extend_from_slice(&buf);
            }
            b'x' => out.push(0),
            b'f' => {
                let f = check_number(&a, arg, "pack")? as f32;
                arg += 1;
                out.extend_from_slice(&if h.little {
                    f.to_le_bytes()
                } else {
                    f.to_be_bytes()
                });
            }
            b'd' => {
                let d = check_number(&a, arg, "pack")?;
                arg += 1;
                out.extend_from_slice(&if h.little {
                    d.to_le_bytes()
                } else {
                    d.to_be_bytes()
                });
            }
            b'c' | b's' => {
                let s = check_string(&a, arg, "pack")?;
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    return Err(arg_err(arg + 1, "pack", "string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                    size += 1;
                }
            }
            _ => controloptions(opt, fmt, &mut at, &mut h, "pack")?,
        }
        total += size;
    }
    let s = lua
        .create_string(&out)
        .map_err(|e| Raise::Msg(e.to_string()))?;
    Ok(MultiValue::from_iter([Value::String(s)]))
}

/// C's `(long)` of a double on x86-64.
fn c_ll_i(n: f64) -> i64 {
    super::convert::c_ll(n)
}

/// C's `(unsigned long)` of a non-negative double (as x86-64 compilers do
/// it: exact below 2^64).
fn c_ull(n: f64) -> u64 {
    if n.is_nan() {
        0
    } else {
        n as u64
    }
}

fn struct_unpack(lua: &Lua, a: MultiValue) -> LuaResult {
    let fmt = check_string(&a, 0, "unpack")?;
    let fmt = &fmt[..fmt.iter().position(|&c| c == 0).unwrap_or(fmt.len())];
    let data = check_string(&a, 1, "unpack")?;
    let ld = data.len();
    let pos = match a.get(2) {
        None | Some(Value::Nil) => 1u64,
        Some(v) => as_number(v)
            .map(|n| n as i64 as u64)
            .ok_or_else(|| bad_arg(2, "unpack", "number", Some(v)))?,
    };
    if pos == 0 || pos > i64::MAX as u64 {
        return Err(arg_err(3, "unpack", "offset must be 1 or greater"));
    }
    let mut pos = (pos - 1) as usize;
    let mut h = header();
    let mut vals: Vec<Value> = Vec::new();
    let mut at = 0usize;
    let lua_e = |e: mlua::Error| Raise::Msg(e.to_string());
    while at < fmt.len() {
        let opt = fmt[at];
        at += 1;
        let mut size = optsize(opt, fmt, &mut at)?;
        pos += gettoalign(pos, &h, opt, size);
        if !(size <= ld && pos <= ld - size) {
            return Err(arg_err(2, "unpack", "data string too short"));
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let bytes = &data[pos..pos + size];
                let mut l: u64 = 0;
                if h.little {
                    for &b in bytes.iter().rev() {
                        l = l.wrapping_shl(8) | b as u64;
                    }
                } else {
                    for &b in bytes {
                        l = l.wrapping_shl(8) | b as u64;
                    }
                }
                let v = if opt.is_ascii_lowercase() {
                    let mask = (!0u64).wrapping_shl((size * 8).wrapping_sub(1) as u32);
                    if l & mask != 0 {
                        l |= mask;
                    }
                    l as i64 as f64
                } else {
                    l as f64
                };
                vals.push(Value::Number(v));
            }
            b'x' => {}
            b'f' => {
                let b: [u8; 4] = data[pos..pos + 4].try_into().unwrap_or([0; 4]);
                let f = if h.little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                };
                vals.push(Value::Number(f as f64));
            }
            b'd' => {
                let b: [u8; 8] = data[pos..pos + 8].try_into().unwrap_or([0; 8]);
                let d = if h.little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                };
                vals.push(Value::Number(d));
            }
            b'c' => {
                if size == 0 {
                    let prev = vals.last().and_then(as_number);
                    let Some(n) = prev else {
                        return Err(Raise::Msg("format 'c0' needs a previous size".into()));
                    };
                    vals.pop();
                    size = n as usize;
                    if !(size <= ld && pos <= ld - size) {
                        return Err(arg_err(2, "unpack", "data string too short"));
                    }
                }
                let s = lua.create_string(&data[pos..pos + size]).map_err(lua_e)?;
                vals.push(Value::String(s));
            }
            b's' => {
                let Some(e) = data[pos..].iter().position(|&c| c == 0) else {
                    return Err(Raise::Msg("unfinished string in data".into()));
                };
                size = e + 1;
                let s = lua.create_string(&data[pos..pos + e]).map_err(lua_e)?;
                vals.push(Value::String(s));
            }
            _ => controloptions(opt, fmt, &mut at, &mut h, "unpack")?,
        }
        pos += size;
    }
    vals.push(Value::Number((pos + 1) as f64));
    Ok(MultiValue::from_iter(vals))
}

fn struct_size(_lua: &Lua, a: MultiValue) -> LuaResult {
    let fmt = check_string(&a, 0, "size")?;
    let fmt = &fmt[..fmt.iter().position(|&c| c == 0).unwrap_or(fmt.len())];
    let mut h = header();
    let mut pos = 0usize;
    let mut at = 0usize;
    while at < fmt.len() {
        let opt = fmt[at];
        at += 1;
        let size = optsize(opt, fmt, &mut at)?;
        pos += gettoalign(pos, &h, opt, size);
        if opt == b's' {
            return Err(arg_err(1, "size", "option 's' has no fixed size"));
        } else if opt == b'c' && size == 0 {
            return Err(arg_err(1, "size", "option 'c0' has no fixed size"));
        }
        if !opt.is_ascii_alphanumeric() {
            controloptions(opt, fmt, &mut at, &mut h, "size")?;
        }
        pos += size;
    }
    Ok(MultiValue::from_iter([Value::Number(pos as f64)]))
}
