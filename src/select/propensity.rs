//! Thompson's propensity: the probability that the chosen candidate's draw beats the
//! draw of every allowed rival, computed by numerical integration over the chosen
//! candidate's own draw. Deterministic (no random draws) and never allocates: the
//! rivals are gathered into a buffer the selection owns.

use crate::learn::model::sigmoid;
use crate::learn::normal_cdf;

/// How far out, in standard deviations, a draw is followed. A rival is left out when even
/// its draw this far up cannot reach the chosen candidate's draw this far down, and the
/// pruned scan scores every candidate that could (see `index::DRAW_SPREAD`): what is
/// left out is below `Φ(−4.5) ≈ 3.4e-6` per rival and for the chosen draw's own tail.
pub(super) const SPREAD: f64 = 4.5;

/// A rival whose whole transition (from surely winning to surely losing) spans less
/// than this many of the chosen draw's standard deviations is taken as a step at its
/// middle: the error is of the order of the square of its width.
const STEP: f64 = 0.01;

/// How far the chosen draw is followed, in its standard deviations: beyond, its own
/// chance is below `Φ(−5.5) ≈ 2e-8`.
const RANGE: f64 = 5.5;

/// The widest interval of the integration, in the chosen draw's standard deviations
/// (its own density must be followed too).
const MAX_STEP: f64 = 0.8;

/// The widest interval, as a share of the narrowest transition's standard deviation.
/// At 1.0 the propensities of one request's possible picks summed to 1.0013 on a
/// catalog of 300 with about 60 possible winners (each a little high); at 0.5 to
/// 1.0000, for about 9 % more instructions per cold Thompson pick.
const RESOLVE: f64 = 0.5;

/// The widest interval of a slate's integrals (their cumulative sums converge more
/// slowly than a whole integral).
const SLATE_STEP: f64 = 0.3;

/// The fewest and most intervals over the chosen draw's range.
const MIN_INTERVALS: usize = 6;
const MAX_INTERVALS: usize = 512;

/// What one slot's grid of a slate holds at most: cumulative and integrand per point.
pub(super) const SLATE_GRID: usize = 2 * (MAX_INTERVALS + 1);

/// The step by which the range's start moves up past where the rivals leave nothing.
const COARSE: f64 = 0.25;

/// Below this, what the rivals leave the chosen draw counts as nothing.
const NEGLIGIBLE: f64 = 1e-12;

/// The least propensity reported: a pick whose probability is computed below this (it
/// was drawn far out in a tail) reports this, so that no logged propensity is 0.
pub const MIN_PROPENSITY: f64 = 1e-9;

/// A rival as the integration sees it: its lifted log-odds and draw standard deviation,
/// and the chosen draw (in its standard deviations) below which it surely wins and
/// above which it surely loses.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Rival {
    logit: f64,
    sd: f64,
    below: f64,
    above: f64,
    /// The chosen draw's priority over the rival's, and its log.
    ratio: f64,
    ln_ratio: f64,
    /// For a slate ([`thompson_joint`]): the last slot whose pick it had to stay below.
    slot: usize,
}

/// A draw, as Thompson ranks it: `priority · σ(logit + sd · z)`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Draw {
    pub priority: f32,
    pub logit: f32,
    pub sd: f32,
}

/// The chosen candidate's draw and what a rival's key is against it.
struct Chosen {
    priority: f64,
    logit: f64,
    sd: f64,
}

impl Chosen {
    /// The chosen draw (in its standard deviations) at which its key equals a rival's of
    /// `priority` at log-odds `y`: +∞ when that key is out of its reach.
    fn z_at(&self, priority: f64, y: f64) -> f64 {
        let x = if priority == self.priority {
            y
        } else {
            let q = priority / self.priority * sigmoid(y);
            if q >= 1.0 {
                return f64::INFINITY;
            }
            (q / (1.0 - q)).ln()
        };
        (x - self.logit) / self.sd
    }
}

