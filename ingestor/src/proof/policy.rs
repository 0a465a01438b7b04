//! Which proofs by the block hash a chain runs ([`Level`]), and, under `auto`, deciding them
//! on the chain's first blocks.
//!
//! Under `auto`, each check (header hash, receipts root) is undecided until a block settles
//! it: one that holds turns it on for good; one the chain's answers cannot be encoded for
//! (a header field missing, a transaction type of unknown receipt encoding) turns it off;
//! a mismatch is refused as a lying answer, and only [`AUTO_MISMATCHES`] of them in a row
//! before any block held turn it off (a chain whose hash or root is made otherwise, such as
//! Cronos or Tempo). A check that is on is never turned off again: a later mismatch is
//! refused and retried, a later block that cannot be encoded too (it stalls visibly rather
//! than downgrading the proof). Under `receipts_root`, both checks are on from the start,
//! and a block that cannot be encoded stops the chain.

use std::sync::Mutex;

use serde::Deserialize;

use crate::events;
use crate::follower::Inconsistent;
use crate::rpc::receipt::Receipt;
use crate::rpc::types::Header;

use super::{Uncovered, Verdict, check_header_hash, check_receipts_root};

/// Mismatches in a row, before any block held, that turn an `auto` check off.
pub const AUTO_MISMATCHES: u32 = 3;

/// How much of a block a chain proves (`chains[].proof`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// The strongest of the others that holds on the chain's first blocks.
    #[default]
    Auto,
    /// `receipts`, and the header hashes to the block hash, and the receipts make the
    /// header's `receiptsRoot`.
    ReceiptsRoot,
    /// The logs taken from the receipts, proven complete against the header's `gasUsed`
    /// and `logsBloom`.
    Receipts,
    /// Ranged `eth_getLogs`, unchecked.
    None,
}

impl Level {
    /// The configuration's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::ReceiptsRoot => "receipts_root",
            Self::Receipts => "receipts",
            Self::None => "none",
        }
    }
}

/// One check's state on a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `auto`, not settled yet: the mismatches in a row so far.
    Undecided(u32),
    /// Every block must pass it.
    On,
    /// Not run.
    Off,
}

/// A block the proof in force refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The answer is wrong or incomplete: asked again, never published.
    #[error(transparent)]
    Inconsistent(#[from] Inconsistent),
    /// The block cannot be encoded for a check the configuration requires
    /// (`proof = "receipts_root"`): the chain stops.
    #[error(
        "block {number} cannot be proven by its {check}: {uncovered}; set proof = \"receipts\" for this chain to follow it without that proof"
    )]
    Uncovered {
        /// The block.
        number: u64,
        /// `header_hash` or `receipts_root`.
        check: &'static str,
        /// What cannot be encoded.
        uncovered: Uncovered,
    },
}

/// The proofs by the block hash of one chain, shared by all its connections.
#[derive(Debug)]
pub struct Policy {
    chain: String,
    level: Level,
    /// Header hash, receipts root.
    state: Mutex<[State; 2]>,
}

const HEADER_HASH: usize = 0;
const RECEIPTS_ROOT: usize = 1;
const CHECKS: [&str; 2] = ["header_hash", "receipts_root"];

impl Policy {
    /// The policy of `chain` at `level`.
    pub fn new(chain: &str, level: Level) -> Self {
        let s = match level {
            Level::Auto => State::Undecided(0),
            Level::ReceiptsRoot => State::On,
            Level::Receipts | Level::None => State::Off,
        };
        Self {
            chain: chain.to_owned(),
            level,
            state: Mutex::new([s; 2]),
        }
    }

    /// The configured level.
    pub fn level(&self) -> Level {
        self.level
    }

