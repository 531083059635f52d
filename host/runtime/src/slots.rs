//! Instance slots: the pool has `max_instances` places, and one plugin may hold at most
//! `max_instances_per_plugin` of them, so a plugin whose calls or streams hang cannot starve
//! the others. A call (or a stream, for its whole life) holds its plugin's permit and then a
//! pool permit; the plugin's permit is taken first, so calls waiting on a busy plugin never
//! hold pool places while they wait.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::engine::Limits;
use crate::error::CallError;

/// The pool's places and every plugin's share of them.
pub(crate) struct Slots {
    pool: Arc<Semaphore>,
    pool_size: usize,
    per_plugin: usize,
    /// One semaphore per plugin id, made on first use (ids are those of loaded plugins).
    plugins: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// One instance place; released when dropped.
pub(crate) struct Slot {
    _pool: OwnedSemaphorePermit,
    _plugin: OwnedSemaphorePermit,
}

impl Slots {
    pub(crate) fn new(limits: &Limits) -> Slots {
        let pool_size = limits.max_instances.max(1) as usize;
        Slots {
            pool: Arc::new(Semaphore::new(pool_size)),
            pool_size,
            per_plugin: limits.instances_per_plugin() as usize,
            plugins: Mutex::new(HashMap::new()),
        }
    }

    fn of_plugin(&self, plugin: &str) -> Arc<Semaphore> {
        let mut plugins = match self.plugins.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        plugins
            .entry(plugin.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_plugin)))
            .clone()
    }

    /// Wait up to `wait` in all for the plugin's share and then a pool place; `Busy` names
    /// whichever limit was full.
    pub(crate) async fn acquire(&self, plugin: &str, wait: Duration) -> Result<Slot, CallError> {
        let deadline = tokio::time::Instant::now() + wait;
        let busy = |limit: usize| CallError::Busy {
            plugin: plugin.to_string(),
            limit,
        };
        let own = tokio::time::timeout_at(deadline, self.of_plugin(plugin).acquire_owned())
            .await
            .map_err(|_| busy(self.per_plugin))?
            .map_err(|_| busy(self.per_plugin))?;
        let pool = tokio::time::timeout_at(deadline, self.pool.clone().acquire_owned())
            .await
            .map_err(|_| busy(self.pool_size))?
            .map_err(|_| busy(self.pool_size))?;
        Ok(Slot {
            _pool: pool,
            _plugin: own,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(pool: u32, per_plugin: u32) -> Slots {
        Slots::new(&Limits {
            max_instances: pool,
            max_instances_per_plugin: per_plugin,
            ..Limits::default()
        })
    }

    #[tokio::test]
    async fn one_plugin_cannot_take_every_place() {
        let slots = slots(4, 2);
        let wait = Duration::from_millis(50);
        let a1 = slots.acquire("a", wait).await.expect("first");
        let _a2 = slots.acquire("a", wait).await.expect("second");
        assert!(matches!(
            slots.acquire("a", wait).await,
            Err(CallError::Busy { limit: 2, .. })
        ));
        // Another plugin still gets the places left.
        let _b1 = slots.acquire("b", wait).await.expect("b first");
        let _b2 = slots.acquire("b", wait).await.expect("b second");
        // The pool is full now: a third plugin waits and fails on the pool's limit.
        assert!(matches!(
            slots.acquire("c", wait).await,
            Err(CallError::Busy { limit: 4, .. })
        ));
        drop(a1);
        let _a3 = slots.acquire("a", wait).await.expect("a place came back");
    }

    #[tokio::test]
    async fn a_waiting_call_gets_the_place_when_it_frees() {
        let slots = Arc::new(slots(2, 1));
        let held = slots.acquire("a", Duration::ZERO).await.expect("first");
        let waiter = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.acquire("a", Duration::from_secs(10)).await.is_ok() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        assert!(waiter.await.expect("join"));
    }

    #[test]
    fn the_default_share_is_a_quarter_of_the_pool() {
        let share = |pool: u32, per_plugin: u32| {
            Limits {
                max_instances: pool,
                max_instances_per_plugin: per_plugin,
                ..Limits::default()
            }
            .instances_per_plugin()
        };
        assert_eq!(share(128, 0), 32);
        assert_eq!(share(2, 0), 1);
        assert_eq!(share(8, 3), 3);
        assert_eq!(share(8, 100), 8);
        assert_eq!(Limits::default().instances_per_plugin(), 32);
    }
}
