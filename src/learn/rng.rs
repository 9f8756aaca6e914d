//! The small, fast, seedable random source of one selection: SplitMix64 with uniform and
//! standard-normal draws. Seeded per call from the caller's seed, so any decision can be
//! replayed exactly; a call without a seed draws one from a per-thread generator that
//! was itself seeded from the process's random keys and the clock, so unseeded calls
//! are really random. Never allocates and never locks.

use std::cell::Cell;

thread_local! {
    /// This thread's generator state, and whether it was seeded yet.
    static THREAD_RNG: Cell<(u64, bool)> = const { Cell::new((0, false)) };
}

/// A fresh random seed from this thread's generator: different on every call, on every
/// thread and in every process. No lock, no allocation.
pub fn fresh_seed() -> u64 {
    THREAD_RNG
        .try_with(|cell| {
            let (state, seeded) = cell.get();
            let mut rng = Rng(if seeded { state } else { entropy() });
            let seed = rng.next_u64();
            cell.set((rng.0, true));
            seed
        })
        // Only while the thread is being torn down: still random, just not cached.
        .unwrap_or_else(|_| Rng(entropy()).next_u64())
}

/// Start-up entropy for a thread's generator: the standard library's per-process random
/// hash keys (which differ per call), the clock, and the address of this thread's stack.
fn entropy() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    h.write_u128(now);
    let marker = 0u8;
    h.write_usize(std::ptr::addr_of!(marker) as usize);
    h.finish()
}

/// SplitMix64 (Steele, Lea & Flood 2014): 64 bits of state, passes BigCrush, ~1 ns a draw.
#[derive(Clone, Copy, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (every seed, including 0, is fine).
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n`; 0 when `n == 0`.
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// A standard normal draw for `key` that does not advance the generator: the same
    /// state and key give the same draw, different keys independent ones. Thompson
    /// sampling draws each candidate by its id, so a seeded request's picks do not
    /// depend on which candidates were scored, or in what order.
    #[inline]
    pub fn normal_at(&self, key: u64) -> f64 {
        let mut k = Rng(key);
        Rng(self.0 ^ k.next_u64()).normal()
    }

    /// A standard normal draw, by inverting the normal CDF (Acklam's rational
    /// approximation, relative error below 1.2e-9): one uniform, no rejection loop.
    #[inline]
    pub fn normal(&mut self) -> f64 {
        // Uniform in (0, 1), never exactly 0.
        let p = ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64);
        inverse_normal_cdf(p)
    }
}

/// The standard normal CDF (via `erfc`, Numerical Recipes' Chebyshev fit, relative
/// error below 1.2e-7).
pub fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    if x >= 0.0 {
        1.0 - 0.5 * erfc
    } else {
        0.5 * erfc
    }
}

/// The standard normal quantile function (Acklam's algorithm) for `p` in (0, 1).
pub fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    const LOW: f64 = 0.024_25;
    if p < LOW {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_replays_the_same_draws() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(7).next_u64(), Rng::new(8).next_u64());
    }

    #[test]
    fn normal_draws_have_the_right_moments() {
        let mut rng = Rng::new(1);
        let n = 200_000;
        let (mut sum, mut sq, mut beyond2) = (0.0, 0.0, 0);
        for _ in 0..n {
            let z = rng.normal();
            sum += z;
            sq += z * z;
            if z.abs() > 1.96 {
                beyond2 += 1;
            }
        }
        let mean = sum / n as f64;
        let var = sq / n as f64 - mean * mean;
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.02, "{var}");
        let tail = beyond2 as f64 / n as f64;
        assert!((tail - 0.05).abs() < 0.004, "{tail}");
        assert!((inverse_normal_cdf(0.975) - 1.959_964).abs() < 1e-5);
    }

    #[test]
    fn uniform_draws_stay_in_range() {
        let mut rng = Rng::new(3);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
            counts[rng.below(10)] += 1;
        }
        assert!(counts.iter().all(|c| (9_000..11_000).contains(c)), "{counts:?}");
        assert_eq!(rng.below(0), 0);
    }
}