/// The probability that `rival`'s draw stays below the chosen draw at a `z` below
/// the rival's `above`, given the chosen draw's `x = logit + sd · z`, `σ(x)` and
/// `ln σ(x)` there.
#[inline]
fn beaten(rival: &Rival, x: f64, sx: f64, ln_sx: f64) -> f64 {
    // The rival's log-odds at which its key equals the chosen key:
    // logit(r · σ(x)) with r the ratio of priorities.
    let y = if rival.ratio == 1.0 {
        x
    } else {
        let u = rival.ratio * sx;
        if u >= 1.0 {
            return 1.0;
        }
        rival.ln_ratio + ln_sx - ln_1m(u)
    };
    fast_cdf((y - rival.logit) / rival.sd)
}

/// `ln(1 − u)` for `u` in [0, 1): for the rates clicks have (below 0.25) as
/// `−2·atanh(t)` with `t = u / (2 − u)` below 1/7, six terms of its odd series
/// `t + t³/3 + … + t¹¹/11` (the rest is below `t¹²/(13·(1 − t²)) < 6e-12` of the sum),
/// the library's `ln_1p` beyond (relative error below 1e-10 either way). The integration
/// calls it once per rival and node: six terms in `t²` cost half the fourteen of the
/// plain series in `u`, which converges four times slower.
#[inline]
fn ln_1m(u: f64) -> f64 {
    if u < 0.25 {
        let t = u / (2.0 - u);
        let t2 = t * t;
        let odd = 1.0
            + t2 * (1.0 / 3.0 + t2 * (1.0 / 5.0 + t2 * (1.0 / 7.0 + t2 * (1.0 / 9.0 + t2 * (1.0 / 11.0)))));
        -2.0 * t * odd
    } else {
        (-u).ln_1p()
    }
}

/// The standard normal CDF by cubic Hermite interpolation in a table of `Φ` and `φ` at
/// steps of 1/32 over ±8 (error below 2e-9 added to that of [`normal_cdf`]): the
/// integration calls it once per rival and node, where the library's `exp` is most of
/// the cost. The table holds each interval's cubic already in powers of the share of
/// the interval (three multiply-adds per call instead of the Hermite form's dozen).
#[inline]
fn fast_cdf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x <= -CDF_EDGE {
        return 0.0;
    }
    if x >= CDF_EDGE {
        return 1.0;
    }
    let table = cdf_table();
    let t = (x + CDF_EDGE) * CDF_STEPS;
    // `t` is in [0, 512]: through `u32`, whose saturating conversion costs less.
    let i = (t as u32 as usize).min(CDF_POINTS - 2);
    let f = t - i as f64;
    let [a, b, c, d] = table[i];
    (a + f * (b + f * (c + f * d))).clamp(0.0, 1.0)
}

/// Where [`fast_cdf`]'s table ends, its points per unit, and its points.
const CDF_EDGE: f64 = 8.0;
const CDF_STEPS: f64 = 32.0;
const CDF_POINTS: usize = 513;

/// Per interval `[x_i, x_i + 1/32]` with `x_i = −8 + i/32`, the coefficients `[a, b, c,
/// d]` of `a + b·f + c·f² + d·f³` at share `f` of the interval: the cubic Hermite
/// interpolant of `Φ` from `Φ` and `φ` at both ends ([`hermite`] written out in powers of
/// `f`). Built once, in place (no allocation).
pub(super) fn cdf_table() -> &'static [[f64; 4]; CDF_POINTS - 1] {
    static TABLE: std::sync::OnceLock<[[f64; 4]; CDF_POINTS - 1]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let at = |i: usize| {
            let x = -CDF_EDGE + i as f64 / CDF_STEPS;
            (normal_cdf(x), density(x) / CDF_STEPS)
        };
        let mut table = [[0.0; 4]; CDF_POINTS - 1];
        let mut next = at(0);
        for (i, entry) in table.iter_mut().enumerate() {
            // Values and slopes per whole interval (the slope times its width).
            let ((p0, s0), (p1, s1)) = (next, at(i + 1));
            next = (p1, s1);
            *entry = [p0, s0, 3.0 * (p1 - p0) - 2.0 * s0 - s1, 2.0 * (p0 - p1) + s0 + s1];
        }
        table
    })
}

