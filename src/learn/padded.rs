//! A value alone on its cache line (two lines, for CPUs that fetch lines in adjacent
//! pairs), so that a counter every `record` bumps never shares a line with data that
//! every `select` on another core reads. Owns no logic of its own.

/// `T` aligned (and so padded) to 128 bytes.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_padded_value_fills_its_own_lines() {
        use std::sync::atomic::AtomicU64;
        assert_eq!(std::mem::align_of::<Padded<AtomicU64>>(), 128);
        assert_eq!(std::mem::size_of::<Padded<AtomicU64>>(), 128);
        let pair = [Padded(AtomicU64::new(1)), Padded(AtomicU64::new(2))];
        let gap = std::ptr::addr_of!(pair[1]) as usize - std::ptr::addr_of!(pair[0]) as usize;
        assert_eq!(gap, 128);
        assert_eq!(pair[1].load(std::sync::atomic::Ordering::Relaxed), 2);
    }
}
