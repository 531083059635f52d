//! SQLite connections kept beside the pool for the hot read paths.
//!
//! sqlx's pool pings every connection it takes back (a round trip to the connection's
//! worker thread) and returns it from a spawned task; on a cached-miss read of a few rows
//! that is most of the cost. A reader is taken and given back without either. A read whose
//! future was dropped half-way leaves its reader suspect, and the next user pings it first
//! (and replaces it if the ping fails), which is what the pool's ping is there for.

use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tokio::sync::{Mutex, MutexGuard};

use crate::StoreError;

/// A few reader connections, handed out in turn.
#[derive(Debug)]
pub(crate) struct Readers {
    options: SqliteConnectOptions,
    slots: Vec<Mutex<Slot>>,
    next: AtomicUsize,
}

#[derive(Debug)]
struct Slot {
    conn: SqliteConnection,
    /// Set while a read is in flight; still set when one was abandoned.
    suspect: bool,
}

/// One reader, held for one read.
pub(crate) struct Reader<'a> {
    slot: MutexGuard<'a, Slot>,
}

impl Readers {
    pub(crate) async fn open(
        options: &SqliteConnectOptions,
        count: usize,
    ) -> Result<Readers, StoreError> {
        let mut slots = Vec::with_capacity(count);
        for _ in 0..count.max(1) {
            let conn = SqliteConnection::connect_with(options)
                .await
                .map_err(|e| StoreError::Connect(e.to_string()))?;
            slots.push(Mutex::new(Slot {
                conn,
                suspect: false,
            }));
        }
        Ok(Readers {
            options: options.clone(),
            slots,
            next: AtomicUsize::new(0),
        })
    }

    /// A free reader if there is one, else the next in turn once it is free.
    pub(crate) async fn get(&self) -> Result<Reader<'_>, StoreError> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.slots.len();
        let free = (0..n).find_map(|i| self.slots[(start + i) % n].try_lock().ok());
        let mut slot = match free {
            Some(slot) => slot,
            None => self.slots[start % n].lock().await,
        };
        if slot.suspect && slot.conn.ping().await.is_err() {
            slot.conn = SqliteConnection::connect_with(&self.options).await?;
        }
        // Cleared by `Reader::done`; left set if this read is abandoned half-way.
        slot.suspect = true;
        Ok(Reader { slot })
    }
}

impl Reader<'_> {
    pub(crate) fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.slot.conn
    }

    /// The read finished: the connection is in a clean state.
    pub(crate) fn done(mut self) {
        self.slot.suspect = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[tokio::test]
    async fn an_abandoned_read_is_checked_before_the_reader_is_used_again() {
        let dir = std::env::temp_dir().join(format!("readers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let url = format!("sqlite://{}", dir.join("db.sqlite").display());
        let options = SqliteConnectOptions::from_str(&url)
            .expect("url")
            .create_if_missing(true);
        let readers = Readers::open(&options, 1).await.expect("open");
        // A read dropped half-way (no `done`) leaves the reader suspect.
        drop(readers.get().await.expect("reader"));
        assert!(readers.slots[0].lock().await.suspect);
        // The next user gets a checked, working connection; a finished read clears the flag.
        let mut reader = readers.get().await.expect("reader");
        let one: (i64,) = sqlx::query_as("SELECT 1")
            .fetch_one(reader.conn())
            .await
            .expect("query");
        assert_eq!(one.0, 1);
        reader.done();
        assert!(!readers.slots[0].lock().await.suspect);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
