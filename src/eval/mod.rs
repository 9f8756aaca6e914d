//! Offline evaluation: a decision log (JSON Lines, and the Open Bandit Dataset CSV
//! layout) and off-policy estimates of what a candidate policy or catalog would have
//! earned on it (IPS, self-normalized IPS, doubly robust, with confidence intervals).
//! Everything here is off the hot path: it allocates and may re-run `select` many times.
//!
//! ```
//! use persona_engine::eval::{DecisionLogReader, EvalOptions, Evaluator};
//! # use persona_engine::{sample, Selector, SelectorConfig, Policy};
//! # let log = String::new();
//! let candidate = Selector::new(sample::catalog()?, SelectorConfig::with_policy(Policy::Greedy))?;
//! let mut evaluator = Evaluator::new(&candidate, EvalOptions::default(), "decisions.jsonl")?;
//! evaluator.add_all(DecisionLogReader::new(log.as_bytes(), "decisions.jsonl"), |_| {})?;
//! // evaluator.finish()? gives the report (it errors here: this log is empty).
//! # Ok::<(), persona_engine::Error>(())
//! ```

mod estimate;
mod lift;
mod log;
pub mod logistic;
mod obd;
mod replay;
mod report;

pub use estimate::{
    Estimate, EvalOptions, Evaluator, PositionReport, Report, RewardKind, RewardModel, Target,
    UNKNOWN_CREATIVE_EXAMPLES,
};
pub use lift::{holdout_impressions_needed, lift, normal_cdf, ArmStats, Interval, LiftReport};
pub(crate) use log::REWARD_LINE_BYTES;
pub use log::{
    parse_policy, policy_name, BadField, ChosenRecord, ContextRecord, DecisionLogReader, DecisionLogWriter,
    DecisionRecord, Reward, LOG_VERSION,
};
pub use obd::{
    obd_item_catalog, read_obd_csv, read_obd_dir, write_obd_csv, ObdDir, ObdExport, ObdImport, OBD_PERSONA,
    OBD_PLACEMENT,
};
pub use replay::{CandidatePolicy, Eligibility};
pub use report::svg_report;
