//! Context rules compiled to bitmasks and hashed value lists. Checking a rule against a
//! [`Context`] is a handful of mask tests and short integer scans: no strings, no
//! allocation.

use crate::context::{Channel, Context, Daypart, Device, Weather, Weekday};
use crate::error::{quote, Error, Result};
use crate::symbol::Symbol;

use super::spec::ConditionSpec;

/// A half-open range into one of the catalog's shared pools.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Span {
    pub start: u32,
    pub len: u32,
}

impl Span {
    #[inline]
    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..(self.start + self.len) as usize
    }
}

/// One attribute rule: the value of `key` must (or must not) be among `values`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AttributeRule {
    pub key: Symbol,
    pub values: Span,
    pub negate: bool,
}

/// A compiled condition. Enumerated dimensions are sets of allowed values (bit i =
/// value i allowed); regions and attributes point into shared pools.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Condition {
    pub device: u8,
    pub channel: u8,
    pub daypart: u8,
    pub weekday: u8,
    pub weather: u8,
    pub region_in: Span,
    pub region_not: Span,
    pub attributes: Span,
}

/// Shared storage for the variable-length parts of conditions.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ConditionPool {
    pub symbols: Vec<Symbol>,
    pub attribute_rules: Vec<AttributeRule>,
}

impl ConditionPool {
    /// Compiles `spec`; errors name `creative` and the field path under `field`.
    pub fn compile(
        &mut self,
        creative: &str,
        field: &'static str,
        spec: &ConditionSpec,
    ) -> Result<Condition> {
        let device =
            mask(creative, field, "device", &spec.device, &spec.not_device, Device::parse, |d| d.bit())?;
        let channel =
            mask(creative, field, "channel", &spec.channel, &spec.not_channel, Channel::parse, |d| d.bit())?;
        let daypart =
            mask(creative, field, "daypart", &spec.daypart, &spec.not_daypart, Daypart::parse, |d| d.bit())?;
        let weekday =
            mask(creative, field, "weekday", &spec.weekday, &spec.not_weekday, Weekday::parse, |d| d.bit())?;
        let weather =
            mask(creative, field, "weather", &spec.weather, &spec.not_weather, Weather::parse, |d| d.bit())?;
        let region_in = self.symbols_span(creative, field, "region", &spec.region, Symbol::region)?;
        let region_not =
            self.symbols_span(creative, field, "not_region", &spec.not_region, Symbol::region)?;
        let mut rules = Vec::new();
        for rule in &spec.attributes {
            if rule.key.is_empty() {
                return Err(Error::creative(creative, field, "attribute rule has an empty key"));
            }
            if rule.any_of.is_empty() && rule.not_in.is_empty() {
                return Err(Error::creative(
                    creative,
                    field,
                    format!("attribute rule on '{}' lists no values ('in' or 'not_in')", quote(&rule.key)),
                ));
            }
            let key = Symbol::of(&rule.key);
            if !rule.any_of.is_empty() {
                let values = self.symbols_span(creative, field, "attributes.in", &rule.any_of, Symbol::of)?;
                rules.push(AttributeRule { key, values, negate: false });
            }
            if !rule.not_in.is_empty() {
                let values =
                    self.symbols_span(creative, field, "attributes.not_in", &rule.not_in, Symbol::of)?;
                rules.push(AttributeRule { key, values, negate: true });
            }
        }
        if let Some(problem) = contradiction(spec) {
            return Err(Error::creative(creative, field, problem));
        }
        let attributes = Span { start: self.attribute_rules.len() as u32, len: rules.len() as u32 };
        self.attribute_rules.extend(rules);
        Ok(Condition { device, channel, daypart, weekday, weather, region_in, region_not, attributes })
    }

    fn symbols_span(
        &mut self,
        creative: &str,
        field: &'static str,
        what: &str,
        values: &[String],
        key: fn(&str) -> Symbol,
    ) -> Result<Span> {
        if values.iter().any(|v| v.is_empty()) {
            return Err(Error::creative(creative, field, format!("'{what}' lists an empty value")));
        }
        let span = Span { start: self.symbols.len() as u32, len: values.len() as u32 };
        self.symbols.extend(values.iter().map(|v| key(v)));
        Ok(span)
    }

    /// True when `cond` holds in the moment described by `now`.
    #[inline]
    pub fn matches(&self, cond: &Condition, now: &Moment) -> bool {
        if cond.device & now.device == 0
            || cond.channel & now.channel == 0
            || cond.daypart & now.daypart == 0
            || cond.weekday & now.weekday == 0
            || cond.weather & now.weather == 0
        {
            return false;
        }
        if cond.region_in.len > 0 || cond.region_not.len > 0 {
            let region = now.context.region;
            let listed = |span: Span| region.is_some_and(|r| self.symbols[span.range()].contains(&r));
            if cond.region_in.len > 0 && !listed(cond.region_in) {
                return false;
            }
            if listed(cond.region_not) {
                return false;
            }
        }
        for rule in &self.attribute_rules[cond.attributes.range()] {
            let listed = now
                .context
                .attribute(rule.key)
                .is_some_and(|v| self.symbols[rule.values.range()].contains(&v));
            if listed == rule.negate {
                return false;
            }
        }
        true
    }
}

/// The context reduced to the bits conditions test, computed once per `select`.
pub(crate) struct Moment<'a> {
    pub context: &'a Context,
    pub device: u8,
    pub channel: u8,
    pub daypart: u8,
    pub weekday: u8,
    pub weather: u8,
}

impl<'a> Moment<'a> {
    pub fn of(context: &'a Context) -> Self {
        Moment {
            context,
            device: context.device.bit() as u8,
            channel: context.channel.bit() as u8,
            daypart: context.daypart().bit() as u8,
            weekday: context.weekday().bit() as u8,
            weather: context.weather.bit() as u8,
        }
    }
}