    fn states(&self) -> [State; 2] {
        *self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether blocks are checked by their header hash (on, or `auto` not settled yet):
    /// then a header must carry every field the hash covers.
    pub fn checks_header_hash(&self) -> bool {
        self.states()[HEADER_HASH] != State::Off
    }

    /// The proof in force, for `/status` and the logs: `receipts_root` (both checks),
    /// `receipts+header_hash`, `receipts+receipts_root`, `receipts`, `none`, or
    /// `auto (deciding)` until `auto` settled both checks.
    pub fn label(&self) -> &'static str {
        if self.level == Level::None {
            return "none";
        }
        match self.states() {
            [State::Undecided(_), _] | [_, State::Undecided(_)] => "auto (deciding)",
            [State::On, State::On] => "receipts_root",
            [State::On, State::Off] => "receipts+header_hash",
            [State::Off, State::On] => "receipts+receipts_root",
            [State::Off, State::Off] => "receipts",
        }
    }

    /// Runs the checks in force on `header`'s block, whose receipts (already proven
    /// complete) are `receipts` when they were fetched: the receipts root is checked only
    /// then.
    pub fn judge(&self, header: &Header, receipts: Option<&[Receipt]>) -> Result<(), Refusal> {
        self.judge_one(HEADER_HASH, header, || check_header_hash(header))?;
        if let Some(receipts) = receipts {
            self.judge_one(RECEIPTS_ROOT, header, || {
                check_receipts_root(header, receipts)
            })?;
        }
        Ok(())
    }

    fn judge_one(
        &self,
        i: usize,
        header: &Header,
        verdict: impl FnOnce() -> Verdict,
    ) -> Result<(), Refusal> {
        let check = CHECKS[i];
        if self.states()[i] == State::Off {
            return Ok(());
        }
        let verdict = verdict();
        let mut states = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (next, result, why) = match (states[i], verdict) {
            (State::Off, _) | (State::On, Verdict::Holds) => return Ok(()),
            (State::On, Verdict::Mismatch(m)) => {
                return Err(Inconsistent::new(check, m).into());
            }
            (State::On, Verdict::Uncovered(u)) if self.level == Level::ReceiptsRoot => {
                return Err(Refusal::Uncovered {
                    number: header.number,
                    check,
                    uncovered: u,
                });
            }
            (State::On, Verdict::Uncovered(u)) => {
                return Err(Inconsistent::new(
                    check,
                    format!(
                        "block {}: {u}, though earlier blocks of the chain were proven by their {check}; refused (set proof = \"receipts\" if the chain changed)",
                        header.number
                    ),
                )
                .into());
            }
            (State::Undecided(_), Verdict::Holds) => (State::On, Ok(()), None),
            (State::Undecided(_), Verdict::Uncovered(u)) => {
                (State::Off, Ok(()), Some(u.to_string()))
            }
            (State::Undecided(n), Verdict::Mismatch(m)) if n + 1 >= AUTO_MISMATCHES => (
                State::Off,
                Ok(()),
                Some(format!("{} answers in a row do not make it: {m}", n + 1)),
            ),
            (State::Undecided(n), Verdict::Mismatch(m)) => (
                State::Undecided(n + 1),
                Err(Inconsistent::new(check, m).into()),
                None,
            ),
        };
        states[i] = next;
        let decided = !states.iter().any(|s| matches!(s, State::Undecided(_)));
        drop(states);
        if !matches!(next, State::Undecided(_)) {
            events::ProofDecided {
                chain: &self.chain,
                check,
                block: header.number,
                why: why.as_deref(),
            }
            .emit();
            if decided {
                self.announce();
            }
        }
        result
    }

    /// Says the proof in force (at start-up, and when `auto` settled).
    pub fn announce(&self) {
        events::ProofInForce {
            chain: &self.chain,
            configured: self.level.as_str(),
            proof: self.label(),
        }
        .emit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_levels_start_decided() {
        assert_eq!(
            Policy::new("c", Level::ReceiptsRoot).label(),
            "receipts_root"
        );
        assert_eq!(Policy::new("c", Level::Receipts).label(), "receipts");
        assert_eq!(Policy::new("c", Level::None).label(), "none");
        assert_eq!(Policy::new("c", Level::Auto).label(), "auto (deciding)");
    }
}