/// The probability that `me`'s draw beats every one of `rivals`' (independent normal
/// draws in log-odds, as `select` makes them), at least [`MIN_PROPENSITY`].
///
/// Written as `∫ φ(z) Π_c P(rival c's key < me's key at z) dz` over `me`'s draw `z`.
/// Rivals whose transition is narrow (a draw of little uncertainty against a wide one)
/// are steps that cut the range from below; the others are integrated by the trapezoid
/// rule from where they leave `me` a chance that is not negligible, with intervals of at
/// most the narrowest transition's deviation (at most 512).
pub(super) fn thompson_propensity(me: Draw, rivals: impl Iterator<Item = Draw>, buf: &mut Vec<Rival>) -> f64 {
    let me = Chosen::of(me);
    match setup(&me, rivals, buf) {
        Setup::Done(p) => p,
        Setup::From(lo) => integrate(&me, buf, lo),
    }
}

/// [`thompson_propensity`] against the rivals [`thompson_support`] placed in `buf` for
/// the same draw (`start`, what it returned with them) followed by `more`: the same
/// rivals in the same order give the same placement, so those are not placed again.
pub(super) fn thompson_propensity_after(
    me: Draw,
    start: f64,
    more: impl Iterator<Item = Draw>,
    buf: &mut Vec<Rival>,
) -> f64 {
    let me = Chosen::of(me);
    match place_from(&me, start, more, buf).0 {
        Setup::Done(p) => p,
        Setup::From(lo) => integrate(&me, buf, lo),
    }
}

/// The lowest `ln key` of `me`'s draw at which `rivals` leave it a chance that is not
/// negligible: a rival whose draw cannot reach it there cannot change `me`'s
/// propensity. Every rival beyond `rivals` that could reach it must be among them for
/// the propensity to be right; more rivals only raise this. With it, for a draw with
/// spread, where the placed rivals (left in `buf`) start to leave it a chance: what
/// [`thompson_propensity_after`] continues from.
pub(super) fn thompson_support(
    me: Draw,
    rivals: impl Iterator<Item = Draw>,
    buf: &mut Vec<Rival>,
) -> (f64, Option<f64>) {
    let chosen = Chosen::of(me);
    let (placed, start) = match spread_setup(&chosen, rivals, buf) {
        Ok((placed, start)) => (placed, Some(start)),
        Err(placed) => (placed, None),
    };
    let z = match placed {
        Setup::Done(_) if chosen.sd > 0.0 => RANGE,
        Setup::Done(_) => 0.0,
        Setup::From(lo) => lo,
    };
    ((chosen.priority * sigmoid(chosen.logit + chosen.sd * z)).max(f64::MIN_POSITIVE).ln(), start)
}

/// What [`setup`] found: the propensity already, or the rivals in the buffer and where
/// in `me`'s draw they start to leave it a chance.
enum Setup {
    Done(f64),
    From(f64),
}

impl Chosen {
    fn of(d: Draw) -> Chosen {
        Chosen { priority: f64::from(d.priority), logit: f64::from(d.logit), sd: f64::from(d.sd) }
    }
}

/// Gathers the rivals that can reach `me`'s draw into `buf`
/// and finds where the integration starts.
fn setup(me: &Chosen, rivals: impl Iterator<Item = Draw>, buf: &mut Vec<Rival>) -> Setup {
    match spread_setup(me, rivals, buf) {
        Ok((placed, _)) | Err(placed) => placed,
    }
}

/// [`setup`], and for a draw with spread (`Ok`) where the placed rivals start to leave
/// it a chance.
fn spread_setup(
    me: &Chosen,
    rivals: impl Iterator<Item = Draw>,
    buf: &mut Vec<Rival>,
) -> Result<(Setup, f64), Setup> {
    buf.clear();
    if me.priority <= 0.0 || me.sd.is_nan() || me.sd <= 0.0 {
        // A draw without spread: it beats the rivals that cannot reach it.
        let key = me.priority * sigmoid(me.logit);
        let mut p = 1.0;
        for r in rivals {
            let (priority, logit, sd) = (f64::from(r.priority), f64::from(r.logit), f64::from(r.sd));
            if priority <= 0.0 || key >= priority {
                continue;
            }
            let q = key / priority;
            let y = (q / (1.0 - q)).ln();
            p *= if sd > 0.0 {
                normal_cdf((y - logit) / sd)
            } else if y >= logit {
                1.0
            } else {
                0.0
            };
        }
        return Err(Setup::Done(p.clamp(MIN_PROPENSITY, 1.0)));
    }
    // Below `start` some rival surely wins; above a rival's `above` it surely loses.
    Ok(place_from(me, -RANGE, rivals, buf))
}

