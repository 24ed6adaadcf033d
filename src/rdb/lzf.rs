//! LZF compression as Redis's bundled liblzf 3.6 (`lzf_c.c` built with
//! `VERY_FAST`, `HLOG 16`) produces it, so compressed strings in a DUMP are
//! the bytes redis-server writes. The `lzf` crate compresses to valid LZF
//! too, but stops and restarts matching differently near the end of the
//! input (its loop runs on after a match ending within 4 bytes of the end,
//! where liblzf stops), so its output differs in the last bytes.
//! Decompression uses the `lzf` crate (every valid LZF stream decodes the
//! same).
//!
//! Format: a literal run is `000LLLLL` + L+1 bytes; a back reference is
//! `LLLooooo oooooooo` (length L+2, L < 7) or `111ooooo LLLLLLLL
//! oooooooo` (length L+9), offset o+1 bytes back.

const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;
/// Back references reach at most 8 KiB back.
const MAX_OFF: usize = 1 << 13;
/// Longest back reference: 264 bytes.
const MAX_REF: usize = (1 << 8) + (1 << 3);
/// Longest literal run.
const MAX_LIT: usize = 1 << 5;

fn frst(p: &[u8], i: usize) -> u32 {
    (u32::from(p[i]) << 8) | u32::from(p[i + 1])
}

fn next(v: u32, p: &[u8], i: usize) -> u32 {
    (v << 8) | u32::from(p[i + 2])
}

fn idx(h: u32) -> usize {
    ((h >> (3 * 8 - HLOG)).wrapping_sub(h.wrapping_mul(5)) as usize) & (HSIZE - 1)
}

/// `lzf_compress(in, in_len, out, out_len)`: the compressed bytes, or
/// `None` when they would not fit in `out_max` bytes (liblzf returns 0).
pub fn compress(input: &[u8], out_max: usize) -> Option<Vec<u8>> {
    let in_end = input.len();
    if in_end < 2 {
        return None;
    }
    // Slot values are positions + 1 (0: empty, as liblzf's `ref > in_data`
    // check rejects position 0 anyway).
    let mut htab = vec![0u32; HSIZE];
    let mut out: Vec<u8> = Vec::with_capacity(out_max.min(in_end + in_end / 16 + 64));
    let mut lit: usize = 0;
    out.push(0); // start run
    let mut ip = 0usize;
    let mut hval = frst(input, ip);
    while ip + 2 < in_end {
        hval = next(hval, input, ip);
        let slot = idx(hval);
        let r = htab[slot] as usize;
        htab[slot] = ip as u32;
        let matched = r > 0
            && r < ip
            && ip - r - 1 < MAX_OFF
            && input[r + 2] == input[ip + 2]
            && input[r] == input[ip]
            && input[r + 1] == input[ip + 1];
        if matched {
            let off = ip - r - 1;
            let mut len = 2usize;
            let maxlen = (in_end - ip - len).min(MAX_REF);
            let op = out.len();
            if op + 3 + 1 >= out_max && op - usize::from(lit == 0) + 3 + 1 >= out_max {
                return None;
            }
            out[op - lit - 1] = (lit as u8).wrapping_sub(1); // stop run
            if lit == 0 {
                out.pop(); // undo run if length is zero
            }
            // liblzf's loop, unrolled part included: it compares 16 bytes
            // without checking `maxlen` when more than 16 are left.
            'scan: {
                if maxlen > 16 {
                    for _ in 0..16 {
                        len += 1;
                        if input[r + len] != input[ip + len] {
                            break 'scan;
                        }
                    }
                }
                loop {
                    len += 1;
                    if !(len < maxlen && input[r + len] == input[ip + len]) {
                        break;
                    }
                }
            }
            len -= 2; // len is now #octets - 1
            ip += 1;
            if len < 7 {
                out.push(((off >> 8) + (len << 5)) as u8);
            } else {
                out.push(((off >> 8) + (7 << 5)) as u8);
                out.push((len - 7) as u8);
            }
            out.push(off as u8);
            lit = 0;
            out.push(0); // start run
            ip += len + 1;
            if ip + 2 >= in_end {
                break;
            }
            ip -= 2;
            hval = frst(input, ip);
            hval = next(hval, input, ip);
            htab[idx(hval)] = ip as u32;
            ip += 1;
            hval = next(hval, input, ip);
            htab[idx(hval)] = ip as u32;
            ip += 1;
        } else {
            if out.len() >= out_max {
                return None;
            }
            lit += 1;
            out.push(input[ip]);
            ip += 1;
            if lit == MAX_LIT {
                let op = out.len();
                out[op - lit - 1] = (lit as u8).wrapping_sub(1);
                lit = 0;
                out.push(0);
            }
        }
    }
    if out.len() + 3 > out_max {
        return None;
    }
    while ip < in_end {
        lit += 1;
        out.push(input[ip]);
        ip += 1;
        if lit == MAX_LIT {
            let op = out.len();
            out[op - lit - 1] = (lit as u8).wrapping_sub(1);
            lit = 0;
            out.push(0);
        }
    }
    let op = out.len();
    out[op - lit - 1] = (lit as u8).wrapping_sub(1); // end run
    if lit == 0 {
        out.pop();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut data = Vec::new();
        for i in 0..5000u32 {
            data.extend_from_slice(format!("element-{}-{}", i % 97, i).as_bytes());
        }
        for n in [2, 3, 21, 64, 100, 1000, data.len()] {
            let src = &data[..n];
            if let Some(c) = compress(src, n + 64) {
                assert_eq!(lzf::decompress(&c, n).unwrap(), src);
            }
        }
        assert!(compress(&data, 10).is_none());
    }
}
