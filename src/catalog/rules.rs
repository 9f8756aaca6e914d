//! Catalog-wide rules keyed on creative attributes: "video never goes out by email",
//! "discounts get a boost on mobile". Each rule names an attribute condition (key, `in`,
//! `not_in`) and adds targeting (a conjunction with the creative's own) and boosts to
//! every creative and template variant it matches. Applied once, when the catalog is
//! compiled: `select` sees ordinary targeting and boosts and pays nothing for them. A
//! rule on an attribute name or value no creative carries is refused, never a no-op.

use std::borrow::Cow;

use ahash::{AHashMap, AHashSet};
use serde::{Deserialize, Serialize};

use super::spec::{BoostSpec, ConditionSpec, CreativeSpec};
use super::{MAX_ATTRIBUTE_LEN, MAX_BOOSTS};
use crate::error::{quote, Error, Result};

/// The most attribute rules one catalog may hold.
pub const MAX_ATTRIBUTE_RULES: usize = 256;

/// A catalog-wide rule on creative attributes: every creative (and template variant)
/// whose attribute `key` has a value in `in` (any value when empty) and not in `not_in`
/// gets `targeting` added to its own (both must hold) and `boosts` appended to its own. A
/// creative without the attribute fails a non-empty `in`, passes `not_in`, and fails a
/// rule with neither (which is about the creatives that carry the key). The key
/// must be an attribute some creative or variant of the catalog carries, and every value
/// in `in` and `not_in` one it takes: the catalog refuses a rule that would otherwise
/// match nothing, or everything, because of a typo.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreativeRuleSpec {
    /// The attribute's name, e.g. `format`.
    pub key: String,
    /// The values the rule applies to (empty: any value; with no `not_in` either, the
    /// creative must carry the attribute, or the key would mean nothing).
    #[serde(default, rename = "in", skip_serializing_if = "Vec::is_empty")]
    pub any_of: Vec<String>,
    /// Values the rule does not apply to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_in: Vec<String>,
    /// Context rules every matching creative must also meet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targeting: Option<ConditionSpec>,
    /// Boosts every matching creative gets in addition to its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub boosts: Vec<BoostSpec>,
}

impl CreativeRuleSpec {
    /// Whether the rule applies to a creative with these attributes.
    fn matches(&self, attributes: &[(String, String)]) -> bool {
        let value = attributes.iter().find(|(k, _)| *k == self.key).map(|(_, v)| v.as_str());
        let allowed = if self.any_of.is_empty() {
            // `not_in` alone lets a creative without the attribute pass (as context rules
            // do); with neither list the rule is about creatives that carry the key.
            value.is_some() || !self.not_in.is_empty()
        } else {
            value.is_some_and(|v| self.any_of.iter().any(|a| a == v))
        };
        let excluded = value.is_some_and(|v| self.not_in.iter().any(|n| n == v));
        allowed && !excluded
    }
}

/// Checks every rule on its own; errors name `attribute_rules[i]` and the field.
pub(crate) fn validate(rules: &[CreativeRuleSpec]) -> Result<()> {
    if rules.len() > MAX_ATTRIBUTE_RULES {
        return Err(Error::invalid(
            "catalog",
            "attribute_rules",
            format!("{} rules (at most {MAX_ATTRIBUTE_RULES})", rules.len()),
        ));
    }
    for (i, r) in rules.iter().enumerate() {
        let bad = |field: &str, problem: String| {
            Err(Error::invalid("catalog", format!("attribute_rules[{i}].{field}"), problem))
        };
        if r.key.trim().is_empty() {
            return bad("key", "the attribute name is empty".to_owned());
        }
        for v in std::iter::once(&r.key).chain(&r.any_of).chain(&r.not_in) {
            if v.len() > MAX_ATTRIBUTE_LEN {
                return bad(
                    "key",
                    format!("'{}' is {} bytes (at most {MAX_ATTRIBUTE_LEN})", quote(v), v.len()),
                );
            }
        }
        if !r.any_of.is_empty() && r.any_of.iter().all(|v| r.not_in.contains(v)) {
            let listed: Vec<String> = r.any_of.iter().map(|v| format!("'{}'", quote(v))).collect();
            return bad(
                "not_in",
                format!(
                    "{} in both 'in' and 'not_in': the rule would apply to no creative",
                    listed.join(", ")
                ),
            );
        }
        if r.targeting.is_none() && r.boosts.is_empty() {
            return bad(
                "targeting",
                "the rule neither targets nor boosts: give it one or the other".to_owned(),
            );
        }
        if r.boosts.len() > MAX_BOOSTS {
            return bad("boosts", format!("{} boosts (at most {MAX_BOOSTS})", r.boosts.len()));
        }
        for b in &r.boosts {
            if let Err(problem) = super::check_boost_factor(b.factor) {
                return bad("boosts", problem);
            }
        }
        // The rule's own conditions are checked here, not only once joined with a
        // creative's: a misspelt value ('phablet') or a condition that allows nothing
        // would otherwise pass unseen whenever no creative happens to match yet.
        let mut pool = super::ConditionPool::default();
        let conditions =
            r.targeting.iter().map(|t| ("targeting", t)).chain(r.boosts.iter().map(|b| ("boosts", &b.when)));
        for (field, condition) in conditions {
            match pool.compile("", field, condition) {
                Ok(_) => {}
                Err(Error::InvalidCreative { problem, .. }) => return bad(field, problem),
                Err(other) => return bad(field, other.to_string()),
            }
        }
    }
    Ok(())
}

