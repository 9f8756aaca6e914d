//! The decision log in the Open Bandit Dataset (OBD) column layout, as CSV, so logs move
//! both ways between this engine and the standard off-policy evaluation tooling: one
//! row per shown creative with `timestamp,item_id,position,click,propensity_score`,
//! `user_feature_<persona>` (the person's persona scores), `item_feature_<persona>` (the
//! creative's persona weights), then columns of our own that OBD tools ignore.

use std::io::{BufRead, Write};

use crate::catalog::{parse_rfc3339, Catalog};
use crate::context::{Channel, Device, Weather};
use crate::error::{quote, Error, Result};
use crate::eval::log::{ChosenRecord, ContextRecord, DecisionRecord, Reward};
use crate::holdout::Arm;
use crate::limits::{Lines, MAX_CREATIVES, MAX_LOG_LINE_BYTES};
use crate::persona::MAX_SCORE;
use crate::profile::{DataClass, DataClasses, RelationshipStage, ScoreSpec};

/// The columns OBD tools require, in order.
const REQUIRED: [&str; 5] = ["timestamp", "item_id", "position", "click", "propensity_score"];

/// Our columns after the feature columns. OBD tools select features by the
/// `user_feature` / `item_feature` substrings, so these are ignored by them.
const EXTRA: [&str; 16] = [
    "decision",
    "creative",
    "placement",
    "conversion_value",
    "consent",
    "relied_on",
    "stage",
    "device",
    "channel",
    "weather",
    "utc_offset_minutes",
    "region",
    "policy",
    "eligible",
    "arm",
    "attributes",
];

/// What [`write_obd_csv`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ObdExport {
    /// Rows written (one per chosen creative with a known reward).
    pub rows: usize,
    /// Chosen creatives left out because their reward is not known yet (OBD needs a
    /// click for every row).
    pub without_reward: usize,
    /// Persona scores left out because their persona is not on the catalog's menu (the
    /// layout has a column per menu persona), counted once per decision written.
    pub unknown_persona_scores: usize,
}

/// Options and result of [`read_obd_csv`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObdImport {
    /// The placement for rows without a `placement` column (OBD campaigns are one
    /// placement each). Required when the column is missing.
    pub placement: Option<String>,
    /// The consent for rows without a `consent` column (default: none; scores read from
    /// `user_feature_*` rely on no data class, so they still count).
    pub consent: DataClasses,
    /// Read: data rows read (every one becomes a shown creative of a decision; none is
    /// dropped).
    pub rows: usize,
    /// Read: decisions built from them (one per row without a `decision` column).
    pub decisions: usize,
    /// Read: columns that are not used (OBD's `user-item_affinity_*`, an unnamed index
    /// column, `item_feature_*`, anything unknown), in header order.
    pub ignored_columns: Vec<String>,
}

