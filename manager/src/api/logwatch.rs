//! The daemon's one inotify instance for every log follower.
//!
//! Each `logs?follow` used to make an inotify instance of its own, and root's
//! default `max_user_instances` is 128: enough followers took inotify from
//! every root process on the host. Now the daemon holds one instance
//! ([`Watcher`]), registered once with tokio's reactor. A container's state
//! directory gets a watch when its first follower arrives and loses it when
//! the last one leaves (reference-counted by watch descriptor, so two paths
//! to one directory share one watch). Events are counted per directory
//! ([`DirFeed`]: creations of `container.log`, queue overflows) and each
//! follower keeps its own position in those counts ([`Cursor`]), so nothing
//! is lost whatever each follower's pace; a `tokio::sync::watch` channel per
//! directory wakes its followers.
//!
//! Counting stays exact: a follower about to count first reads whatever the
//! kernel has queued ([`Shared::read_queued`], non-blocking), and the kernel
//! queues an inotify event within the syscall that caused it. So what a
//! follower counts always covers every rotation that happened before it
//! looked at the files, as with an instance of its own (see `crate::logtail`).
//!
//! The module's one `unsafe`: `AsyncFd::register` requires the fd to stay
//! open, and to be the same file, for the `AsyncFd`'s whole life. Here the
//! `AsyncFd` owns a [`WatchFd`] that holds the [`Shared`] that owns the
//! `Inotify` (and the `Inotify` is never handed out), so the fd lives at
//! least as long as the registration.
#![allow(unsafe_code)]

use crate::logtail::{Events, Seen};
use common::state::LOG_FILE;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::watch;

/// What a follower needs to know of its directory: new data, a new file.
const MASK: AddWatchFlags = AddWatchFlags::IN_CREATE
    .union(AddWatchFlags::IN_MODIFY)
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_ONLYDIR);

/// The events of one watched directory, counted since its watch was added.
pub struct DirFeed {
    created: AtomicU64,
    overflows: AtomicU64,
    /// Bumped after every batch of events that concerns the directory.
    wake: watch::Sender<u64>,
}

impl DirFeed {
    fn new() -> Arc<DirFeed> {
        Arc::new(DirFeed {
            created: AtomicU64::new(0),
            overflows: AtomicU64::new(0),
            wake: watch::Sender::new(0),
        })
    }
}

/// One watch: its feed and how many cursors use it.
struct Entry {
    feed: Arc<DirFeed>,
    users: usize,
}

struct Shared {
    inotify: Inotify,
    /// The watches, by descriptor. Every change to the watches and every read
    /// of the queue happen under this lock, so counts and watches agree.
    watches: Mutex<HashMap<WatchDescriptor, Entry>>,
}

impl Shared {
    /// Reads every event the kernel has queued and counts it (never waits).
    fn read_queued(&self) {
        let mut watches = self.watches.lock().expect("log watch lock");
        let mut touched: Vec<Arc<DirFeed>> = Vec::new();
        while let Ok(events) = self.inotify.read_events() {
            if events.is_empty() {
                break;
            }
            for e in events {
                if e.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    for entry in watches.values() {
                        entry.feed.overflows.fetch_add(1, Ordering::SeqCst);
                        touched.push(entry.feed.clone());
                    }
                    continue;
                }
                let Some(entry) = watches.get(&e.wd) else {
                    continue;
                };
                let feed = entry.feed.clone();
                if e.mask.contains(AddWatchFlags::IN_IGNORED) {
                    // The directory is gone (container deleted): the kernel
                    // dropped the watch; its cursors keep their feed.
                    watches.remove(&e.wd);
                } else if e.mask.contains(AddWatchFlags::IN_CREATE)
                    && e.name.as_deref() == Some(OsStr::new(LOG_FILE))
                {
                    feed.created.fetch_add(1, Ordering::SeqCst);
                }
                touched.push(feed);
            }
        }
        drop(watches);
        touched.dedup_by(|a, b| Arc::ptr_eq(a, b));
        for feed in touched {
            feed.wake.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

/// The registered fd: holds what owns it.
struct WatchFd(Arc<Shared>);

impl AsRawFd for WatchFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.inotify.as_fd().as_raw_fd()
    }
}

/// The daemon-wide log watcher (cheap to clone). Without inotify (no
/// instance left, or the reactor refused it) followers poll.
#[derive(Clone)]
pub struct Watcher(Option<Arc<Shared>>);