/// Places `rivals` after those already in `buf` (placed from `-RANGE` up to `start`),
/// keeps those that reach past where the rivals leave `me` a chance, and finds where
/// the integration starts; with where they leave it a chance. `buf` is kept in
/// placement order, and a rival left out by an earlier `start` would be left out by the
/// later one too (it only rises), so placing the rivals in two parts leaves what
/// placing them at once does.
fn place_from(
    me: &Chosen,
    mut start: f64,
    rivals: impl Iterator<Item = Draw>,
    buf: &mut Vec<Rival>,
) -> (Setup, f64) {
    for r in rivals {
        // A rival surely beaten above where another surely wins would be left out below.
        if let Some(rival) = place(me, r, 0, &mut start, true) {
            // Reserved for every candidate of the largest placement: never grows.
            buf.push(rival);
        }
    }
    if start >= RANGE {
        buf.clear();
        return (Setup::Done(MIN_PROPENSITY), start);
    }
    // Rivals the chosen draw surely beats over the whole range are left out.
    buf.retain(|r| r.above > start);
    (Setup::From(range_start(me, buf, start)), start)
}

/// Where `r` stands against the chosen draw `me` (as the rival of `slot`): `None` when
/// it cannot reach `me`'s draw (with `prune`, nor past `start`, as the single slot
/// leaves such a rival out in the end anyway), or when its transition is so narrow that
/// it is a step, which moves `start` (where `me` starts to have a chance) up to its
/// middle; otherwise the rival, after moving `start` up to where it surely wins. Its
/// `above` comes first: most of a large catalog's rivals stop there.
#[inline]
fn place(me: &Chosen, r: Draw, slot: usize, start: &mut f64, prune: bool) -> Option<Rival> {
    let (priority, logit, sd) = (f64::from(r.priority), f64::from(r.logit), f64::from(r.sd.max(0.0)));
    if priority <= 0.0 {
        return None;
    }
    let above = me.z_at(priority, logit + SPREAD * sd);
    if above <= -RANGE || (prune && above <= *start) {
        // Out of reach of the chosen draw, or (`prune`) surely beaten wherever some rival
        // does not surely win: it moves nothing (its `below` and middle are lower still).
        return None;
    }
    let below = me.z_at(priority, logit - SPREAD * sd);
    if above - below < 2.0 * SPREAD * STEP {
        *start = start.max(me.z_at(priority, logit));
        return None;
    }
    *start = start.max(below);
    let ratio = me.priority / priority;
    Some(Rival { logit, sd, below, above, ratio, ln_ratio: ratio.ln(), slot })
}

/// Together the rivals (of one slot) may leave nothing well above `start`: where what
/// they leave stops being negligible, on a grid fixed in the chosen draw (so a rival
/// that cannot reach it there changes nothing, whether it is among them or not).
fn range_start(me: &Chosen, rivals: &[Rival], start: f64) -> f64 {
    let mut lo = -RANGE + ((start + RANGE) / COARSE).floor() * COARSE;
    while lo + COARSE < RANGE && beats(me, rivals, lo + COARSE) == 0.0 {
        lo += COARSE;
    }
    lo
}

/// The intervals over `[lo, RANGE]` and their width: at most `widest`, and at most the
/// deviation of the narrowest transition among the rivals (of one slot) that reach
/// past `lo` (its span covers 2·SPREAD of the rival's).
fn intervals(rivals: &[Rival], lo: f64, widest: f64) -> (usize, f64) {
    let narrowest = rivals
        .iter()
        .filter(|r| r.above > lo)
        .map(|r| (r.above - r.below) / (2.0 * SPREAD))
        .fold(f64::INFINITY, f64::min);
    let h_wanted = (RESOLVE * narrowest).clamp(STEP / 2.0, widest);
    let n = (((RANGE - lo) / h_wanted).ceil() as usize).clamp(MIN_INTERVALS, MAX_INTERVALS);
    (n, (RANGE - lo) / n as f64)
}