/// Writes decision records in the OBD layout: a header, then one row per chosen
/// creative with a known reward. `item_id` is the creative's index in `catalog`,
/// `position` counts from 1, `user_feature_<persona>` is the score (0..9) and
/// `item_feature_<persona>` the creative's weight for every persona of the catalog's
/// menu. Context attributes named `user_feature_<x>` (OBD's hashed user features, as
/// [`read_obd_csv`] reads them) get columns of their own after the persona scores; a
/// one-slot decision with a numeric `position` attribute (an OBD row read on its own)
/// is written at that position, as a row of its own (empty `decision`). Our own
/// columns follow (`decision` groups the rows of one decision; `eligible` is a JSON
/// array; `attributes` a JSON object of the other context attributes), so
/// [`read_obd_csv`] reads back what was written. Persona score sources, likes and
/// dislikes, the person key and the seed are not carried. Errors for a creative not in
/// `catalog`, and for a row longer than [`read_obd_csv`] takes ([`MAX_LOG_LINE_BYTES`]),
/// naming its line and its largest column (the rows before it are written).
pub fn write_obd_csv<'r, I>(
    records: I,
    catalog: &Catalog,
    mut out: impl Write,
    name: &str,
) -> Result<ObdExport>
where
    I: IntoIterator<Item = &'r DecisionRecord>,
    I::IntoIter: Clone,
{
    let io = |source| Error::Io { path: name.to_owned(), source };
    let records = records.into_iter();
    let menu = catalog.menu();
    // Hashed user features: a column each, unless the name is a persona's score column.
    let mut features: Vec<&str> = records
        .clone()
        .flat_map(|r| r.context.attributes.iter().map(|(k, _)| k.as_str()))
        .filter(|k| k.strip_prefix("user_feature_").is_some_and(|p| menu.get(p).is_none()))
        .collect();
    features.sort_unstable();
    features.dedup();
    let mut header: Vec<String> = REQUIRED.iter().map(|s| (*s).to_owned()).collect();
    header.extend(menu.names().iter().map(|p| format!("user_feature_{p}")));
    header.extend(features.iter().map(|f| (*f).to_owned()));
    header.extend(menu.names().iter().map(|p| format!("item_feature_{p}")));
    header.extend(EXTRA.iter().map(|s| (*s).to_owned()));
    write_row(&mut out, &header, (name, 1, &header))?;
    let mut export = ObdExport::default();
    let mut row: Vec<String> = Vec::with_capacity(header.len());
    for (d, record) in records.enumerate() {
        if record.chosen.iter().any(|c| c.reward.is_some()) {
            export.unknown_persona_scores +=
                record.persona_scores.iter().filter(|(name, _)| menu.get(name).is_none()).count();
        }
        let attributes = &record.context.attributes;
        // A row read on its own keeps its position (see above).
        let own_position = record
            .context
            .attribute("position")
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|p| *p >= 1 && record.chosen.len() == 1);
        let others: serde_json::Map<String, serde_json::Value> = attributes
            .iter()
            .filter(|(k, _)| !(features.contains(&k.as_str()) || (k == "position" && own_position.is_some())))
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
            .collect();
        // Written the same on every row of the decision: serialized once.
        let others =
            if others.is_empty() { String::new() } else { serde_json::Value::Object(others).to_string() };
        for (position, chosen) in record.chosen.iter().enumerate() {
            let Some(reward) = chosen.reward else {
                export.without_reward += 1;
                continue;
            };
            let item = catalog.creative(&chosen.creative)?;
            row.clear();
            row.push(record.timestamp.to_string());
            row.push(item.0.to_string());
            row.push(own_position.map_or(position + 1, |p| p as usize).to_string());
            row.push(u8::from(reward.click).to_string());
            row.push(chosen.propensity.to_string());
            for (_, p) in menu.iter() {
                let score = record.persona_scores.iter().find(|(n, _)| n == p).map_or(0, |(_, s)| s.score);
                row.push(score.to_string());
            }
            for f in &features {
                row.push(record.context.attribute(f).unwrap_or_default().to_owned());
            }
            for (id, _) in menu.iter() {
                let w = catalog.tags(item).find(|(p, _)| *p == id).map_or(0.0, |(_, w)| w);
                row.push(w.to_string());
            }
            let c = &record.context;
            row.push(if own_position.is_some() { String::new() } else { (d + 1).to_string() });
            row.push(chosen.creative.clone());
            row.push(record.placement.clone());
            row.push(reward.conversion_value.to_string());
            row.push(class_list(record.consent));
            row.push(class_list(record.relied_on));
            row.push(stage_name(record.stage).to_owned());
            row.push(c.device.name().to_owned());
            row.push(c.channel.name().to_owned());
            row.push(c.weather.name().to_owned());
            row.push(c.utc_offset_minutes.to_string());
            row.push(c.region.clone().unwrap_or_default());
            row.push(record.policy.clone());
            row.push(serde_json::Value::from(record.eligible.clone()).to_string());
            row.push(record.arm.map_or("", |a| a.name()).to_owned());
            row.push(others.clone());
            write_row(&mut out, &row, (name, export.rows + 2, &header))?;
            export.rows += 1;
        }
    }
    out.flush().map_err(io)?;
    Ok(export)
}

fn class_list(set: DataClasses) -> String {
    set.iter().map(DataClass::name).collect::<Vec<_>>().join("|")
}

