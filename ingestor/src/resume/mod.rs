//! Start-up: the topic is the truth. Before a chain follows its node again, it reads its
//! own topic's tail (from the checkpoint's `window_start` offsets, or the last
//! `kafka.resume_lookback_records` records of each partition without them) and rebuilds
//! from what is really there:
//!
//! - the keys each window block published, which a reorganisation must retract;
//! - the blocks published after the checkpoint (acknowledged, but the crash came before
//!   the checkpoint said so): the follower retracts those the node no longer has as
//!   canonical, and the dedup cache, seeded with every value found, skips the records of
//!   the others when they are replayed, so a restart produces nothing twice.
//!
//! Each decoded-event topic's tail is read too, from the first record whose timestamp is
//! not older than the oldest chain-topic record read (decoded records carry their log's
//! block timestamp, as the chain topic's do), and at least its last
//! `kafka.resume_lookback_records` per partition: which of its keys a retraction must
//! tombstone there, and which values the replay must skip. A key found there alone (a crash
//! between the two acknowledgements) counts as published in its block.
//!
//! The `blocks` and `transactions` topics, when published, are read from the same start as
//! the decoded topics ([`datasets`]): each block a record names counts as published (one
//! without logs left no record elsewhere), and the transactions topic says which
//! transactions each recent block published, for a retraction to tombstone. Their records
//! are not seeded in the dedup cache: a replay after a crash publishes them again.
//!
//! A chain with `raw = false` has no chain topic (and a chain-topic read may find no
//! value): each decoded topic is then read from the first record of the checkpoint window's
//! blocks, found by a binary search on block numbers ([`seek`]), and at least its
//! look-back. Nothing is read in its place for blocks without decoded logs: they left no
//! record to retract or to skip.

mod datasets;
mod read;
mod seek;
mod view;

pub use read::{ResumeError, read_tail};
pub use view::{TailRecord, View, build_view};

use crate::sink::{Dedup, Placed, TopicState, TxPlaced};
use crate::window::{Window, WindowBlock};

/// Where a chain resumes: what the checkpoint and the topic's tail say together.
pub struct Resumed {
    /// The checkpoint's window, each block with the keys the topic holds for it.
    pub window: Window,
    /// Blocks found on the topic outside the window (after the checkpoint, or replaced),
    /// oldest first, each with the keys it holds; their parent hashes are unknown (zero).
    pub unconfirmed: Vec<WindowBlock>,
    /// Seeded with every value found.
    pub dedup: Dedup,
    /// The decoded-event topics holding each recent key.
    pub placed: Placed,
    /// The transactions each recent block has on the transactions topic.
    pub tx_placed: TxPlaced,
    /// Offsets for the publisher's progress.
    pub topic: TopicState,
    /// Records read.
    pub records_read: usize,
}
