//! Per-key async locks (per user, later per scene): writers to one aggregate on this server
//! queue instead of racing. Entries vanish when nobody holds or waits for them. Across
//! servers, the stores' optimistic version checks still apply.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::OwnedMutexGuard;

#[derive(Default)]
pub struct KeyedLocks {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl KeyedLocks {
    /// Wait for and take the lock of `key`.
    pub async fn lock(&self, key: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = match self.locks.lock() {
                Ok(l) => l,
                Err(poisoned) => poisoned.into_inner(),
            };
            locks.retain(|_, weak| weak.strong_count() > 0);
            match locks.get(key).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(key.to_string(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_per_key_and_entries_are_dropped() {
        let locks = KeyedLocks::default();
        let a = locks.lock("a").await;
        let b = locks.lock("b").await; // another key is independent
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(50), locks.lock("a")).await;
        assert!(
            waiting.is_err(),
            "a second holder of the same key must wait"
        );
        drop((a, b));
        let _again = locks.lock("a").await;
        assert!(locks.locks.lock().unwrap().len() <= 2);
    }
}
