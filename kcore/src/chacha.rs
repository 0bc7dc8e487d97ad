//! The ChaCha20 block function (RFC 8439, section 2.3) and a generator built on it: the
//! kernel's source of randomness for guests, seeded from the board (see `kernel/src/entropy.rs`).
//!
//! Written here rather than taken from a crate: the generator needs only the block function,
//! and the crates that provide it add about 5 KiB of kernel text and four crates to the TCB.
//! The test vectors of RFC 8439 check it.
//!
//! The generator uses fast key erasure: every request draws one block for the caller's bytes
//! and replaces the key with fresh keystream, so a later compromise of the kernel's memory
//! does not reveal seeds handed out before.

/// One ChaCha20 block: `key`, block `counter` and `nonce` → 64 bytes of keystream.
pub fn block(key: &[u32; 8], counter: u32, nonce: &[u32; 3]) -> [u8; 64] {
    let mut state = [0u32; 16];
    state[..4].copy_from_slice(&[0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574]);
    state[4..12].copy_from_slice(key);
    state[12] = counter;
    state[13..].copy_from_slice(nonce);
    let mut working = state;
    for _ in 0..10 {
        for [a, b, c, d] in [
            [0, 4, 8, 12],
            [1, 5, 9, 13],
            [2, 6, 10, 14],
            [3, 7, 11, 15],
            [0, 5, 10, 15],
            [1, 6, 11, 12],
            [2, 7, 8, 13],
            [3, 4, 9, 14],
        ] {
            quarter_round(&mut working, a, b, c, d);
        }
    }
    let mut out = [0u8; 64];
    for (index, chunk) in out.chunks_exact_mut(4).enumerate() {
        chunk.copy_from_slice(&working[index].wrapping_add(state[index]).to_le_bytes());
    }
    out
}

fn quarter_round(state: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
    state[a] = state[a].wrapping_add(state[b]);
    state[d] = (state[d] ^ state[a]).rotate_left(16);
    state[c] = state[c].wrapping_add(state[d]);
    state[b] = (state[b] ^ state[c]).rotate_left(12);
    state[a] = state[a].wrapping_add(state[b]);
    state[d] = (state[d] ^ state[a]).rotate_left(8);
    state[c] = state[c].wrapping_add(state[d]);
    state[b] = (state[b] ^ state[c]).rotate_left(7);
}

/// A random generator: ChaCha20 keyed by a 32-byte seed, with fast key erasure.
#[derive(Clone)]
pub struct Generator {
    key: [u32; 8],
}

/// Most bytes one [`Generator::fill`] hands out (a block less the next key).
pub const MAX_FILL: usize = 32;

impl Generator {
    /// A generator keyed by `seed`.
    pub fn new(seed: [u8; 32]) -> Self {
        let mut key = [0u32; 8];
        for (word, bytes) in key.iter_mut().zip(seed.chunks_exact(4)) {
            *word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        Self { key }
    }

    /// Fills `out` with random bytes, [`MAX_FILL`] per block drawn, and re-keys.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(MAX_FILL) {
            let stream = block(&self.key, 0, &[0; 3]);
            chunk.copy_from_slice(&stream[32..32 + chunk.len()]);
            for (word, bytes) in self.key.iter_mut().zip(stream[..32].chunks_exact(4)) {
                *word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words<const N: usize>(bytes: &[u8]) -> [u32; N] {
        let mut out = [0u32; N];
        for (word, chunk) in out.iter_mut().zip(bytes.chunks_exact(4)) {
            *word = u32::from_le_bytes(chunk.try_into().unwrap());
        }
        out
    }

    #[test]
    fn rfc_8439_block_test_vector() {
        // RFC 8439, 2.3.2: key 00 01 .. 1f, counter 1, nonce 00 00 00 09 00 00 00 4a 00 00 00 00.
        let key: Vec<u8> = (0..32).collect();
        let nonce = [0, 0, 0, 9, 0, 0, 0, 0x4a, 0, 0, 0, 0];
        let out = block(&words(&key), 1, &words(&nonce));
        let expected = "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e\
                        d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e";
        let hex: String = out.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(hex, expected);
    }

    #[test]
    fn rfc_8439_keystream_of_the_zero_key() {
        // RFC 8439, A.1 test vector 1: all-zero key and nonce, counter 0.
        let out = block(&[0; 8], 0, &[0; 3]);
        assert_eq!(&out[..8], &[0x76, 0xb8, 0xe0, 0xad, 0xa0, 0xf1, 0x3d, 0x90]);
        let tail = [
            0x6a, 0x43, 0xb8, 0xf4, 0x15, 0x18, 0xa1, 0x1c, 0xc3, 0x87, 0xb6, 0x69, 0xb2, 0xee,
            0x65, 0x86,
        ];
        assert_eq!(&out[48..], &tail);
    }

    #[test]
    fn the_generator_never_repeats_itself_and_depends_on_the_seed() {
        let mut generator = Generator::new([7; 32]);
        let mut first = [0u8; 72];
        let mut second = [0u8; 72];
        generator.fill(&mut first);
        generator.fill(&mut second);
        assert_ne!(first, second);
        assert_ne!(first[..32], first[32..64]);
        let mut same = Generator::new([7; 32]);
        let mut again = [0u8; 72];
        same.fill(&mut again);
        assert_eq!(first, again);
        let mut other = [0u8; 72];
        Generator::new([8; 32]).fill(&mut other);
        assert_ne!(first, other);
    }
}
