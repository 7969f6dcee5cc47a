//! A small, stable 64-bit content hash (FNV-1a).
//!
//! Used for hunk ids and for the identity of file contents read from disk. It must give the
//! same value across runs, platforms and Rust versions (ids are shown to people and sent to
//! editors), which rules out `std`'s `DefaultHasher`.

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// An incremental FNV-1a hasher.
#[derive(Clone, Copy, Debug)]
pub struct StableHasher(u64);

impl Default for StableHasher {
    fn default() -> Self {
        StableHasher(OFFSET_BASIS)
    }
}

impl StableHasher {
    pub fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
        self.0 = h;
    }

    pub fn write_u64(&mut self, n: u64) {
        self.write(&n.to_le_bytes());
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// Hashes a whole byte string.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h = StableHasher::default();
    h.write(bytes);
    h.finish()
}

/// Hashes a rope's bytes chunk by chunk, without copying: equal to `stable_hash` of its text.
pub fn stable_hash_rope(rope: &ropey::Rope) -> u64 {
    let mut h = StableHasher::default();
    for chunk in rope.chunks() {
        h.write(chunk.as_bytes());
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_fnv1a_vectors() {
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(stable_hash(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn rope_hash_equals_text_hash_across_chunks() {
        let text = "kiln 日本 😀\n".repeat(2000);
        let rope = ropey::Rope::from_str(&text);
        assert!(rope.chunks().count() > 1);
        assert_eq!(stable_hash_rope(&rope), stable_hash(text.as_bytes()));
    }
}