impl Watcher {
    /// Makes the one inotify instance and starts the task that reads it.
    /// Must run inside the tokio runtime.
    pub fn start() -> Watcher {
        let Ok(inotify) = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC) else {
            crate::say!("zctr: no inotify instance: log followers poll");
            return Watcher(None);
        };
        let shared = Arc::new(Shared {
            inotify,
            watches: Mutex::new(HashMap::new()),
        });
        // SAFETY: the AsyncFd owns the WatchFd, which holds the Shared that
        // owns the Inotify's fd and never closes or replaces it: the fd stays
        // open and the same until the AsyncFd is dropped.
        let fd =
            unsafe { AsyncFd::register_with_interest(WatchFd(shared.clone()), Interest::READABLE) };
        let Ok(fd) = fd else {
            crate::say!("zctr: cannot register inotify: log followers poll");
            return Watcher(None);
        };
        tokio::spawn(async move {
            loop {
                let Ok(mut guard) = fd.readable().await else {
                    return;
                };
                fd.get_ref().0.read_queued();
                guard.clear_ready();
            }
        });
        Watcher(Some(shared))
    }

    /// A watcher that never watches (followers poll).
    #[cfg(test)]
    pub fn none() -> Watcher {
        Watcher(None)
    }

    /// Follows `dir`: adds its watch unless it has one. `None` when it cannot
    /// be watched (then: polling). Blocking (a path lookup): call it on the
    /// blocking pool.
    pub fn follow(&self, dir: &Path) -> Option<(Cursor, Wake)> {
        let shared = self.0.clone()?;
        let mut watches = shared.watches.lock().expect("log watch lock");
        let wd = shared.inotify.add_watch(dir, MASK).ok()?;
        let entry = watches.entry(wd).or_insert_with(|| Entry {
            feed: DirFeed::new(),
            users: 0,
        });
        entry.users += 1;
        let feed = entry.feed.clone();
        drop(watches);
        let cursor = Cursor {
            wd,
            created: feed.created.load(Ordering::SeqCst),
            overflows: feed.overflows.load(Ordering::SeqCst),
            shared,
            feed: feed.clone(),
        };
        Some((cursor, Wake(feed.wake.subscribe())))
    }

    /// How many directories are watched now.
    #[cfg(test)]
    fn watched(&self) -> usize {
        self.0
            .as_ref()
            .map_or(0, |s| s.watches.lock().unwrap().len())
    }
}

/// One follower's position in its directory's events; leaving (drop) gives
/// up the watch when it was the last one.
pub struct Cursor {
    shared: Arc<Shared>,
    feed: Arc<DirFeed>,
    wd: WatchDescriptor,
    created: u64,
    overflows: u64,
}

impl Events for Cursor {
    fn take(&mut self) -> Seen {
        self.shared.read_queued();
        let created = self.feed.created.load(Ordering::SeqCst);
        let overflows = self.feed.overflows.load(Ordering::SeqCst);
        let seen = Seen {
            created: created - self.created,
            overflow: overflows != self.overflows,
        };
        self.created = created;
        self.overflows = overflows;
        seen
    }
}

impl Drop for Cursor {
    fn drop(&mut self) {
        let mut watches = self.shared.watches.lock().expect("log watch lock");
        // Only the entry of this feed: after IN_IGNORED the descriptor may
        // name another directory's watch.
        let Some(entry) = watches
            .get_mut(&self.wd)
            .filter(|e| Arc::ptr_eq(&e.feed, &self.feed))
        else {
            return;
        };
        entry.users -= 1;
        if entry.users == 0 {
            watches.remove(&self.wd);
            let _ = self.shared.inotify.rm_watch(self.wd);
        }
    }
}

/// Wakes a follower when its directory had events.
pub struct Wake(watch::Receiver<u64>);

impl Wake {
    /// Returns once there were events since the last return (at once if
    /// there were some meanwhile); never if the watcher is gone.
    pub async fn changed(&mut self) {
        if self.0.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::time::Duration;

    fn creations(c: &mut Cursor) -> u64 {
        c.take().created
    }

    #[tokio::test]
    async fn one_watch_per_directory_shared_and_given_back() {
        let w = Watcher::start();
        let (a, b) = (TempDir::new("lw-a"), TempDir::new("lw-b"));
        let (mut a1, mut wake_a1) = w.follow(a.path()).unwrap();
        let (mut a2, _wake_a2) = w.follow(a.path()).unwrap();
        let (mut b1, _wake_b1) = w.follow(b.path()).unwrap();
        assert_eq!(w.watched(), 2);

        std::fs::write(a.path().join(LOG_FILE), b"x").unwrap();
        // Counted at once by each follower, whichever looks first.
        assert_eq!(creations(&mut a1), 1);
        assert_eq!(creations(&mut a1), 0);
        assert_eq!(creations(&mut b1), 0);
        // The reader task wakes followers too.
        tokio::time::timeout(Duration::from_secs(5), wake_a1.changed())
            .await
            .expect("woken");
        std::fs::rename(a.path().join(LOG_FILE), a.path().join("old")).unwrap();
        std::fs::write(a.path().join(LOG_FILE), b"y").unwrap();
        assert_eq!(creations(&mut a2), 2);

        drop(a1);
        assert_eq!(w.watched(), 2);
        drop(a2);
        assert_eq!(w.watched(), 1);
        // A new follower after the last one left gets a fresh watch.
        let (mut a3, _w3) = w.follow(a.path()).unwrap();
        assert_eq!(w.watched(), 2);
        std::fs::remove_file(a.path().join(LOG_FILE)).unwrap();
        std::fs::write(a.path().join(LOG_FILE), b"z").unwrap();
        assert_eq!(creations(&mut a3), 1);
        drop((a3, b1));
        assert_eq!(w.watched(), 0);
    }

    #[tokio::test]
    async fn a_removed_directory_frees_its_watch() {
        let w = Watcher::start();
        let d = TempDir::new("lw-gone");
        let dir = d.path().join("state");
        std::fs::create_dir(&dir).unwrap();
        let (mut c, _wake) = w.follow(&dir).unwrap();
        std::fs::remove_dir(&dir).unwrap();
        c.take();
        assert_eq!(w.watched(), 0);
        drop(c);
        assert!(Watcher::none().follow(d.path()).is_none());
    }
}
