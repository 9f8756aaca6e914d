//! Splitting a statistics delta into log entry bodies each within a byte bound, so that
//! no delta is too large for the log to take or for the other instances to read. Deltas
//! are sums: the parts hold every cell and model weight of the delta exactly once, so
//! merging them in any order adds up to the whole. Never drops or changes a count.

use crate::learn::{Counts, CreativeStats, ModelEntry, StatsSnapshot};

/// The bytes a part's catalog label may take before parts leave it out (the label is
/// informational: no reader uses it), so that a long label never leaves too little
/// room for the statistics.
const LABEL_ROOM: usize = 1024;

/// What `,"model":[]` adds to a part's JSON.
const MODEL_ROOM: usize = 11;

/// One piece of a delta that goes into a part whole.
enum Piece {
    /// A creative's statistics, or a fragment of them (several fragments of one creative
    /// go into different parts, since a snapshot lists a creative once).
    Creative(String, CreativeStats),
    /// One model weight.
    Model(ModelEntry),
}

fn json_len<T: serde::Serialize + ?Sized>(value: &T) -> crate::Result<usize> {
    serde_json::to_string(value)
        .map(|json| json.len())
        .map_err(|source| crate::Error::Json { what: "stats snapshot", source })
}

/// The error for a piece of `bytes` that cannot fit in a part of `max_bytes`.
fn unsplittable(what: String, bytes: usize, max_bytes: usize) -> crate::Error {
    crate::Error::invalid(
        "fleet config",
        "max_delta_bytes",
        format!(
            "{what} takes {bytes} bytes as JSON, more than a delta entry of {max_bytes} bytes can hold with \
             its header: it cannot be split further"
        ),
    )
}

