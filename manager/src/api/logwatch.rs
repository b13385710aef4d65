//! A log follower's inotify watch, registered with tokio's reactor so the
//! follower wakes as soon as the shim writes or rotates.
//!
//! The module's one `unsafe`: `AsyncFd::register` requires the fd to stay
//! open, and to be the same file, for the `AsyncFd`'s whole life. Here the
//! `AsyncFd` owns the `Inotify` that owns the fd, and [`Watch`] hands out only
//! shared references, so the fd lives exactly as long as the registration.
#![allow(unsafe_code)]

use nix::sys::inotify::Inotify;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

pub struct WatchFd(Inotify);

impl AsRawFd for WatchFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

pub struct Watch(AsyncFd<WatchFd>);

impl Watch {
    /// Registers `w`; `None` if the reactor refuses it (then: polling).
    pub fn register(w: Inotify) -> Option<Watch> {
        // SAFETY: the AsyncFd owns the Inotify, which owns the fd: it stays
        // open and the same until the AsyncFd is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(WatchFd(w), Interest::READABLE) };
        fd.ok().map(Watch)
    }

    pub fn inotify(&self) -> &Inotify {
        &self.0.get_ref().0
    }

    /// Waits until the watch has events, and lets `drain` take them.
    pub async fn wait(&self, drain: impl FnOnce(&Inotify)) {
        if let Ok(mut guard) = self.0.readable().await {
            drain(self.inotify());
            guard.clear_ready();
        }
    }
}
