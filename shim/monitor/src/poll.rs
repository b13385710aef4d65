//! The fds one pass of the monitor loop polls, in a fixed array: the idle
//! loop allocates nothing (and so touches no malloc code).

use crate::client::MAX_CLIENTS;
use crate::session::MAX_SESSIONS;
use crate::spawn::MAX_PENDING;

/// What a polled fd is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source {
    Signals,
    Channel,
    Listener,
    /// Output `which` (stdout, stderr, terminal) of the session in this
    /// slot. Indices are small (bounded by MAX_SESSIONS, MAX_PENDING,
    /// MAX_CLIENTS): u8 keeps the fixed arrays small.
    Out(u8, u8),
    /// The input of the session in this slot can take its pending bytes.
    In(u8),
    /// The report pipe of a `zctr-shim exec` being started.
    Helper(u8),
    Client(u8),
}

/// The fds one poll waits on, and what each is.
pub(crate) struct PollSet {
    fds: [libc::pollfd; POLL_MAX],
    sources: [Source; POLL_MAX],
    len: usize,
}

/// Signals, channel, listener; the init's three outputs and input; per
/// exec session at most three fds (two pipes and an input, or a terminal
/// and its input); the helpers; the clients.
const POLL_MAX: usize = 3 + 4 + 3 * MAX_SESSIONS + MAX_PENDING + MAX_CLIENTS;

const _: () = assert!(MAX_SESSIONS < 255 && MAX_CLIENTS < 256 && MAX_PENDING < 256);

impl PollSet {
    pub(crate) fn new() -> Self {
        PollSet {
            fds: [libc::pollfd {
                fd: -1,
                events: 0,
                revents: 0,
            }; POLL_MAX],
            sources: [Source::Signals; POLL_MAX],
            len: 0,
        }
    }

    pub(crate) fn add(&mut self, source: Source, fd: std::os::fd::RawFd) {
        self.add_events(source, fd, libc::POLLIN);
    }

    pub(crate) fn add_events(&mut self, source: Source, fd: std::os::fd::RawFd, events: i16) {
        if self.len < POLL_MAX {
            self.fds[self.len] = libc::pollfd {
                fd,
                events,
                revents: 0,
            };
            self.sources[self.len] = source;
            self.len += 1;
        }
    }

    pub(crate) fn fds(&mut self) -> &mut [libc::pollfd] {
        &mut self.fds[..self.len]
    }

    /// The sources with events, in the order added; later ones are moved down.
    pub(crate) fn ready(&mut self) -> &[Source] {
        let mut n = 0;
        for i in 0..self.len {
            if self.fds[i].revents != 0 {
                self.sources[n] = self.sources[i];
                n += 1;
            }
        }
        &self.sources[..n]
    }
}
