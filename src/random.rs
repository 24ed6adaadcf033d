//! Random identifiers.

/// `chars` random lower-case hex characters from the kernel's random
/// source (Redis's `getRandomHexChars`): ACL GENPASS, the run id, the
/// replication id, cluster node names.
pub fn random_hex(chars: usize) -> String {
    let mut bytes = vec![0u8; chars.div_ceil(2)];
    let mut filled = 0;
    while filled < bytes.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `bytes`.
        let n = unsafe {
            libc::getrandom(bytes[filled..].as_mut_ptr().cast(), bytes.len() - filled, 0)
        };
        if n <= 0 {
            break;
        }
        filled += n as usize;
    }
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in &bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s.truncate(chars);
    s
}
