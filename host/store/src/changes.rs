//! Generations of what this process changed, for read caches of finished responses.
//!
//! Every write of a scene (or anything belonging to it) bumps that scene's generation after
//! its transaction commits. A reader notes the generation before it reads the database and
//! keeps its result only while the generation is unchanged, so a read after a write always
//! sees the write, however the two race. Lists of scenes depend on every scene; they use
//! the generation of all scenes together.
//!
//! Generations are per process: servers sharing PostgreSQL also compare the stored
//! `version` column (see `SceneRepo::version`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Scene ids remembered at most; beyond, every generation moves forward at once.
const REMEMBERED: usize = 100_000;

#[derive(Debug, Default)]
pub struct Changes {
    /// Bumped by every scene write; also the value new scene generations take.
    all: AtomicU64,
    scenes: Mutex<Scenes>,
}

#[derive(Debug, Default)]
struct Scenes {
    by_id: HashMap<String, u64>,
    /// The generation of every scene not in `by_id` (raised when the map is cleared).
    floor: u64,
}

impl Changes {
    fn lock(&self) -> std::sync::MutexGuard<'_, Scenes> {
        match self.scenes.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The current generation of scene `id`.
    pub fn scene(&self, id: &str) -> u64 {
        let scenes = self.lock();
        scenes.by_id.get(id).copied().unwrap_or(scenes.floor)
    }

    /// The generation of all scenes together (changes with any scene write).
    pub fn all_scenes(&self) -> u64 {
        self.all.load(Ordering::SeqCst)
    }

    /// Record that scene `id` changed (called after the write committed).
    pub fn scene_changed(&self, id: &str) {
        crate::space_returned();
        let mut scenes = self.lock();
        let next = self.all.fetch_add(1, Ordering::SeqCst) + 1;
        if scenes.by_id.len() >= REMEMBERED && !scenes.by_id.contains_key(id) {
            // Forget every id: they all move to the newest generation, which no cached
            // entry can carry yet.
            scenes.by_id.clear();
            scenes.floor = next;
        }
        scenes.by_id.insert(id.to_string(), next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_moves_the_scene_and_the_whole() {
        let changes = Changes::default();
        let (a, b, all) = (changes.scene("a"), changes.scene("b"), changes.all_scenes());
        changes.scene_changed("a");
        assert_ne!(changes.scene("a"), a);
        assert_eq!(changes.scene("b"), b);
        assert_ne!(changes.all_scenes(), all);
        let a2 = changes.scene("a");
        changes.scene_changed("a");
        assert_ne!(changes.scene("a"), a2, "every change is a new generation");
    }

    #[test]
    fn forgetting_ids_never_brings_an_old_generation_back() {
        let changes = Changes::default();
        let seen = changes.scene("x");
        changes.scene_changed("x");
        {
            let mut scenes = changes.lock();
            scenes
                .by_id
                .extend((0..REMEMBERED).map(|i| (format!("s{i}"), 0)));
        }
        changes.scene_changed("new");
        assert!(changes.scene("x") > seen);
        assert!(changes.scene("unknown") > seen);
    }
}