fn parse_classes(text: &str) -> std::result::Result<DataClasses, String> {
    let mut set = DataClasses::NONE;
    for part in text.split('|').map(str::trim).filter(|s| !s.is_empty()) {
        set =
            set.with(DataClass::parse(part).ok_or_else(|| format!("unknown data class '{}'", quote(part)))?);
    }
    Ok(set)
}

/// Refuses a header that names a column twice: which of the two a reader would use is a
/// guess (unnamed columns, such as OBD's index, may repeat: they are never read).
fn check_header(header: &[String]) -> std::result::Result<(), String> {
    let mut seen = ahash::AHashSet::with_capacity(header.len());
    for h in header.iter().filter(|h| !h.is_empty()) {
        if !seen.insert(h.as_str()) {
            return Err(format!("header: column '{}' appears twice", quote(h)));
        }
    }
    Ok(())
}

/// The first column, in header order, whose value in the decision `row` was read from
/// differs from the decision `first` (the per-slot columns, such as the creative, its
/// position, click and propensity, may differ). Values are compared as read, so `3` and
/// `3.0` are the same score.
fn decision_difference(
    first: &DecisionRecord,
    row: &DecisionRecord,
    header: &[String],
    personas: &[(usize, String)],
) -> Option<String> {
    let score =
        |r: &DecisionRecord, p: &str| r.persona_scores.iter().find(|(n, _)| n == p).map(|(_, s)| s.score);
    let (a, b) = (&first.context, &row.context);
    header.iter().enumerate().find_map(|(c, h)| {
        let differs = match h.as_str() {
            "timestamp" => first.timestamp != row.timestamp,
            "placement" => first.placement != row.placement,
            "consent" => first.consent != row.consent,
            "relied_on" => first.relied_on != row.relied_on,
            "stage" => first.stage != row.stage,
            "device" => a.device != b.device,
            "channel" => a.channel != b.channel,
            "weather" => a.weather != b.weather,
            "utc_offset_minutes" => a.utc_offset_minutes != b.utc_offset_minutes,
            "region" => a.region != b.region,
            "policy" => first.policy != row.policy,
            "eligible" => first.eligible != row.eligible,
            "arm" => first.arm != row.arm,
            "attributes" => a.attributes != b.attributes,
            _ => match personas.iter().find(|(i, _)| *i == c) {
                Some((_, p)) => score(first, p) != score(row, p),
                None => {
                    h.starts_with("user_feature_") && first.context.attribute(h) != row.context.attribute(h)
                }
            },
        };
        differs.then(|| h.clone())
    })
}

fn stage_name(stage: RelationshipStage) -> &'static str {
    match stage {
        RelationshipStage::New => "new",
        RelationshipStage::Returning => "returning",
        RelationshipStage::Regular => "regular",
        RelationshipStage::Loyal => "loyal",
    }
}

/// Writes one row as line `number` of `name`, unless it is longer than a reader takes
/// ([`MAX_LOG_LINE_BYTES`]): the error then names the column of `header` with the most
/// bytes (a long `eligible` list, say), and nothing of the row is written.
fn write_row(
    out: &mut impl Write,
    fields: &[String],
    (name, number, header): (&str, usize, &[String]),
) -> Result<()> {
    let mut line = String::new();
    let mut largest = (0, 0);
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        let from = line.len();
        if f.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&f.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(f);
        }
        if line.len() - from > largest.1 {
            largest = (i, line.len() - from);
        }
    }
    if line.len() > MAX_LOG_LINE_BYTES {
        return Err(Error::LogLine {
            log: name.to_owned(),
            line: number,
            field: header.get(largest.0).cloned(),
            problem: format!(
                "{} bytes make the line {} bytes long, more than MAX_LOG_LINE_BYTES ({MAX_LOG_LINE_BYTES} \
                 bytes), which a reader refuses",
                largest.1,
                line.len()
            ),
        });
    }
    line.push('\n');
    out.write_all(line.as_bytes()).map_err(|source| Error::Io { path: name.to_owned(), source })
}