/// `delta` as JSON: one body when it is at most `max_bytes` long (exactly
/// `delta_json`), else several, each a valid delta of at most `max_bytes`, that together
/// hold each of its cells and model weights exactly once. A creative too large for one
/// part is split by cells (its overall counts in the first). Errors only when one cell
/// or weight, with its creative's id and the part's header, passes `max_bytes` (not
/// possible at [`MIN_DELTA_ENTRY_BYTES`](crate::limits::MIN_DELTA_ENTRY_BYTES) or more
/// for a delta of the engine's, whose names are bounded by the catalog's limits).
pub(super) fn delta_parts(delta: &StatsSnapshot, max_bytes: usize) -> crate::Result<Vec<String>> {
    let whole = delta.delta_json()?;
    if whole.len() <= max_bytes {
        return Ok(vec![whole]);
    }
    drop(whole);
    let empty = |label: &str| StatsSnapshot {
        format: delta.format.clone(),
        version: delta.version,
        kind: delta.kind,
        catalog_version: label.to_owned(),
        creatives: Vec::new(),
        model: Vec::new(),
    };
    let label = match json_len(&delta.catalog_version)? {
        n if n <= LABEL_ROOM => delta.catalog_version.as_str(),
        _ => "",
    };
    let header = json_len(&empty(label))? + MODEL_ROOM;
    let room = max_bytes.saturating_sub(header);

    // Every piece with its size as it adds to a part (a comma included), at most `room`.
    let mut pieces: Vec<(usize, Piece)> = Vec::new();
    for (id, stats) in &delta.creatives {
        let id_bytes = json_len(id)? + 1;
        let bytes = id_bytes + json_len(stats)? + 1;
        if bytes <= room {
            pieces.push((bytes, Piece::Creative(id.clone(), stats.clone())));
            continue;
        }
        // By cells: each cell adds its name, a colon, its counts and a comma (one comma
        // more per group than the JSON has, so the sizes are an upper bound).
        let bare = |overall: Counts| CreativeStats { overall, ..CreativeStats::default() };
        let start = id_bytes + json_len(&bare(stats.overall))? + 1;
        if start > room {
            return Err(unsplittable(
                format!("the overall counts of creative '{}'", crate::error::quote(id)),
                start,
                max_bytes,
            ));
        }
        let mut fragment = (start, bare(stats.overall));
        let groups = [(0, &stats.devices), (1, &stats.dayparts), (2, &stats.segments)];
        for (group, cells) in groups {
            for (name, counts) in cells.iter() {
                let cell = json_len(name)? + 1 + json_len(counts)? + 1;
                if fragment.0 + cell > room {
                    let next = (id_bytes + json_len(&bare(Counts::default()))? + 1, bare(Counts::default()));
                    if next.0 + cell > room {
                        let bytes = next.0 + cell;
                        return Err(unsplittable(
                            format!(
                                "a cell of creative '{}' ('{}')",
                                crate::error::quote(id),
                                crate::error::quote(name)
                            ),
                            bytes,
                            max_bytes,
                        ));
                    }
                    let (size, stats) = std::mem::replace(&mut fragment, next);
                    pieces.push((size, Piece::Creative(id.clone(), stats)));
                }
                fragment.0 += cell;
                let into = match group {
                    0 => &mut fragment.1.devices,
                    1 => &mut fragment.1.dayparts,
                    _ => &mut fragment.1.segments,
                };
                into.push((name.clone(), *counts));
            }
        }
        pieces.push((fragment.0, Piece::Creative(id.clone(), fragment.1)));
    }
    for entry in &delta.model {
        let bytes = json_len(entry)? + 1;
        if bytes > room {
            return Err(unsplittable(
                format!(
                    "the model weight {} '{}' {}",
                    crate::error::quote(&entry.scope),
                    crate::error::quote(&entry.name),
                    crate::error::quote(&entry.feature)
                ),
                bytes,
                max_bytes,
            ));
        }
        pieces.push((bytes, Piece::Model(entry.clone())));
    }

    // Packed in order: a part closes when the next piece would pass the bound, or is a
    // fragment of the creative the part already holds.
    let mut parts = Vec::new();
    let mut part = empty(label);
    let mut used = header;
    let close = |part: &mut StatsSnapshot, parts: &mut Vec<String>| -> crate::Result<()> {
        let json = std::mem::replace(part, empty(label)).delta_json()?;
        if json.len() > max_bytes {
            // The sizes above are upper bounds; this cannot happen, and is refused rather
            // than sent if it does.
            return Err(unsplittable("a part".to_owned(), json.len(), max_bytes));
        }
        parts.push(json);
        Ok(())
    };
    for (bytes, piece) in pieces {
        let same_creative = matches!((&piece, part.creatives.last()),
            (Piece::Creative(id, _), Some((last, _))) if id == last);
        let holds = !part.creatives.is_empty() || !part.model.is_empty();
        if holds && (used + bytes > max_bytes || same_creative) {
            close(&mut part, &mut parts)?;
            used = header;
        }
        used += bytes;
        match piece {
            Piece::Creative(id, stats) => part.creatives.push((id, stats)),
            Piece::Model(entry) => part.model.push(entry),
        }
    }
    if !part.creatives.is_empty() || !part.model.is_empty() {
        close(&mut part, &mut parts)?;
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::Ledger;
    use crate::learn::{SnapshotKind, SNAPSHOT_FORMAT, SNAPSHOT_VERSION};
    use crate::limits::{MAX_ATTRIBUTE_LEN, MAX_ID_LEN, MAX_PERSONA_NAME, MIN_DELTA_ENTRY_BYTES};

    fn counts(k: u64) -> Counts {
        Counts {
            impressions: u64::MAX - k,
            clicks: k,
            conversions: k / 2,
            value_micros: i64::MAX as u64 - k,
            expected_micros: k * 3,
        }
    }

    /// A delta with names as long as the engine allows, every byte escaped in JSON
    /// (`"`), one creative with far more cells than a part holds, and many weights.
    fn delta() -> StatsSnapshot {
        let quotes = |n: usize| "\"".repeat(n);
        let mut creatives = Vec::new();
        let wide = CreativeStats {
            overall: counts(1),
            devices: vec![("mobile".into(), counts(2))],
            dayparts: vec![("evening".into(), counts(3))],
            segments: (0..600).map(|k| (format!("{}{k}", quotes(MAX_PERSONA_NAME - 4)), counts(k))).collect(),
        };
        creatives.push((format!("{}w", quotes(MAX_ID_LEN - 1)), wide));
        for c in 0..200u64 {
            let stats = CreativeStats {
                overall: counts(c),
                segments: vec![(quotes(MAX_PERSONA_NAME), counts(c + 1))],
                ..CreativeStats::default()
            };
            creatives.push((format!("{c}{}", quotes(MAX_ID_LEN - 3)), stats));
        }
        let model = (0..300i64)
            .map(|k| ModelEntry {
                scope: if k % 2 == 0 { "attribute" } else { "creative" }.into(),
                name: match k % 2 {
                    0 => format!("{k}{}={}", quotes(MAX_ATTRIBUTE_LEN - 3), quotes(MAX_ATTRIBUTE_LEN)),
                    _ => format!("{k}{}", quotes(MAX_ID_LEN - 3)),
                },
                feature: format!("segment:{}", quotes(MAX_PERSONA_NAME)),
                eta: i64::MIN + k,
                precision: i64::MAX - k,
            })
            .collect();
        StatsSnapshot {
            format: SNAPSHOT_FORMAT.into(),
            version: SNAPSHOT_VERSION,
            kind: SnapshotKind::Delta,
            catalog_version: "v1".into(),
            creatives,
            model,
        }
    }

    /// The sum of snapshots, with each creative's cells in one order.
    fn sum<'a>(parts: impl IntoIterator<Item = &'a StatsSnapshot>) -> Ledger {
        let mut ledger = Ledger::default();
        for part in parts {
            ledger.add(part);
        }
        for stats in ledger.creatives.values_mut() {
            for cells in [&mut stats.devices, &mut stats.dayparts, &mut stats.segments] {
                cells.sort_by(|a, b| a.0.cmp(&b.0));
            }
        }
        ledger
    }

    #[test]
    fn a_delta_past_the_bound_splits_into_valid_deltas_within_it_that_add_up_to_it() {
        let whole = delta();
        let bodies = delta_parts(&whole, MIN_DELTA_ENTRY_BYTES).unwrap();
        assert!(bodies.len() > 10, "{} parts", bodies.len());
        let parts: Vec<StatsSnapshot> = bodies
            .iter()
            .map(|body| {
                assert!(body.len() <= MIN_DELTA_ENTRY_BYTES, "a part of {} bytes", body.len());
                StatsSnapshot::from_json(body).unwrap()
            })
            .collect();
        for part in &parts {
            assert_eq!((part.kind, part.catalog_version.as_str()), (SnapshotKind::Delta, "v1"));
            let mut ids: Vec<_> = part.creatives.iter().map(|(id, _)| id).collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), part.creatives.len(), "a part lists a creative twice");
        }
        let (want, got) = (sum([&whole]), sum(&parts));
        assert_eq!(want.creatives, got.creatives);
        assert_eq!(want.model, got.model);
        let cells = |snaps: &[StatsSnapshot]| -> usize {
            snaps
                .iter()
                .flat_map(|s| &s.creatives)
                .map(|(_, c)| c.devices.len() + c.dayparts.len() + c.segments.len())
                .sum()
        };
        assert_eq!(cells(&parts), cells(std::slice::from_ref(&whole)), "a cell is in two parts");
        assert_eq!(parts.iter().map(|p| p.model.len()).sum::<usize>(), whole.model.len());
    }

    #[test]
    fn a_delta_within_the_bound_is_one_part_exactly_as_written_and_a_long_label_is_left_out_of_parts() {
        let mut small = delta();
        small.creatives.truncate(2);
        small.creatives[0].1.segments.truncate(1);
        small.model.truncate(2);
        let json = small.delta_json().unwrap();
        assert_eq!(delta_parts(&small, json.len()).unwrap(), [json]);
        let mut labelled = delta();
        labelled.catalog_version = "v".repeat(100_000);
        for body in delta_parts(&labelled, MIN_DELTA_ENTRY_BYTES).unwrap() {
            assert_eq!(StatsSnapshot::from_json(&body).unwrap().catalog_version, "");
        }
    }

    #[test]
    fn a_bound_too_small_for_one_cell_is_an_error_naming_it_never_a_panic() {
        let whole = delta();
        for bound in [0, 1, 200, 700] {
            let err = delta_parts(&whole, bound).unwrap_err().to_string();
            assert!(err.starts_with("fleet config: field 'max_delta_bytes': "), "{err}");
            assert!(err.contains("cannot be split further"), "{err}");
        }
        // The largest single pieces the engine can export (every name at its limit and
        // escaped) take under 2 KiB with a part's header: far below MIN_DELTA_ENTRY_BYTES.
        assert!(delta_parts(&whole, 2048).is_ok());
    }
}
