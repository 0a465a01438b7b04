//! The chains each live member of the group subscribes to, from the coordinator's
//! `DescribeGroups` answer. A member's metadata is the consumer protocol's subscription:
//! `version: i16`, then the topics as `count: i32` and `len: i16, bytes` each (the user
//! data and owned partitions that follow are not needed).

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};

use super::{GroupError, chain_of};

/// Live members that subscribe to another set of chains than this instance.
#[derive(Debug, thiserror::Error)]
#[error(
    "group {group}: member {member} follows chains {theirs:?}, this instance is configured for {ours:?}; give every member of the group the same [[chains]] or another group.id"
)]
pub struct Mismatch {
    /// The group id.
    pub group: String,
    /// The other member's client and host.
    pub member: String,
    /// Its chain ids.
    pub theirs: BTreeSet<u64>,
    /// This instance's chain ids.
    pub ours: BTreeSet<u64>,
}

/// The chain ids each live member of a group subscribes to.
#[derive(Debug, Default)]
pub struct Subscriptions {
    /// `(member id, client id and host, chain ids)`.
    pub members: Vec<(String, String, BTreeSet<u64>)>,
}

impl Subscriptions {
    /// Asks the coordinator.
    pub fn fetch<C: ConsumerContext>(
        consumer: &BaseConsumer<C>,
        group: &str,
        timeout: Duration,
    ) -> Result<Self, GroupError> {
        let list = consumer
            .fetch_group_list(Some(group), timeout)
            .map_err(|source| GroupError::Members {
                group: group.to_owned(),
                source,
            })?;
        let mut members = Vec::new();
        for g in list.groups().iter().filter(|g| g.name() == group) {
            for m in g.members() {
                let Some(topics) = m.metadata().and_then(subscribed_topics) else {
                    continue;
                };
                let chains = topics.iter().filter_map(|t| chain_of(group, t)).collect();
                let who = format!("{} ({})", m.client_id(), m.client_host());
                members.push((m.id().to_owned(), who, chains));
            }
        }
        Ok(Self { members })
    }

    /// The first member whose chains are not `ours` (the member id `me`, if known,
    /// excepted).
    pub fn mismatch(
        &self,
        group: &str,
        me: Option<&str>,
        ours: &BTreeSet<u64>,
    ) -> Option<Mismatch> {
        self.members
            .iter()
            .filter(|(id, _, _)| me != Some(id.as_str()))
            .find(|(_, _, theirs)| theirs != ours)
            .map(|(_, member, theirs)| Mismatch {
                group: group.to_owned(),
                member: member.clone(),
                theirs: theirs.clone(),
                ours: ours.clone(),
            })
    }
}

/// The topics of a consumer-protocol subscription, or `None` if it is not one.
pub fn subscribed_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut at = 2usize; // version
    let take = |at: &mut usize, n: usize| -> Option<&[u8]> {
        let s = metadata.get(*at..*at + n)?;
        *at += n;
        Some(s)
    };
    let count = i32::from_be_bytes(take(&mut at, 4)?.try_into().ok()?);
    let mut topics = Vec::with_capacity(usize::try_from(count).ok()?.min(1024));
    for _ in 0..count {
        let len = i16::from_be_bytes(take(&mut at, 2)?.try_into().ok()?);
        let name = take(&mut at, usize::try_from(len).ok()?)?;
        topics.push(String::from_utf8(name.to_vec()).ok()?);
    }
    Some(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(topics: &[&str]) -> Vec<u8> {
        let mut out = vec![0, 1];
        out.extend_from_slice(&(topics.len() as i32).to_be_bytes());
        for t in topics {
            out.extend_from_slice(&(t.len() as i16).to_be_bytes());
            out.extend_from_slice(t.as_bytes());
        }
        out.extend_from_slice(&(-1i32).to_be_bytes()); // no user data
        out
    }

    #[test]
    fn a_subscription_gives_its_topics() {
        let m = subscription(&["ethhook.group.g.1", "ethhook.group.g.10"]);
        assert_eq!(
            subscribed_topics(&m),
            Some(vec![
                "ethhook.group.g.1".into(),
                "ethhook.group.g.10".into()
            ])
        );
        assert_eq!(subscribed_topics(&m[..9]), None);
        assert_eq!(subscribed_topics(&[]), None);
    }

    #[test]
    fn a_member_with_other_chains_is_named() {
        let ours: BTreeSet<u64> = [1, 2].into();
        let subs = Subscriptions {
            members: vec![
                ("m1".into(), "me (/10.0.0.1)".into(), [1, 2].into()),
                ("m2".into(), "other (/10.0.0.2)".into(), [1, 3].into()),
            ],
        };
        let m = subs.mismatch("g", None, &ours).expect("a mismatch");
        assert_eq!(m.member, "other (/10.0.0.2)");
        let line = m.to_string();
        assert!(line.contains("{1, 3}") && line.contains("{1, 2}"), "{line}");
        assert!(subs.mismatch("g", Some("m2"), &ours).is_none());
    }
}