/// The standard normal density.
#[inline]
fn density(z: f64) -> f64 {
    (-0.5 * z * z).exp() * (1.0 / (2.0 * std::f64::consts::PI).sqrt())
}

/// Cubic Hermite interpolation at share `f` of an interval of width `h`, from the
/// values `p0`, `p1` and slopes `s0`, `s1` at its ends.
#[inline]
fn hermite(f: f64, h: f64, (p0, s0): (f64, f64), (p1, s1): (f64, f64)) -> f64 {
    let g = 1.0 - f;
    (1.0 + 2.0 * f) * g * g * p0 + f * g * g * h * s0 + f * f * (3.0 - 2.0 * f) * p1 - f * f * g * h * s1
}

/// What `rivals` (of one slot) leave the chosen draw at `z`: the product of the chances
/// that each stays below it (0 once negligible: the factors are at most 1, so the whole
/// product would be too).
#[inline]
fn beats(me: &Chosen, rivals: &[Rival], z: f64) -> f64 {
    if rivals.is_empty() {
        // A slot of a slate that turned no rival away.
        return 1.0;
    }
    let x = me.logit + me.sd * z;
    let sx = sigmoid(x);
    let ln_sx = sx.ln();
    let mut g = 1.0;
    for r in rivals {
        if z >= r.above {
            // It surely loses.
            continue;
        }
        g *= beaten(r, x, sx, ln_sx);
        if g < NEGLIGIBLE {
            return 0.0;
        }
    }
    g
}

/// `∫ φ(z) · beats(z) dz` from `lo` up, by the trapezoid rule over `[lo, RANGE]`:
/// the integrand vanishes at both ends and is smooth in between, where the rule
/// converges fastest.
fn integrate(me: &Chosen, rivals: &[Rival], lo: f64) -> f64 {
    if rivals.is_empty() {
        // Nothing can beat the chosen draw above `lo` (and no rival at all: 1).
        let p = if lo <= -RANGE { 1.0 } else { normal_cdf(-lo) };
        return p.clamp(MIN_PROPENSITY, 1.0);
    }
    let (n, h) = intervals(rivals, lo, MAX_STEP);
    let mut sum = 0.5 * (density(lo) * beats(me, rivals, lo) + density(RANGE));
    for i in 1..n {
        let z = lo + h * i as f64;
        sum += density(z) * beats(me, rivals, z);
    }
    (sum * h + normal_cdf(-RANGE)).clamp(MIN_PROPENSITY, 1.0)
}