/// The allowed set for one enumerated dimension: everything when `allow` is empty,
/// minus everything in `deny`. Unknown names are errors naming the creative and field.
fn mask<T: Copy>(
    creative: &str,
    field: &'static str,
    what: &str,
    allow: &[String],
    deny: &[String],
    parse: fn(&str) -> Option<T>,
    bit: fn(T) -> u32,
) -> Result<u8> {
    let set = |names: &[String], negated: bool| -> Result<u8> {
        let mut m = 0u32;
        for name in names {
            let value = parse(name).ok_or_else(|| {
                let key = if negated { format!("not_{what}") } else { what.to_owned() };
                Error::creative(creative, field, format!("{key}: unknown {what} '{}'", quote(name)))
            })?;
            m |= bit(value);
        }
        Ok(m as u8)
    };
    let allowed = if allow.is_empty() { u8::MAX } else { set(allow, false)? };
    // An empty set is refused by [`contradiction`], which names the values.
    Ok(allowed & !set(deny, true)?)
}

/// Why a condition can never hold, if it cannot, as "field: problem": a dimension
/// whose every allowed value is also excluded (or, for devices, channels, dayparts,
/// weekdays and weather, whose every value is excluded), or an attribute key whose
/// `in` lists have no value in common or whose common values are all in `not_in`. A
/// creative targeted so would compile and never be shown. Unknown names are left to
/// [`ConditionPool::compile`], which reports them.
pub(crate) fn contradiction(spec: &ConditionSpec) -> Option<String> {
    enumerated("device", &spec.device, &spec.not_device, Device::ALL, Device::parse, Device::bit)
        .or_else(|| {
            enumerated(
                "channel",
                &spec.channel,
                &spec.not_channel,
                Channel::ALL,
                Channel::parse,
                Channel::bit,
            )
        })
        .or_else(|| {
            enumerated(
                "daypart",
                &spec.daypart,
                &spec.not_daypart,
                Daypart::ALL,
                Daypart::parse,
                Daypart::bit,
            )
        })
        .or_else(|| {
            enumerated(
                "weekday",
                &spec.weekday,
                &spec.not_weekday,
                Weekday::ALL,
                Weekday::parse,
                Weekday::bit,
            )
        })
        .or_else(|| {
            enumerated(
                "weather",
                &spec.weather,
                &spec.not_weather,
                Weather::ALL,
                Weather::parse,
                Weather::bit,
            )
        })
        .or_else(|| {
            let left: Vec<&String> = spec
                .region
                .iter()
                .filter(|r| !spec.not_region.iter().any(|n| n.eq_ignore_ascii_case(r)))
                .collect();
            (!spec.region.is_empty() && left.is_empty())
                .then(|| format!("region: the rules allow no region at all ({})", both_ways(&spec.region)))
        })
        .or_else(|| attributes_contradiction(&spec.attributes))
}

/// [`contradiction`] for one enumerated dimension (names it cannot parse are skipped).
fn enumerated<T: Copy>(
    what: &str,
    allow: &[String],
    deny: &[String],
    all: &[T],
    parse: fn(&str) -> Option<T>,
    bit: fn(T) -> u32,
) -> Option<String> {
    let set = |names: &[String]| names.iter().filter_map(|n| parse(n)).fold(0u32, |m, v| m | bit(v)) as u8;
    let allowed = if allow.is_empty() { all.iter().fold(0u32, |m, &v| m | bit(v)) as u8 } else { set(allow) };
    if allowed & !set(deny) != 0 || (!allow.is_empty() && allowed == 0) {
        return None;
    }
    let why = if allow.is_empty() { format!("every {what} is excluded") } else { both_ways(allow) };
    Some(format!("{what}: the rules allow no {what} at all ({why})"))
}

/// [`contradiction`] for attribute conditions, key by key: every `in` list on one key
/// must hold (their values in common), and no `not_in` on it may.
fn attributes_contradiction(rules: &[super::spec::AttributeRuleSpec]) -> Option<String> {
    for (i, first) in rules.iter().enumerate() {
        if rules[..i].iter().any(|r| r.key == first.key) {
            continue;
        }
        let same: Vec<_> = rules[i..].iter().filter(|r| r.key == first.key).collect();
        let lists: Vec<&Vec<String>> = same.iter().map(|r| &r.any_of).filter(|l| !l.is_empty()).collect();
        let Some((head, rest)) = lists.split_first() else { continue };
        let common: Vec<String> =
            head.iter().filter(|v| rest.iter().all(|l| l.contains(v))).cloned().collect();
        let key = quote(&first.key);
        if common.is_empty() {
            let shown: Vec<String> = lists.iter().map(|l| format!("{l:?}")).collect();
            return Some(format!(
                "attribute '{key}': the rules allow no value at all ({} have no value in common)",
                shown.join(" and ")
            ));
        }
        if common.iter().all(|v| same.iter().any(|r| r.not_in.contains(v))) {
            return Some(format!(
                "attribute '{key}': the rules allow no value at all ({})",
                both_ways(&common)
            ));
        }
    }
    None
}

/// "'FR' is both allowed and excluded", "'FR' and 'DE' are both allowed and excluded".
fn both_ways(values: &[String]) -> String {
    let mut unique: Vec<String> = Vec::new();
    for v in values {
        let v = format!("'{}'", quote(v));
        if !unique.contains(&v) {
            unique.push(v);
        }
    }
    match unique.split_last() {
        Some((last, rest)) if !rest.is_empty() => {
            format!("{} and {last} are both allowed and excluded", rest.join(", "))
        }
        _ => format!("{} is both allowed and excluded", unique.concat()),
    }
}