/// Splits one CSV line (RFC 4180 quoting; a field may not span lines).
fn split_row(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(ch) = chars.next() {
        if quoted {
            if ch == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            } else {
                field.push(ch);
            }
        } else if ch == '"' && at_start {
            quoted = true;
            at_start = false;
        } else if ch == ',' {
            fields.push(std::mem::take(&mut field));
            at_start = true;
        } else {
            field.push(ch);
            at_start = false;
        }
    }
    if quoted {
        return Err("a quoted field is not closed on this line".into());
    }
    fields.push(field);
    Ok(fields)
}

/// Reads a CSV in the OBD layout (as [`write_obd_csv`] writes it, or from another
/// system) into decision records, each with the line number of its first row.
///
/// Required columns: `timestamp` (Unix seconds, or a date-time such as
/// `2019-11-24 00:00:17.315193+00:00`), `item_id` (the creative's index in `catalog`,
/// unless a `creative` column names it), `position` (from 1), `click` (0/1; empty means
/// not known yet) and `propensity_score` (in (0, 1]). `user_feature_<persona>` columns
/// whose persona is on the catalog's menu give scores 0..=9; other feature columns and
/// unknown columns are ignored. Our own columns (`decision`, `placement`, `consent`,
/// `stage`, context, `policy`, `eligible`, ...) are used when present. Errors name the
/// line and the column: `decisions.csv line 3: field 'propensity_score': 0 is not in (0, 1]`.
/// A line longer than [`MAX_LOG_LINE_BYTES`] is an error naming the line, found without
/// holding more than that much of it.
pub fn read_obd_csv(
    input: impl BufRead,
    name: &str,
    catalog: &Catalog,
    options: &mut ObdImport,
) -> Result<Vec<(usize, DecisionRecord)>> {
    let bad = |line: usize, field: &str, problem: String| Error::LogLine {
        log: name.to_owned(),
        line,
        field: (!field.is_empty()).then(|| field.to_owned()),
        problem,
    };
    let mut lines = Lines::new(input, MAX_LOG_LINE_BYTES, "MAX_LOG_LINE_BYTES").enumerate();
    let header = loop {
        match lines.next() {
            None => return Err(bad(1, "", "empty file: no header".into())),
            Some((i, text)) => {
                let text = text.map_err(|e| bad(i + 1, "", e))?;
                if !text.trim().is_empty() {
                    let header = split_row(text.trim_end_matches('\r')).map_err(|p| bad(i + 1, "", p))?;
                    check_header(&header).map_err(|p| bad(i + 1, "", p))?;
                    break header;
                }
            }
        }
    };
    let col = |name: &str| header.iter().position(|h| h == name);
    for required in REQUIRED {
        if col(required).is_none() && !(required == "item_id" && col("creative").is_some()) {
            return Err(bad(1, required, "missing column".into()));
        }
    }
    if col("placement").is_none() && options.placement.is_none() {
        return Err(bad(1, "placement", "missing column, and no placement was given for the import".into()));
    }
    let menu = catalog.menu();
    let personas: Vec<(usize, String)> = header
        .iter()
        .enumerate()
        .filter_map(|(i, h)| {
            let p = h.strip_prefix("user_feature_")?;
            menu.get(p).map(|_| (i, p.to_owned()))
        })
        .collect();
    // `user_feature_<x>` columns whose `<x>` is not a persona of the menu (OBD's hashed
    // user features) become context attributes named after the column.
    let attribute_cols: Vec<(usize, String)> = header
        .iter()
        .enumerate()
        .filter(|(i, h)| h.starts_with("user_feature_") && !personas.iter().any(|(c, _)| c == i))
        .map(|(i, h)| (i, h.clone()))
        .collect();
    options.ignored_columns = header
        .iter()
        .enumerate()
        .filter(|(i, h)| {
            !REQUIRED.contains(&h.as_str())
                && !EXTRA.contains(&h.as_str())
                && h.as_str() != "arm"
                && !personas.iter().any(|(c, _)| c == i)
                && !attribute_cols.iter().any(|(c, _)| c == i)
        })
        .map(|(_, h)| if h.is_empty() { "(unnamed)".to_owned() } else { h.clone() })
        .collect();
    let mut records: Vec<(usize, DecisionRecord)> = Vec::new();
    let mut last_decision: Option<String> = None;
    // Decision ids seen, with the line of their first row: a decision's rows are
    // consecutive, so an id seen again later is refused rather than read as a second
    // decision.
    let mut seen: ahash::AHashMap<String, usize> = ahash::AHashMap::new();
    for (i, text) in lines {
        let line = i + 1;
        let text = text.map_err(|e| bad(line, "", e))?;
        let text = text.trim_end_matches('\r');
        if text.trim().is_empty() {
            continue;
        }
        let fields = split_row(text).map_err(|p| bad(line, "", p))?;
        options.rows += 1;
        if fields.len() != header.len() {
            return Err(bad(line, "", format!("{} fields, the header has {}", fields.len(), header.len())));
        }
        let get = |name: &str| col(name).map(|c| fields[c].trim()).filter(|v| !v.is_empty());
        let req = |name: &str| get(name).ok_or_else(|| bad(line, name, "missing".into()));
        let position_text = req("position")?;
        let position: usize = position_text.parse().ok().filter(|p| *p >= 1).ok_or_else(|| {
            bad(line, "position", format!("'{}' is not a position (1, 2, ...)", quote(position_text)))
        })?;
        let creative = match get("creative") {
            Some(id) => catalog.creative(id).map_err(|e| bad(line, "creative", e.to_string()))?,
            None => {
                let text = req("item_id")?;
                let index: usize = text
                    .parse()
                    .map_err(|_| bad(line, "item_id", format!("'{}' is not an index", quote(text))))?;
                if index >= catalog.len() {
                    return Err(bad(
                        line,
                        "item_id",
                        format!("{index} is not a creative of the catalog ({} creatives)", catalog.len()),
                    ));
                }
                crate::CreativeId(index as u32)
            }
        };
        let propensity_text = req("propensity_score")?;
        let propensity: f64 = propensity_text.parse().map_err(|_| {
            bad(line, "propensity_score", format!("'{}' is not a number", quote(propensity_text)))
        })?;
        if !(propensity > 0.0 && propensity <= 1.0) {
            return Err(bad(line, "propensity_score", format!("{propensity} is not in (0, 1]")));
        }
        let click = match get("click") {
            None => None,
            Some(t) => match t.parse::<f64>() {
                Ok(0.0) => Some(false),
                Ok(1.0) => Some(true),
                _ => return Err(bad(line, "click", format!("'{}' is not 0 or 1", quote(t)))),
            },
        };
        let conversion_value =
            match get("conversion_value") {
                None => 0.0,
                Some(t) => t.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0).ok_or_else(|| {
                    bad(line, "conversion_value", format!("'{}' is not a value ≥ 0", quote(t)))
                })?,
            };
        // A value without a click says the reward is known: refused rather than dropped
        // with the unknown reward.
        if click.is_none() && conversion_value != 0.0 {
            return Err(bad(
                line,
                "conversion_value",
                format!("{conversion_value} is given but click is empty (the reward is not known yet)"),
            ));
        }
        let chosen = ChosenRecord {
            creative: catalog.creative_id(creative).to_owned(),
            propensity,
            reward: click.map(|click| Reward { click, conversion_value }),
        };
        let decision = get("decision").map(str::to_owned);
        // A later row of the slate: it must repeat the decision's columns, checked below.
        let continues = decision.is_some() && decision == last_decision && !records.is_empty();
        if continues {
            let shown = records.last().map_or(0, |(_, r)| r.chosen.len());
            if position != shown + 1 {
                return Err(bad(
                    line,
                    "position",
                    format!(
                        "{position} does not follow position {shown} of the same decision (a slot in between is \
                         missing: an export leaves out slots whose reward is not known yet)"
                    ),
                ));
            }
        } else if let Some(id) = &decision {
            if let Some(first) = seen.get(id) {
                return Err(bad(
                    line,
                    "decision",
                    format!(
                        "'{}' began at line {first} and other decisions followed it: a decision's rows must be \
                         consecutive",
                        quote(id)
                    ),
                ));
            }
            if position != 1 {
                return Err(bad(
                    line,
                    "position",
                    format!(
                        "a decision starts at position 1, not {position} (an export leaves out slots whose reward \
                         is not known yet)"
                    ),
                ));
            }
            seen.insert(id.clone(), line);
        }
        let grouped = decision.is_some();
        let timestamp_text = req("timestamp")?;
        let timestamp = match timestamp_text.parse::<i64>() {
            Ok(t) => t,
            Err(_) => parse_rfc3339(timestamp_text).map_err(|e| bad(line, "timestamp", e))?,
        };
        let mut persona_scores = Vec::new();
        for (c, p) in &personas {
            let t = fields[*c].trim();
            if t.is_empty() {
                continue;
            }
            let score = t
                .parse::<f64>()
                .ok()
                .filter(|s| s.fract() == 0.0 && (0.0..=f64::from(MAX_SCORE)).contains(s))
                .ok_or_else(|| bad(line, &header[*c], format!("'{}' is not a score 0..=9", quote(t))))?
                as u8;
            if score > 0 {
                persona_scores.push((p.clone(), ScoreSpec { score, sources: DataClasses::NONE }));
            }
        }
        let consent = match col("consent") {
            None => options.consent,
            Some(c) => parse_classes(&fields[c]).map_err(|p| bad(line, "consent", p))?,
        };
        let relied_on =
            parse_classes(get("relied_on").unwrap_or("")).map_err(|p| bad(line, "relied_on", p))?;
        let stage = match get("stage") {
            None => RelationshipStage::New,
            Some(t) => [
                RelationshipStage::New,
                RelationshipStage::Returning,
                RelationshipStage::Regular,
                RelationshipStage::Loyal,
            ]
            .into_iter()
            .find(|s| stage_name(*s) == t)
            .ok_or_else(|| bad(line, "stage", format!("unknown stage '{}'", quote(t))))?,
        };
        let device = match get("device") {
            None => Device::Unknown,
            Some(t) => Device::parse(t)
                .ok_or_else(|| bad(line, "device", format!("unknown device '{}'", quote(t))))?,
        };
        let channel = match get("channel") {
            None => Channel::Unknown,
            Some(t) => Channel::parse(t)
                .ok_or_else(|| bad(line, "channel", format!("unknown channel '{}'", quote(t))))?,
        };
        let weather = match get("weather") {
            None => Weather::Unknown,
            Some(t) => Weather::parse(t)
                .ok_or_else(|| bad(line, "weather", format!("unknown weather '{}'", quote(t))))?,
        };
        let utc_offset_minutes = match get("utc_offset_minutes") {
            None => 0,
            Some(t) => t
                .parse::<i32>()
                .ok()
                .filter(|m| {
                    (-crate::context::MAX_UTC_OFFSET_MINUTES..=crate::context::MAX_UTC_OFFSET_MINUTES)
                        .contains(m)
                })
                .ok_or_else(|| {
                    bad(
                        line,
                        "utc_offset_minutes",
                        format!("'{}' is not an offset within ±1080 minutes", quote(t)),
                    )
                })?,
        };
        let eligible = match get("eligible") {
            None => Vec::new(),
            Some(t) => serde_json::from_str::<Vec<String>>(t).map_err(|e| {
                bad(
                    line,
                    "eligible",
                    format!("expected a JSON array of creative ids: {}", crate::error::json_message(&e)),
                )
            })?,
        };
        let placement = match get("placement") {
            Some(p) => p.to_owned(),
            None => options.placement.clone().ok_or_else(|| bad(line, "placement", "missing".into()))?,
        };
        let mut attributes: Vec<(String, String)> = attribute_cols
            .iter()
            .filter_map(|(c, h)| {
                let v = fields[*c].trim();
                (!v.is_empty()).then(|| (h.clone(), v.to_owned()))
            })
            .collect();
        if !grouped {
            // One decision per row: the position is part of its context.
            attributes.push(("position".to_owned(), position.to_string()));
        }
        if let Some(t) = get("attributes") {
            let object =
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(t).map_err(|e| {
                    bad(
                        line,
                        "attributes",
                        format!("expected a JSON object of strings: {}", crate::error::json_message(&e)),
                    )
                })?;
            for (k, v) in object {
                let serde_json::Value::String(v) = v else {
                    return Err(bad(line, "attributes", format!("'{}' is not a string", quote(&k))));
                };
                if attributes.iter().any(|(have, _)| *have == k) {
                    return Err(bad(
                        line,
                        "attributes",
                        format!("'{}' is also given by its own column (or the row's position)", quote(&k)),
                    ));
                }
                attributes.push((k, v));
            }
        }
        attributes.sort();
        let mut record = DecisionRecord {
            timestamp,
            placement,
            person: None,
            context: ContextRecord {
                utc_offset_minutes,
                device,
                channel,
                weather,
                region: get("region").map(str::to_owned),
                attributes,
                seed: None,
            },
            stage,
            persona_scores,
            likes: Vec::new(),
            dislikes: Vec::new(),
            consent,
            eligible,
            chosen: Vec::new(),
            policy: get("policy").unwrap_or("obd").to_owned(),
            relied_on,
            arm: match get("arm") {
                None => None,
                Some(t) => Some(Arm::parse(t).ok_or_else(|| {
                    bad(line, "arm", format!("unknown arm '{}' (holdout, personalized)", quote(t)))
                })?),
            },
        };
        if continues {
            if let Some((first_line, first)) = records.last_mut() {
                // Every row of a decision carries its columns; rows that disagree are two
                // decisions' data under one id, and keeping either would be a silent guess.
                if let Some(field) = decision_difference(first, &record, &header, &personas) {
                    return Err(bad(
                        line,
                        &field,
                        format!("differs from line {first_line} of the same decision"),
                    ));
                }
                first.chosen.push(chosen);
                first.check().map_err(|b| b.at(name, line))?;
                continue;
            }
        }
        last_decision = decision;
        record.chosen.push(chosen);
        record.check().map_err(|b| b.at(name, line))?;
        records.push((line, record));
    }
    options.decisions = records.len();
    Ok(records)
}

