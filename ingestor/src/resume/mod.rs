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

mod read;
mod view;

pub use read::{ResumeError, read_tail};
pub use view::{TailRecord, View, build_view};

use crate::sink::{Dedup, TopicState};
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
    /// Offsets for the publisher's progress.
    pub topic: TopicState,
    /// Records read.
    pub records_read: usize,
}
