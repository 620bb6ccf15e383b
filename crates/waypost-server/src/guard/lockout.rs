//! Failed-login counters for emails that have no account, so that sign-in
//! answers the same for unknown and existing addresses.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// Failed-login counters for emails with no account, kept in memory so that
/// unknown and existing accounts lock (and answer) alike.
#[derive(Default)]
pub struct PhantomLockouts(Mutex<HashMap<[u8; 32], PhantomState>>);

/// (consecutive failures, lockouts so far, locked until)
type PhantomState = (i64, i64, Option<DateTime<Utc>>);

impl PhantomLockouts {
    const MAX_ENTRIES: usize = 100_000;

    pub(crate) fn locked_until(&self, key: &[u8; 32], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let map = self.0.lock().expect("lockout lock");
        map.get(key)
            .and_then(|(_, _, until)| *until)
            .filter(|u| *u > now)
    }

    pub(crate) fn fail(
        &self,
        key: [u8; 32],
        now: DateTime<Utc>,
        policy: waypost_store::LockoutPolicy,
    ) -> Option<DateTime<Utc>> {
        let mut map = self.0.lock().expect("lockout lock");
        if map.len() >= Self::MAX_ENTRIES {
            map.retain(|_, (_, _, until)| until.is_some_and(|u| u > now));
        }
        let entry = map.entry(key).or_insert((0, 0, None));
        entry.0 += 1;
        if entry.0 >= policy.max_failures {
            let until = now + policy.duration(entry.1);
            *entry = (0, entry.1 + 1, Some(until));
            return Some(until);
        }
        None
    }
}
