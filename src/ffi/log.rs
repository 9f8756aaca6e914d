//! The decision log from C: open a JSON Lines file, log each decision `pe_select` made
//! (with the propensities of its picks), log what the person did with it, close. A
//! decision waits in memory for its outcomes and is written when the log is flushed or
//! closed, or when a new decision finds `capacity` decisions waiting (oldest first). A
//! decision leaves memory only once it is written, so a failed write loses nothing. Off
//! the hot path: these calls allocate and write to a file.

use std::collections::VecDeque;
use std::io::BufWriter;

use super::boundary::{arg_str, opt_str, Failure, Out};
use super::context::{self, pe_context};
use super::feedback::feedback_kind;
use super::handles::{
    arc_ref, box_free, box_into_ptr, box_mut, box_ref, pe_decision_log, pe_profile, pe_selection, pe_selector,
};
use super::selector::creative_index;
use super::status::pe_status;
use crate::catalog::PlacementId;
use crate::error::Error;
use crate::eval::{BadField, DecisionLogWriter, DecisionRecord, REWARD_LINE_BYTES};
use crate::holdout::Arm;

/// The holdout arm of a logged decision (values for the `arm` of
/// `pe_decision_log_decision`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum pe_arm {
    /// No holdout on this placement (the log line has no `arm`).
    None = 0,
    /// The person is held out: they got the generic experience.
    Holdout = 1,
    /// The person got the personalized experience.
    Personalized = 2,
}

/// Decisions waiting for outcomes when `pe_decision_log_open` is given a capacity of 0.
pub const PE_DECISION_LOG_DEFAULT_CAPACITY: usize = 10_000;

/// What a `pe_decision_log` handle holds.
pub(crate) struct DecisionLogHandle {
    writer: DecisionLogWriter<BufWriter<std::fs::File>>,
    pending: VecDeque<(u64, DecisionRecord)>,
    next: u64,
    capacity: usize,
}

impl DecisionLogHandle {
    /// Writes waiting decisions, oldest first, until at most `keep` wait. A decision
    /// leaves the queue only once it is written: when a write fails, it and every later
    /// one still wait, so a retry (a flush, a close) writes them.
    fn write_until(&mut self, keep: usize) -> Result<(), Failure> {
        while self.pending.len() > keep {
            let Some((_, record)) = self.pending.front() else { break };
            self.writer.write(record).map_err(log_error)?;
            self.pending.pop_front();
        }
        Ok(())
    }
}

/// I/O errors are `PE_STATUS_IO`; a record that fails its check (it cannot: records are
/// checked before they wait, and outcomes keep them valid) is an invalid argument.
fn log_error(error: Error) -> Failure {
    match error {
        Error::Io { .. } => Failure::new(pe_status::Io, error.to_string()),
        other => Failure::invalid(other.to_string()),
    }
}

/// Opens (creating it if needed) the decision log file at `path` (`path_len` bytes of
/// UTF-8) for appending JSON Lines, one line per decision (format: `docs/decision-log.md`),
/// and writes a new handle to `*out_log`. Up to `capacity` decisions (0: 10,000) wait in
/// memory for their outcomes before the oldest is written as it stands.
///
/// The handle belongs to the caller: close it with `pe_decision_log_close` (which writes
/// what waits) or drop it with `pe_decision_log_free`. It must not be used by two threads
/// at the same time (wrap it in a mutex, or keep one log per thread, each its own file).
///
/// Errors: `PE_STATUS_NULL_PARAMETER` (`path`, `out_log`), `PE_STATUS_INVALID_UTF8`,
/// `PE_STATUS_IO` (the file cannot be opened; the message names it).
#[no_mangle]
pub unsafe extern "C" fn pe_decision_log_open(
    path: *const std::ffi::c_char,
    path_len: usize,
    capacity: usize,
    out_log: *mut *mut pe_decision_log,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: `path` is NULL or readable for `path_len` bytes; `out_log` is NULL or
        // writable, as documented above.
        let (path, out) = unsafe { (arg_str(path, path_len, "path")?, Out::new(out_log, "out_log")?) };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| log_error(Error::Io { path: path.to_owned(), source }))?;
        let handle = DecisionLogHandle {
            writer: DecisionLogWriter::new(BufWriter::new(file), path),
            pending: VecDeque::new(),
            next: 1,
            capacity: if capacity == 0 { PE_DECISION_LOG_DEFAULT_CAPACITY } else { capacity },
        };
        out.write(box_into_ptr(handle));
        Ok(())
    })
}