/// The Open Bandit Dataset directory layout read by [`read_obd_dir`].
#[derive(Debug)]
pub struct ObdDir {
    /// The catalog built from `item_context.csv`: one placement `obd`, one persona `obd`
    /// that nothing uses, one
    /// creative `item_<id>` per item (in `item_id` order, so `item_id` is the creative
    /// index) with its `item_feature_*` columns as attributes.
    pub catalog: std::sync::Arc<Catalog>,
    /// The log file read (`all.csv`, or the campaign's one other CSV file).
    pub log: std::path::PathBuf,
    /// The decisions, each with the line of its first row.
    pub records: Vec<(usize, DecisionRecord)>,
    /// What the import read, used and ignored.
    pub import: ObdImport,
}

/// The one persona of an imported OBD catalog's menu (OBD has none: no creative is
/// tagged with it and no score refers to it).
pub const OBD_PERSONA: &str = "obd";

/// The placement name of an imported OBD directory.
pub const OBD_PLACEMENT: &str = "obd";

/// Builds the catalog spec of an OBD `item_context.csv`: columns `item_id` (0, 1, ...,
/// each once) and `item_feature_*` (any text); other columns (an unnamed index) are
/// ignored. Errors name the line and column; a line longer than [`MAX_LOG_LINE_BYTES`]
/// is an error naming the line, found without holding more than that much of it.
pub fn obd_item_catalog(input: impl BufRead, name: &str) -> Result<crate::CatalogSpec> {
    let bad = |line: usize, field: &str, problem: String| Error::LogLine {
        log: name.to_owned(),
        line,
        field: (!field.is_empty()).then(|| field.to_owned()),
        problem,
    };
    let mut header: Option<Vec<String>> = None;
    let mut items: Vec<Option<Vec<(String, String)>>> = Vec::new();
    for (i, text) in Lines::new(input, MAX_LOG_LINE_BYTES, "MAX_LOG_LINE_BYTES").enumerate() {
        let line = i + 1;
        let text = text.map_err(|e| bad(line, "", e))?;
        let text = text.trim_end_matches('\r');
        if text.trim().is_empty() {
            continue;
        }
        let fields = split_row(text).map_err(|p| bad(line, "", p))?;
        let Some(h) = &header else {
            if !fields.iter().any(|f| f == "item_id") {
                return Err(bad(line, "item_id", "missing column".into()));
            }
            check_header(&fields).map_err(|p| bad(line, "", p))?;
            header = Some(fields);
            continue;
        };
        if fields.len() != h.len() {
            return Err(bad(line, "", format!("{} fields, the header has {}", fields.len(), h.len())));
        }
        let mut id = None;
        let mut attributes = Vec::new();
        for (col, value) in h.iter().zip(&fields) {
            if col == "item_id" {
                let v = value.trim();
                id = Some(
                    v.parse::<usize>()
                        .map_err(|_| bad(line, "item_id", format!("'{}' is not an index", quote(v))))?,
                );
            } else if col.starts_with("item_feature_") {
                attributes.push((col.clone(), value.trim().to_owned()));
            }
        }
        let Some(id) = id else { continue };
        if id >= MAX_CREATIVES {
            return Err(bad(
                line,
                "item_id",
                format!("{id} is too large (item ids count from 0; at most MAX_CREATIVES ({MAX_CREATIVES}) items)"),
            ));
        }
        if items.len() <= id {
            items.resize(id + 1, None);
        }
        if items[id].is_some() {
            return Err(bad(line, "item_id", format!("item {id} appears twice")));
        }
        items[id] = Some(attributes);
    }
    if header.is_none() {
        return Err(bad(1, "", "empty file: no header".into()));
    }
    if items.is_empty() {
        return Err(bad(1, "item_id", "no items".into()));
    }
    let mut creatives = Vec::with_capacity(items.len());
    for (id, item) in items.into_iter().enumerate() {
        let attributes = item
            .ok_or_else(|| bad(1, "item_id", format!("item {id} is missing (ids must be 0, 1, 2, ...)")))?;
        let mut c = crate::CreativeSpec::new(format!("item_{id}")).placement(OBD_PLACEMENT);
        c.attributes = attributes;
        creatives.push(c);
    }
    Ok(crate::CatalogSpec {
        version: format!("obd:{name}"),
        // A catalog needs a persona menu; OBD has no personas, so one that nothing is
        // tagged with and nobody scores on.
        personas: vec![OBD_PERSONA.to_owned()],
        placements: vec![OBD_PLACEMENT.to_owned()],
        creatives,
        templates: Vec::new(),
        attribute_rules: Vec::new(),
    })
}