/// Checks every rule against the attributes the catalog's creatives and template
/// variants carry (`attributes`, every (name, value) pair, repeats allowed): a rule
/// whose key no creative carries, or whose `in` / `not_in` lists a value no creative
/// has, is refused, since it would silently match nothing (or, through `not_in` alone,
/// everything). Errors name `attribute_rules[i]` and the field, with the closest names
/// that exist. One pass over the attributes, reading only the names the rules use.
pub(crate) fn check_against<'a, I>(rules: &[CreativeRuleSpec], attributes: impl Fn() -> I) -> Result<()>
where
    I: Iterator<Item = &'a (String, String)>,
{
    if rules.is_empty() {
        return Ok(());
    }
    let mut carried: AHashMap<&str, AHashSet<&str>> =
        rules.iter().map(|r| (r.key.as_str(), AHashSet::new())).collect();
    let mut seen: AHashSet<&str> = AHashSet::new();
    for (name, value) in attributes() {
        if let Some(values) = carried.get_mut(name.as_str()) {
            seen.insert(name.as_str());
            values.insert(value.as_str());
        }
    }
    for (i, r) in rules.iter().enumerate() {
        let bad = |field: &str, problem: String| {
            Err(Error::invalid("catalog", format!("attribute_rules[{i}].{field}"), problem))
        };
        if !seen.contains(r.key.as_str()) {
            // The error path alone gathers every name, for the suggestion.
            let names: AHashSet<&str> = attributes().map(|(name, _)| name.as_str()).collect();
            let mut names: Vec<&str> = names.into_iter().collect();
            names.sort_unstable();
            return bad(
                "key",
                format!(
                    "no creative or variant has attribute '{}'{}",
                    quote(&r.key),
                    crate::suggest::did_you_mean(&crate::suggest::closest(&r.key, names))
                ),
            );
        }
        let Some(values) = carried.get(r.key.as_str()) else { continue };
        for (field, list) in [("in", &r.any_of), ("not_in", &r.not_in)] {
            if let Some(v) = list.iter().find(|v| !values.contains(v.as_str())) {
                let mut known: Vec<&str> = values.iter().copied().collect();
                known.sort_unstable();
                return bad(
                    field,
                    format!(
                        "no creative or variant has attribute '{}' with value '{}'{}",
                        quote(&r.key),
                        quote(v),
                        crate::suggest::did_you_mean(&crate::suggest::closest(v, known))
                    ),
                );
            }
        }
    }
    Ok(())
}

