//! The federation log: every element that crossed a server-to-server stream, per link and
//! direction, with timestamps, for the control API (what the harness observes).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// Which way an element crossed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FedDirection {
    /// Received from the remote server.
    In,
    /// Sent to the remote server.
    Out,
}

/// What kind of element it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FedKind {
    /// A message, presence or iq stanza.
    Stanza,
    /// A dialback element (XEP-0220).
    Dialback,
    /// Stream negotiation or errors (features, STARTTLS, stream errors).
    Stream,
}

/// One logged element.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FedEntry {
    /// Position in the log, increasing from 1; never reused, not even after a reset.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub ts_ms: u64,
    /// Our domain on this link.
    pub local: String,
    /// The remote domain.
    pub remote: String,
    /// Which way it went.
    pub direction: FedDirection,
    /// What it was.
    pub kind: FedKind,
    /// The element as serialized on the wire (in the `jabber:server` namespace).
    pub xml: String,
}

/// A filter over the log.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct FedQuery {
    /// Only entries after this sequence number.
    #[serde(default)]
    pub since: u64,
    /// Only this remote domain.
    pub remote: Option<String>,
    /// Only this local domain.
    pub local: Option<String>,
    /// Only this direction.
    pub direction: Option<FedDirection>,
    /// Only this kind.
    pub kind: Option<FedKind>,
}

impl FedQuery {
    fn matches(&self, entry: &FedEntry) -> bool {
        entry.seq > self.since
            && self.remote.as_ref().is_none_or(|r| *r == entry.remote)
            && self.local.as_ref().is_none_or(|l| *l == entry.local)
            && self.direction.is_none_or(|d| d == entry.direction)
            && self.kind.is_none_or(|k| k == entry.kind)
    }
}

/// The log, bounded in entries; readers can wait for new entries instead of polling.
#[derive(Debug)]
pub struct FedLog {
    entries: Mutex<VecDeque<FedEntry>>,
    capacity: usize,
    latest: watch::Sender<u64>,
}

impl FedLog {
    /// An empty log keeping at most `capacity` entries (the oldest are dropped first).
    pub fn new(capacity: usize) -> Self {
        FedLog {
            entries: Mutex::new(VecDeque::new()),
            capacity,
            latest: watch::channel(0).0,
        }
    }

    /// Appends an entry.
    pub fn record(
        &self,
        local: &str,
        remote: &str,
        direction: FedDirection,
        kind: FedKind,
        xml: String,
    ) {
        let ts_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut entries = self.entries.lock().expect("fedlog lock");
        let seq = *self.latest.borrow() + 1;
        entries.push_back(FedEntry {
            seq,
            ts_ms,
            local: local.to_string(),
            remote: remote.to_string(),
            direction,
            kind,
            xml,
        });
        if entries.len() > self.capacity {
            entries.pop_front();
        }
        self.latest.send_replace(seq);
    }

    /// The entries matching `query`, and the last sequence number in the log.
    pub fn query(&self, query: &FedQuery) -> (Vec<FedEntry>, u64) {
        let entries = self.entries.lock().expect("fedlog lock");
        let matching = entries
            .iter()
            .filter(|entry| query.matches(entry))
            .cloned()
            .collect();
        (matching, *self.latest.borrow())
    }

    /// Like [`FedLog::query`], but when nothing matches yet waits up to `wait` for a matching
    /// entry to arrive.
    pub async fn wait(&self, query: &FedQuery, wait: Duration) -> (Vec<FedEntry>, u64) {
        let mut updates = self.latest.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let (found, latest) = self.query(query);
            if !found.is_empty() {
                return (found, latest);
            }
            updates.borrow_and_update();
            match tokio::time::timeout_at(deadline, updates.changed()).await {
                Ok(Ok(())) => continue,
                _ => return self.query(query),
            }
        }
    }

    /// Drops every entry (sequence numbers keep increasing).
    pub fn clear(&self) {
        self.entries.lock().expect("fedlog lock").clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_for_a_matching_entry() {
        let log = std::sync::Arc::new(FedLog::new(3));
        let query = FedQuery {
            remote: Some("b.test".into()),
            direction: Some(FedDirection::Out),
            ..FedQuery::default()
        };
        let writer = log.clone();
        tokio::spawn(async move {
            writer.record(
                "a.test",
                "c.test",
                FedDirection::Out,
                FedKind::Stanza,
                "<x/>".into(),
            );
            writer.record(
                "a.test",
                "b.test",
                FedDirection::Out,
                FedKind::Stanza,
                "<y/>".into(),
            );
        });
        let (found, latest) = log.wait(&query, Duration::from_secs(5)).await;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].xml, "<y/>");
        assert_eq!(latest, 2);
        for _ in 0..5 {
            log.record(
                "a.test",
                "b.test",
                FedDirection::In,
                FedKind::Stanza,
                "<z/>".into(),
            );
        }
        assert_eq!(log.query(&FedQuery::default()).0.len(), 3);
        let (none, _) = log
            .wait(
                &FedQuery {
                    since: 7,
                    ..FedQuery::default()
                },
                Duration::from_millis(20),
            )
            .await;
        assert!(none.is_empty());
    }
}
