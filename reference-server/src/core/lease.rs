//! Leases (RVP §5.1.2 subscription lifetimes, §5.5 leased property values; later SIP
//! `Expires`): deadlines keyed by lease, with no clock of its own.
//!
//! The caller hands every instant in (a `tokio::time::Instant` in a front-end, plain numbers
//! in tests), sleeps until [`Leases::next_deadline`] and then calls [`Leases::expire`].

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

/// Deadlines by key. Setting a key's deadline again replaces it (a renewal).
#[derive(Debug)]
pub struct Leases<K, T> {
    by_key: HashMap<K, (T, u64)>,
    by_deadline: BTreeSet<(T, u64)>,
    keys: HashMap<u64, K>,
    next: u64,
}

impl<K, T> Default for Leases<K, T> {
    fn default() -> Self {
        Leases {
            by_key: HashMap::new(),
            by_deadline: BTreeSet::new(),
            keys: HashMap::new(),
            next: 0,
        }
    }
}

impl<K: Clone + Eq + Hash, T: Copy + Ord> Leases<K, T> {
    /// Sets (or renews) `key`'s deadline.
    pub fn set(&mut self, key: K, deadline: T) {
        self.remove(&key);
        self.next += 1;
        let slot = (deadline, self.next);
        self.by_deadline.insert(slot);
        self.keys.insert(self.next, key.clone());
        self.by_key.insert(key, slot);
    }

    /// Ends `key`'s lease without it expiring; returns whether it had one.
    pub fn remove(&mut self, key: &K) -> bool {
        match self.by_key.remove(key) {
            Some(slot) => {
                self.by_deadline.remove(&slot);
                self.keys.remove(&slot.1);
                true
            }
            None => false,
        }
    }

    /// `key`'s deadline, if it has a lease.
    pub fn deadline(&self, key: &K) -> Option<T> {
        self.by_key.get(key).map(|(deadline, _)| *deadline)
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<T> {
        self.by_deadline.first().map(|(deadline, _)| *deadline)
    }

    /// Removes and returns every key whose deadline is at or before `now`, earliest first.
    pub fn expire(&mut self, now: T) -> Vec<K> {
        let mut expired = Vec::new();
        while let Some(&slot) = self.by_deadline.first() {
            if slot.0 > now {
                break;
            }
            self.by_deadline.pop_first();
            if let Some(key) = self.keys.remove(&slot.1) {
                self.by_key.remove(&key);
                expired.push(key);
            }
        }
        expired
    }

    /// How many leases run.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether no lease runs.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_deadline_order_and_renewal_replaces() {
        let mut leases: Leases<&str, u64> = Leases::default();
        assert_eq!(leases.next_deadline(), None);
        leases.set("sub", 30);
        leases.set("view", 10);
        leases.set("other", 20);
        assert_eq!(leases.next_deadline(), Some(10));
        assert!(leases.expire(9).is_empty());
        assert_eq!(leases.expire(10), vec!["view"]);
        // Renewal moves the deadline; the old one is gone.
        leases.set("other", 40);
        assert_eq!(leases.deadline(&"other"), Some(40));
        assert_eq!(leases.expire(35), vec!["sub"]);
        assert!(leases.remove(&"other"));
        assert!(!leases.remove(&"other"));
        assert!(leases.is_empty());
        assert!(leases.expire(1000).is_empty());
    }

    #[test]
    fn equal_deadlines_all_expire() {
        let mut leases: Leases<u32, u64> = Leases::default();
        for key in 0..5 {
            leases.set(key, 7);
        }
        assert_eq!(leases.len(), 5);
        assert_eq!(leases.expire(7), vec![0, 1, 2, 3, 4]);
    }
}