/// Thompson's slate: the probability that the picks of the first slots come out as
/// `picks` (in slot order) when each slot takes the best draw its rivals allow, every
/// rival `(draw, slot)` staying below the pick of the last slot that allowed it:
/// `∫_{x₁ > x₂ > …} Π_i f_i(x_i) Π_{c at slot i} F_c(x_i) dx`, integrated slot by slot
/// over each pick's own draw, the slots before it carried as a cumulative integral
/// (trapezoid rule with its end correction, read back by cubic Hermite
/// interpolation). A later slot's propensity is the ratio of two of these, for its
/// slots and for the slots before it. `None` when a pick's draw has no spread (the
/// caller then falls back to [`thompson_propensity`]).
pub(super) fn thompson_joint(
    picks: &[Draw],
    rivals: impl Iterator<Item = (Draw, usize)>,
    buf: &mut Vec<Rival>,
    grids: &mut [Vec<f64>; 2],
    start: &mut Vec<f64>,
) -> Option<f64> {
    let chosen = |i: usize| picks.get(i).map(|&d| Chosen::of(d));
    if picks.is_empty() || picks.iter().any(|d| d.priority <= 0.0 || d.sd.is_nan() || d.sd <= 0.0) {
        return None;
    }
    buf.clear();
    // Per slot, where its pick's draw starts to have a chance (narrow rivals as steps).
    // Both buffers are reserved for the most picks a selection takes: they never grow.
    start.clear();
    start.resize(picks.len(), -RANGE);
    for (r, slot) in rivals {
        let (Some(me), Some(from)) = (chosen(slot), start.get_mut(slot)) else { continue };
        // A slate keeps them all: its range may start below a slot's `start`.
        if let Some(rival) = place(&me, r, slot, from, false) {
            buf.push(rival);
        }
    }
    // Each slot's rivals together, so that a slot reads only its own (most of a slate's
    // rivals are usually allowed to the last slot, and the first slots have few).
    buf.sort_unstable_by_key(|r| r.slot);
    // The slots before, as a cumulative integral on the previous pick's grid: `(lo, h,
    // n)` with the values in `grids[0]` (cumulative, then integrand).
    let mut prev: Option<(f64, f64, usize)> = None;
    let mut total = 0.0;
    for (i, me) in picks.iter().map(|&d| Chosen::of(d)).enumerate() {
        let me = &me;
        let before = |k: f64, grid: &[f64]| -> f64 {
            let (Some((lo, h, n)), Some(p)) = (prev, i.checked_sub(1).and_then(chosen)) else {
                return 1.0;
            };
            // Where the previous pick's draw gives key `k`.
            let q = k / p.priority;
            if q >= 1.0 {
                return 0.0;
            }
            let z = ((q / (1.0 - q)).ln() - p.logit) / p.sd;
            let (cum, val) = grid.split_at(n + 1);
            if z <= lo {
                return cum[0];
            }
            if z >= RANGE {
                return 0.0;
            }
            let t = (z - lo) / h;
            let a = (t as usize).min(n - 1);
            // The cumulative's slope is minus the integrand.
            hermite(t - a as f64, h, (cum[a], -val[a]), (cum[a + 1], -val[a + 1])).max(0.0)
        };
        if start[i] >= RANGE {
            return Some(0.0);
        }
        // The range: where this slot's rivals leave the pick a chance.
        let mine = &buf[buf.partition_point(|r| r.slot < i)..buf.partition_point(|r| r.slot <= i)];
        let lo = range_start(me, mine, start[i]);
        let (n, h) = intervals(mine, lo, SLATE_STEP);
        let [old, new] = grids;
        new.clear();
        new.resize(2 * (n + 1), 0.0);
        let key = |z: f64| me.priority * sigmoid(me.logit + me.sd * z);
        for m in 0..=n {
            let z = lo + h * m as f64;
            let v = density(z) * beats(me, mine, z) * before(key(z), old);
            new[n + 1 + m] = v;
        }
        // Cumulative from the top (what lies past RANGE is negligible), with the
        // trapezoid rule's end correction `h²/12 · (v'(z) − v'(top))`.
        let (cum, val) = new.split_at_mut(n + 1);
        let slope = |m: usize| -> f64 {
            if m == 0 {
                (-3.0 * val[0] + 4.0 * val[1] - val[2]) / (2.0 * h)
            } else if m == n {
                (3.0 * val[n] - 4.0 * val[n - 1] + val[n - 2]) / (2.0 * h)
            } else {
                (val[m + 1] - val[m - 1]) / (2.0 * h)
            }
        };
        let top = slope(n);
        cum[n] = 0.0;
        let mut acc = 0.0;
        for m in (0..n).rev() {
            acc += 0.5 * h * (val[m] + val[m + 1]);
            cum[m] = (acc + h * h / 12.0 * (slope(m) - top)).max(0.0);
        }
        total = cum[0];
        std::mem::swap(old, new);
        prev = Some((lo, h, n));
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Monte Carlo over the same draws `select` makes: the share of draws the first one
    /// wins.
    fn simulated(me: Draw, rivals: &[Draw], n: u32) -> f64 {
        let mut rng = crate::learn::Rng::new(7);
        let key = |d: Draw, z: f64| f64::from(d.priority) * sigmoid(f64::from(d.logit) + f64::from(d.sd) * z);
        let mut wins = 0u32;
        for _ in 0..n {
            let mine = key(me, rng.normal());
            if rivals.iter().all(|&r| key(r, rng.normal()) < mine) {
                wins += 1;
            }
        }
        f64::from(wins) / f64::from(n)
    }

    fn d(priority: f32, logit: f32, sd: f32) -> Draw {
        Draw { priority, logit, sd }
    }

    #[test]
    fn one_rival_of_equal_priority_has_a_closed_form() {
        // P(l1 + s1 Z1 > l2 + s2 Z2) = Φ((l1 − l2) / √(s1² + s2²)).
        for (l1, s1, l2, s2) in [(-3.0, 0.3, -3.2, 0.1), (-2.0, 0.05, -2.0, 0.4), (-4.0, 0.2, -3.5, 0.2)] {
            let mut buf = Vec::with_capacity(4);
            let p = thompson_propensity(d(1.0, l1, s1), [d(1.0, l2, s2)].into_iter(), &mut buf);
            let exact = normal_cdf(f64::from(l1 - l2) / f64::from(s1 * s1 + s2 * s2).sqrt());
            assert!((p - exact).abs() < 2e-5, "{p} vs {exact} for {:?}", (l1, s1, l2, s2));
        }
    }

    /// The same integral by brute force: every rival, Simpson's rule with 8,000
    /// intervals over ±8 standard deviations of the chosen draw.
    fn reference(me: Draw, rivals: &[Draw]) -> f64 {
        let key = |d: Draw, z: f64| f64::from(d.priority) * sigmoid(f64::from(d.logit) + f64::from(d.sd) * z);
        let below = |r: Draw, k: f64| {
            let q = k / f64::from(r.priority);
            if q >= 1.0 {
                return 1.0;
            }
            normal_cdf(((q / (1.0 - q)).ln() - f64::from(r.logit)) / f64::from(r.sd))
        };
        let f = |z: f64| {
            let k = key(me, z);
            (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
                * rivals.iter().map(|&r| below(r, k)).product::<f64>()
        };
        let n = 8_000;
        let h = 16.0 / f64::from(n);
        let mut sum = f(-8.0) + f(8.0);
        for i in 1..n {
            sum += if i % 2 == 1 { 4.0 } else { 2.0 } * f(-8.0 + h * f64::from(i));
        }
        sum * h / 3.0
    }

    #[test]
    fn random_rivals_agree_with_brute_force() {
        let mut rng = crate::learn::Rng::new(11);
        let mut worst = (0.0f64, 0.0f64);
        for case in 0..300 {
            let n = 1 + rng.below(60);
            let spread = [0.02, 0.1, 0.3, 0.8][case % 4];
            // Every third case: rivals far surer than the chosen draw (narrow transitions).
            let narrow = case % 3 == 0;
            let sd = |rng: &mut crate::learn::Rng| (0.01 + 0.3 * rng.unit()) as f32;
            let rival_sd = |rng: &mut crate::learn::Rng| {
                if narrow {
                    (0.004 + 0.03 * rng.unit()) as f32
                } else {
                    sd(rng)
                }
            };
            let priority =
                |rng: &mut crate::learn::Rng| if rng.unit() < 0.3 { (0.5 + rng.unit()) as f32 } else { 1.0 };
            let me = d(priority(&mut rng), -3.0, sd(&mut rng));
            let rivals: Vec<Draw> = (0..n)
                .map(|_| d(priority(&mut rng), (-3.0 - spread * 2.0 * rng.unit()) as f32, rival_sd(&mut rng)))
                .collect();
            let mut buf = Vec::with_capacity(n);
            let p = thompson_propensity(me, rivals.iter().copied(), &mut buf);
            let exact = reference(me, &rivals).max(MIN_PROPENSITY);
            let err = (p - exact).abs();
            assert!(err < 1e-3 * exact + 1e-5, "case {case}: {p} vs {exact} ({me:?}, {n} rivals)");
            if exact > 1e-4 {
                worst.0 = worst.0.max(err / exact);
            }
            worst.1 = worst.1.max(err);
        }
        eprintln!("worst relative error (above 1e-4) and absolute error: {worst:?}");
    }

    #[test]
    fn many_rivals_agree_with_simulation() {
        let me = d(0.8, -2.9, 0.15);
        let rivals: Vec<Draw> = (0..40)
            .map(|i| {
                let f = i as f32;
                d(if i % 3 == 0 { 1.0 } else { 0.8 }, -3.3 + 0.01 * f, 0.02 + 0.005 * (f % 7.0))
            })
            .chain(std::iter::repeat_n(d(0.8, -3.0, 0.1), 5))
            .collect();
        let mut buf = Vec::with_capacity(rivals.len());
        let p = thompson_propensity(me, rivals.iter().copied(), &mut buf);
        let n = 400_000;
        let s = simulated(me, &rivals, n);
        let sd = (s * (1.0 - s) / f64::from(n)).sqrt();
        assert!((p - s).abs() < 5.0 * sd + 1e-4, "computed {p}, simulated {s} ± {sd}");
        assert!(buf.capacity() == rivals.len(), "the buffer did not grow");
    }

    /// A slate by simulation: the share of draws in which every slot's pick is the best
    /// draw among what that slot allowed (rival `(draw, slot)`: allowed up to `slot`).
    fn simulated_slate(picks: &[Draw], rivals: &[(Draw, usize)], n: u32) -> f64 {
        let mut rng = crate::learn::Rng::new(5);
        let key = |d: Draw, z: f64| f64::from(d.priority) * sigmoid(f64::from(d.logit) + f64::from(d.sd) * z);
        let mut hits = 0u32;
        for _ in 0..n {
            let mine: Vec<f64> = picks.iter().map(|&p| key(p, rng.normal())).collect();
            let theirs: Vec<(f64, usize)> = rivals.iter().map(|&(r, s)| (key(r, rng.normal()), s)).collect();
            let ordered = mine.windows(2).all(|w| w[0] > w[1]);
            if ordered && theirs.iter().all(|&(k, slot)| k < mine[slot]) {
                hits += 1;
            }
        }
        f64::from(hits) / f64::from(n)
    }

    #[test]
    fn a_slate_agrees_with_simulation() {
        let picks = [d(1.0, -2.9, 0.2), d(0.9, -2.95, 0.15), d(1.0, -3.1, 0.3)];
        let mut rivals: Vec<(Draw, usize)> = (0..12)
            .map(|i| {
                let f = i as f32;
                (d(if i % 4 == 0 { 0.8 } else { 1.0 }, -3.2 + 0.02 * f, 0.05 + 0.02 * (f % 5.0)), 2)
            })
            .collect();
        // Two rivals the diversity rules turned away after the first pick, one after the
        // second: they only had to stay below the earlier picks.
        rivals.push((d(1.0, -2.95, 0.1), 0));
        rivals.push((d(1.0, -3.0, 0.25), 0));
        rivals.push((d(0.9, -3.0, 0.1), 1));
        let mut buf = Vec::with_capacity(rivals.len());
        let mut grids = [Vec::with_capacity(1100), Vec::with_capacity(1100)];
        for slots in 1..=3 {
            let these: Vec<(Draw, usize)> = rivals.iter().map(|&(r, s)| (r, s.min(slots - 1))).collect();
            let mut starts = Vec::with_capacity(3);
            let p = thompson_joint(&picks[..slots], these.iter().copied(), &mut buf, &mut grids, &mut starts)
                .unwrap();
            let n = 1_000_000;
            let s = simulated_slate(&picks[..slots], &these, n);
            let sd = (s * (1.0 - s) / f64::from(n)).sqrt();
            assert!((p - s).abs() < 5.0 * sd + 2e-4 * s, "{slots} slots: computed {p}, simulated {s} ± {sd}");
            if slots == 1 {
                let single = thompson_propensity(picks[0], these.iter().map(|&(r, _)| r), &mut buf);
                assert!((p - single).abs() < 1e-4 * single, "{p} vs one slot's {single}");
            }
        }
    }

    #[test]
    fn no_rival_means_certainty_and_a_hopeless_draw_reports_the_least() {
        let mut buf = Vec::with_capacity(2);
        assert_eq!(thompson_propensity(d(1.0, -3.0, 0.2), std::iter::empty(), &mut buf), 1.0);
        let p = thompson_propensity(d(1.0, -6.0, 0.01), [d(1.0, -1.0, 0.01)].into_iter(), &mut buf);
        assert_eq!(p, MIN_PROPENSITY);
    }
}