/// The creative as the rules make it: itself when no rule matches, else a copy with the
/// matching rules' targeting joined to its own and their boosts appended. Errors name
/// the creative, the field and the rule (a joined targeting that allows nothing, too
/// many boosts, targeting on a fallback).
///
/// `matched[i]` is set for every rule `i` that matches the creative.
pub(crate) fn apply<'a>(
    rules: &[CreativeRuleSpec],
    c: &'a CreativeSpec,
    matched: &mut [bool],
) -> Result<Cow<'a, CreativeSpec>> {
    let mut out: Option<CreativeSpec> = None;
    for (i, r) in rules.iter().enumerate() {
        if !r.matches(&c.attributes) {
            continue;
        }
        if let Some(m) = matched.get_mut(i) {
            *m = true;
        }
        let spec = out.get_or_insert_with(|| c.clone());
        if let Some(t) = &r.targeting {
            if spec.fallback {
                return Err(Error::creative(
                    &c.id,
                    "targeting",
                    format!(
                        "attribute_rules[{i}] would give targeting to a fallback, which must show anywhere"
                    ),
                ));
            }
            spec.targeting = Some(match spec.targeting.take() {
                None => t.clone(),
                Some(own) => join(&own, t).map_err(|problem| {
                    Error::creative(&c.id, "targeting", format!("with attribute_rules[{i}]: {problem}"))
                })?,
            });
        }
        // A fallback is never scored, so never boosted: a rule's boosts do not apply to it
        // (its own are refused when it is compiled).
        if !spec.fallback {
            spec.boosts.extend(r.boosts.iter().cloned());
        }
        if spec.boosts.len() > MAX_BOOSTS {
            return Err(Error::creative(
                &c.id,
                "boosts",
                format!(
                    "{} boosts with those of attribute_rules[{i}] (at most {MAX_BOOSTS})",
                    spec.boosts.len()
                ),
            ));
        }
    }
    Ok(out.map_or(Cow::Borrowed(c), Cow::Owned))
}

/// Refuses a rule that matched no creative and no template variant (`matched[i]` false):
/// every creative carrying its key has a value in its `not_in` (or outside its `in`),
/// and none lacks it where that would do. Such a rule is silently a no-op.
pub(crate) fn check_matched(rules: &[CreativeRuleSpec], matched: &[bool]) -> Result<()> {
    match rules.iter().zip(matched).position(|(_, m)| !m) {
        Some(i) => Err(Error::invalid(
            "catalog",
            format!("attribute_rules[{i}]"),
            format!(
                "the rule applies to no creative or variant: every one has attribute '{}' with a value the rule \
                 leaves out",
                quote(&rules[i].key)
            ),
        )),
        None => Ok(()),
    }
}

/// Both rule sets at once: allowed lists intersect, excluded lists unite, attribute
/// rules add up. An allowed list whose intersection is empty, or a joined condition that
/// can never hold (one side excludes what the other allows), is an error ("key: problem").
fn join(a: &ConditionSpec, b: &ConditionSpec) -> std::result::Result<ConditionSpec, String> {
    /// `same` compares two values as the context does: regions without regard to ASCII
    /// case (`fr` is `FR`), everything else exactly.
    fn allowed(key: &'static str, x: &[String], y: &[String]) -> std::result::Result<Vec<String>, String> {
        let same = |a: &String, b: &String| if key == "region" { a.eq_ignore_ascii_case(b) } else { a == b };
        match (x.is_empty(), y.is_empty()) {
            (true, _) => Ok(y.to_vec()),
            (_, true) => Ok(x.to_vec()),
            _ => {
                let both: Vec<String> = x.iter().filter(|v| y.iter().any(|w| same(v, w))).cloned().collect();
                if both.is_empty() {
                    Err(format!("{key}: {x:?} and {y:?} have no value in common: nothing would be allowed"))
                } else {
                    Ok(both)
                }
            }
        }
    }
    fn excluded(x: &[String], y: &[String]) -> Vec<String> {
        let mut all = x.to_vec();
        all.extend(y.iter().filter(|v| !x.contains(v)).cloned());
        all
    }
    let joined = ConditionSpec {
        device: allowed("device", &a.device, &b.device)?,
        not_device: excluded(&a.not_device, &b.not_device),
        channel: allowed("channel", &a.channel, &b.channel)?,
        not_channel: excluded(&a.not_channel, &b.not_channel),
        daypart: allowed("daypart", &a.daypart, &b.daypart)?,
        not_daypart: excluded(&a.not_daypart, &b.not_daypart),
        weekday: allowed("weekday", &a.weekday, &b.weekday)?,
        not_weekday: excluded(&a.not_weekday, &b.not_weekday),
        weather: allowed("weather", &a.weather, &b.weather)?,
        not_weather: excluded(&a.not_weather, &b.not_weather),
        region: allowed("region", &a.region, &b.region)?,
        not_region: excluded(&a.not_region, &b.not_region),
        attributes: a.attributes.iter().chain(&b.attributes).cloned().collect(),
    };
    match super::targeting::contradiction(&joined) {
        Some(problem) => Err(problem),
        None => Ok(joined),
    }
}
