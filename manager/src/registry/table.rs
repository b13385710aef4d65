//! The in-memory table of containers by id. Short critical sections only:
//! nothing awaits while the table is locked.

use crate::container::Container;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub(super) struct Table(Mutex<BTreeMap<String, Arc<Container>>>);

impl Table {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Container>>> {
        self.0.lock().expect("table lock")
    }

    pub(super) fn get(&self, id: &str) -> Option<Arc<Container>> {
        self.map().get(id).cloned()
    }

    pub(super) fn contains(&self, id: &str) -> bool {
        self.map().contains_key(id)
    }

    /// Lists `c`, replacing any container of the same id (recovery).
    pub(super) fn insert(&self, c: Arc<Container>) {
        self.map().insert(c.id.as_str().to_string(), c);
    }

    /// Lists `c` unless its id is taken; false when it is.
    pub(super) fn reserve(&self, c: &Arc<Container>) -> bool {
        let mut map = self.map();
        if map.contains_key(c.id.as_str()) {
            return false;
        }
        map.insert(c.id.as_str().to_string(), c.clone());
        true
    }

    pub(super) fn forget(&self, id: &str) {
        self.map().remove(id);
    }

    /// Every container, in id order.
    pub(super) fn all(&self) -> Vec<Arc<Container>> {
        self.map().values().cloned().collect()
    }
}
