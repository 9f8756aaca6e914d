//! Stable 64-bit keys for strings that cross the hot path (creative ids in a person's
//! memory, regions, free context attributes). Hashing happens at the edges, when a
//! context or profile is built; `select` compares integers and never touches a string.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::quote;

/// A stable 64-bit key of a string (FNV-1a). The same string gives the same key in every
/// process and every version of this crate, so keys can be stored in profiles and logs.
///
/// In JSON a key is written as 16 lowercase hex digits (a string, so JavaScript readers
/// do not round it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(pub u64);

impl Serialize for Symbol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:016x}", self.0))
    }
}

impl<'de> Deserialize<'de> for Symbol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        if text.len() != 16 {
            return Err(serde::de::Error::custom(format!("a key is 16 hex digits, got '{}'", quote(&text))));
        }
        u64::from_str_radix(&text, 16)
            .map(Symbol)
            .map_err(|_| serde::de::Error::custom(format!("a key is 16 hex digits, got '{}'", quote(&text))))
    }
}

impl Symbol {
    /// The key of `s`. Case and whitespace are significant.
    pub const fn of(s: &str) -> Symbol {
        Symbol::fnv1a(s, false)
    }

    /// The key of a region code, whatever its ASCII case: `"fr"`, `"Fr"` and `"FR"` are
    /// one region (ISO 3166 codes are case-insensitive, and sources differ in how they
    /// write them). Equal to [`Symbol::of`] of the upper-case code.
    pub const fn region(s: &str) -> Symbol {
        Symbol::fnv1a(s, true)
    }

    /// FNV-1a over the bytes of `s`, ASCII letters upper-cased first when `upper`.
    const fn fnv1a(s: &str, upper: bool) -> Symbol {
        let bytes = s.as_bytes();
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut i = 0;
        while i < bytes.len() {
            let b = if upper { bytes[i].to_ascii_uppercase() } else { bytes[i] };
            hash ^= b as u64;
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            i += 1;
        }
        Symbol(hash)
    }
}

impl From<&str> for Symbol {
    fn from(s: &str) -> Self {
        Symbol::of(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_across_versions() {
        // FNV-1a reference values: changing the hash would orphan stored profiles.
        assert_eq!(Symbol::of("").0, 0xcbf2_9ce4_8422_2325);
        assert_eq!(Symbol::of("a").0, 0xaf63_dc4c_8601_ec8c);
        assert_ne!(Symbol::of("hero"), Symbol::of("Hero"));
    }
}