/// Logs the decision `selection` holds, made by the last `pe_select` with `selector`,
/// `profile`, `context` and `placement` (pass the same ones): the time and plain context
/// values, region and attributes, the person's relationship stage, non-zero persona
/// scores, consent, and each pick with its propensity. `person` (`person_len` bytes;
/// `person_len == 0` for none) is an opaque key of the person (a hash, never a raw id).
/// `arm` is a `pe_arm` value. Writes the decision's number to `*out_decision`, to pass to
/// `pe_decision_log_outcome`.
///
/// `selector`, `profile`, `context` and `selection` are only read, during the call.
/// If the log's capacity of decisions already wait for outcomes, the oldest is first
/// written as it stands (its unobserved picks without a reward).
///
/// Errors (nothing is logged): `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_OUT_OF_RANGE`
/// (`placement` is not an id of this catalog), `PE_STATUS_INVALID_ARGUMENT` (`arm` is not
/// a `pe_arm`; the selection is empty; a context value that does not exist; a profile
/// made for another persona menu; a `person` key, region or attributes so long that the
/// decision's line, with room for its rewards, would pass `MAX_LOG_LINE_BYTES`, which a
/// reader refuses), `PE_STATUS_INVALID_UTF8`, `PE_STATUS_IO` (writing the
/// oldest decision failed: it still waits, and is written by a later call, flush or
/// close).
#[no_mangle]
pub unsafe extern "C" fn pe_decision_log_decision(
    log: *mut pe_decision_log,
    selector: *const pe_selector,
    profile: *const pe_profile,
    context: *const pe_context,
    placement: u16,
    selection: *const pe_selection,
    person: *const std::ffi::c_char,
    person_len: usize,
    arm: u32,
    out_decision: *mut u64,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: live handles (or NULL) from the matching `_new` functions, `log` used
        // by this thread alone, a readable `pe_context` whose strings are readable for
        // their lengths, `person` readable for `person_len` bytes, `out_decision` NULL or
        // writable, as documented above.
        let (log, selector, profile, ctx, selection, person, out) = unsafe {
            (
                box_mut(log, "log")?,
                arc_ref(selector, "selector")?,
                box_ref(profile, "profile")?,
                context::read(context)?,
                box_ref(selection, "selection")?,
                opt_str(person, person_len, "person")?,
                Out::new(out_decision, "out_decision")?,
            )
        };
        let arm = match arm {
            0 => None,
            1 => Some(Arm::Holdout),
            2 => Some(Arm::Personalized),
            other => return Err(Failure::invalid(format!("arm: {other} is not a pe_arm value (0..=2)"))),
        };
        if usize::from(placement) >= selector.catalog().placement_count() {
            return Err(Failure::out_of_range(format!(
                "placement id {placement} is not from this catalog (it has {} placements)",
                selector.catalog().placement_count()
            )));
        }
        profile.check_menu(selector)?;
        if selection.is_empty() {
            return Err(Failure::invalid("selection: it holds no pick (call pe_select first)"));
        }
        let mut record = DecisionRecord::from_selection(
            selector,
            &profile.profile,
            &ctx,
            PlacementId(placement),
            selection,
        )?;
        // SAFETY: as above: `context` was read successfully, so it is not NULL and its
        // strings are readable for their lengths.
        let c = unsafe { &*context };
        // SAFETY: forwarded from the caller (checked by `context::read` above).
        if let Some(region) = unsafe { opt_str(c.region, c.region_len, "context.region") }? {
            record = record.with_region(region);
        }
        if c.attribute_count > 0 && !c.attributes.is_null() {
            // SAFETY: checked by `context::read`: not NULL, at most 8 readable entries.
            let attributes = unsafe { std::slice::from_raw_parts(c.attributes, c.attribute_count) };
            for a in attributes {
                // SAFETY: forwarded from the caller: each string readable for its length.
                let (k, v) = unsafe {
                    (
                        arg_str(a.key, a.key_len, "context.attributes[].key")?,
                        arg_str(a.value, a.value_len, "context.attributes[].value")?,
                    )
                };
                record = record.with_attribute(k, v);
            }
        }
        if let Some(person) = person {
            record = record.with_person(person);
        }
        record.arm = arm;
        // Checked now, so that every waiting record can be written: a write then fails
        // only for I/O.
        let invalid = |bad: BadField| {
            Failure::invalid(match bad.field {
                Some(field) => format!("field '{field}': {}", bad.problem),
                None => bad.problem,
            })
        };
        record.check().map_err(invalid)?;
        // Its line must stay readable once the outcomes have added their rewards.
        record.checked_line(REWARD_LINE_BYTES * record.chosen.len()).map_err(invalid)?;
        // Make room first: when writing the oldest fails, this decision is not logged
        // (the caller gets no number) and the oldest still waits.
        let capacity = log.capacity;
        log.write_until(capacity.saturating_sub(1))?;
        let number = log.next;
        log.next += 1;
        log.pending.push_back((number, record));
        out.write(number);
        Ok(())
    })
}

