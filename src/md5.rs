//! MD5 itself: the hash every photo is read through once, so the one
//! computation whose speed is the daemon's CPU cost per gigabyte.
//!
//! It is AWS-LC's: on x86-64 the same assembly as OpenSSL's, a quarter
//! faster than the `md-5` crate's (725-795 against 610-620 MB/s on one
//! core of an AMD EPYC, 1 MiB buffers). AWS-LC is the AWS cryptography
//! team's library, the SDK's own default crypto; it is compiled in
//! statically, and nothing else of it is used. These few lines are the
//! only `unsafe` in the daemon; the tests hold them to RFC 1321's vectors
//! and to `md-5` over random splits.

use std::mem::MaybeUninit;

use aws_lc_sys::{MD5_CTX, MD5_Final, MD5_Init, MD5_Update};

/// A running MD5.
#[derive(Clone)]
pub struct Md5(MD5_CTX);

impl Md5 {
    pub fn new() -> Self {
        let mut ctx = MaybeUninit::<MD5_CTX>::uninit();
        // SAFETY: MD5_Init writes every field of the context it is given
        // (it zeroes it, then sets the state) and cannot fail; the context
        // is plain data with no pointers into itself, so it may move.
        unsafe {
            MD5_Init(ctx.as_mut_ptr());
            Self(ctx.assume_init())
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        // SAFETY: the context was initialised by `new`; `bytes` is a valid
        // slice of `bytes.len()` bytes, only read, for the call's length.
        unsafe {
            MD5_Update(&mut self.0, bytes.as_ptr().cast(), bytes.len());
        }
    }

    pub fn finalize(mut self) -> [u8; 16] {
        let mut out = [0u8; 16];
        // SAFETY: `out` has room for the 16 bytes MD5_Final writes; the
        // context was initialised by `new` and is not used afterwards.
        unsafe {
            MD5_Final(out.as_mut_ptr(), &mut self.0);
        }
        out
    }

    /// The MD5 of bytes held in memory.
    pub fn digest(bytes: &[u8]) -> [u8; 16] {
        let mut h = Self::new();
        h.update(bytes);
        h.finalize()
    }
}

impl Default for Md5 {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::Md5;
    use crate::digest::hex;

    #[test]
    fn rfc_1321_vectors() {
        let cases: [(&str, &str); 7] = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(hex(&Md5::digest(input.as_bytes())), want, "md5({input:?})");
        }
    }

    /// Any split of the input into updates gives the hash of the whole, and
    /// the hash is `md-5`'s: lengths around the 64-byte block and the
    /// 56-byte padding edge, and a few megabytes cut at odd places.
    #[test]
    fn any_split_gives_the_reference_hash() {
        use ::md5::Digest as _;
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let data: Vec<u8> = (0..3 * 1024 * 1024 + 17).map(|_| next() as u8).collect();
        let mut lengths: Vec<usize> = (0..=200).collect();
        lengths.extend([1023, 1024, 1025, 65_535, 65_536, 262_145, data.len()]);
        for len in lengths {
            let bytes = &data[..len];
            let want: [u8; 16] = ::md5::Md5::digest(bytes).into();
            assert_eq!(Md5::digest(bytes), want, "length {len}");
            let mut h = Md5::new();
            let mut at = 0;
            let most = if len < 300 { 7 } else { 100_003 };
            while at < len {
                let step = (1 + next() as usize % most).min(len - at);
                h.update(&bytes[at..at + step]);
                at += step;
            }
            let copy = h.clone();
            assert_eq!(h.finalize(), want, "length {len}, split");
            assert_eq!(copy.finalize(), want, "length {len}, cloned");
        }
    }
}