/// Reads an Open Bandit Dataset directory as published (`random/all/`, `bts/men/`,
/// ...): the catalog from `item_context.csv` ([`obd_item_catalog`]) and the decisions
/// from `all.csv` (or the directory's one other CSV file) with [`read_obd_csv`] at
/// placement [`OBD_PLACEMENT`]: one decision per row with its position and hashed user
/// features as context attributes (or slates, when a `decision` column groups rows).
pub fn read_obd_dir(dir: impl AsRef<std::path::Path>) -> Result<ObdDir> {
    let dir = dir.as_ref();
    let io = |path: &std::path::Path, source| Error::Io { path: path.display().to_string(), source };
    let open = |path: &std::path::Path| -> Result<std::io::BufReader<std::fs::File>> {
        std::fs::File::open(path).map(std::io::BufReader::new).map_err(|e| io(path, e))
    };
    let items = dir.join("item_context.csv");
    let spec = obd_item_catalog(open(&items)?, "item_context.csv")?;
    let catalog = Catalog::compile(&spec)?;
    let mut log = dir.join("all.csv");
    if !log.exists() {
        let mut others: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == "csv")
                    && p.file_name() != Some("item_context.csv".as_ref())
            })
            .collect();
        others.sort();
        match others.as_slice() {
            [one] => log = one.clone(),
            _ => {
                return Err(Error::invalid(
                    "OBD directory",
                    "all.csv",
                    format!(
                        "{}: no all.csv, and {} other CSV files ({}): expected exactly one",
                        dir.display(),
                        others.len(),
                        others.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
                    ),
                ))
            }
        }
    }
    let name =
        log.file_name().map_or_else(|| log.display().to_string(), |n| n.to_string_lossy().into_owned());
    let mut import = ObdImport { placement: Some(OBD_PLACEMENT.to_owned()), ..ObdImport::default() };
    let records = read_obd_csv(open(&log)?, &name, &catalog, &mut import)?;
    Ok(ObdDir { catalog: std::sync::Arc::new(catalog), log, records, import })
}