/// Logs what the person did with creative `creative` (an index from
/// `pe_selection_creative`) of logged decision `decision`: `kind` is a
/// `pe_feedback_kind`; an impression makes the reward known (no click yet), a click sets
/// it, a conversion adds `value` (finite, 0 to 1e9; the pick's total too may not pass
/// 1e9); any other kind (a thumbs up or down, a dismissal) only makes the reward known,
/// since the log's reward is a click and a value (record it with `pe_record` to teach
/// the selector). Log the impression of every pick you show: a pick without any outcome is
/// written without a reward, and evaluation counts it as not known yet. Never writes to
/// the file.
///
/// Errors (nothing changes): `PE_STATUS_NULL_PARAMETER` (`log`, `selector`),
/// `PE_STATUS_OUT_OF_RANGE` (`decision` is not waiting: unknown, or already written
/// because it was the oldest past capacity or the log was flushed; or `creative` is not
/// an index of the catalog), `PE_STATUS_INVALID_ARGUMENT` (`kind` is not a
/// `pe_feedback_kind`, a bad conversion value, a conversion that would bring the pick's
/// total above 1e9 (the message names the field and both numbers), or `creative` was
/// not picked in that decision).
#[no_mangle]
pub unsafe extern "C" fn pe_decision_log_outcome(
    log: *mut pe_decision_log,
    selector: *const pe_selector,
    decision: u64,
    creative: u32,
    kind: u32,
    value: f64,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live log used by this thread alone and a live selector (or NULL).
        let (log, selector) = unsafe { (box_mut(log, "log")?, arc_ref(selector, "selector")?) };
        let creative = creative_index(selector, creative)?;
        let kind = feedback_kind(kind, value)?;
        if let crate::FeedbackKind::Conversion { value } = kind {
            if !(value.is_finite() && (0.0..=crate::feedback::MAX_CONVERSION_VALUE).contains(&value)) {
                return Err(Failure::invalid(format!("value: {value} is not a conversion value (0 to 1e9)")));
            }
        }
        let id = selector.catalog().creative_id(creative);
        let Some((_, record)) = log.pending.iter_mut().find(|(n, _)| *n == decision) else {
            return Err(Failure::out_of_range(format!(
                "decision {decision} is not waiting for outcomes (unknown, or already written)"
            )));
        };
        if !record.chosen.iter().any(|c| c.creative == id) {
            return Err(Failure::invalid(format!("creative '{id}' was not picked in decision {decision}")));
        }
        // A conversion that would bring the pick's total above 1e9 is refused here, with
        // the record unchanged, rather than when the record is written.
        record.observe(id, kind).map_err(|e| Failure::invalid(format!("decision {decision}: {e}")))
    })
}

/// Writes every waiting decision as it stands and flushes the file. Later outcomes for
/// those decisions are refused (`PE_STATUS_OUT_OF_RANGE`).
///
/// Errors: `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_IO` (the decisions not written still
/// wait, oldest first, and still take outcomes; call again, or close, to write them).
#[no_mangle]
pub unsafe extern "C" fn pe_decision_log_flush(log: *mut pe_decision_log) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live log (or NULL) used by this thread alone.
        let log = unsafe { box_mut(log, "log")? };
        log.write_until(0)?;
        log.writer.flush().map_err(log_error)
    })
}

/// Writes every waiting decision, flushes and frees the log. The handle is freed even
/// when writing fails (the status says so, and the message how many waiting decisions
/// are lost: to retry instead, call `pe_decision_log_flush` until it
/// succeeds, then close): never use it again. NULL does nothing and returns
/// `PE_STATUS_OK`.
///
/// Errors: `PE_STATUS_IO`.
#[no_mangle]
pub unsafe extern "C" fn pe_decision_log_close(log: *mut pe_decision_log) -> pe_status {
    ffi_boundary!({
        if log.is_null() {
            return Ok(());
        }
        // SAFETY: a live log from `pe_decision_log_open`, used by this thread alone; it
        // is freed below and the caller does not use it again.
        let result = unsafe { box_mut(log, "log") }.and_then(|h| {
            let written = h.write_until(0).and_then(|()| h.writer.flush().map_err(log_error));
            // The handle goes either way: say how many decisions go with it.
            written.map_err(|f| {
                let lost = match h.pending.len() {
                    1 => "1 waiting decision is lost".to_owned(),
                    n => format!("{n} waiting decisions are lost"),
                };
                let message =
                    format!("{} (the log is closed: {lost}, with any lines its buffer held)", f.message);
                Failure::new(f.status, message)
            })
        });
        // SAFETY: as above.
        unsafe { box_free(log) };
        result
    })
}

/// Frees the log without writing the decisions that wait (they are lost). NULL does
/// nothing. Prefer `pe_decision_log_close`.
#[no_mangle]
pub unsafe extern "C" fn pe_decision_log_free(log: *mut pe_decision_log) {
    ffi_boundary!(default = (), {
        // SAFETY: the caller gives up a pointer from `pe_decision_log_open` (or NULL).
        unsafe { box_free(log) }
    })
}
