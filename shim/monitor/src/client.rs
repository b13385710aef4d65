//! One connection on the control socket: the frames it sends, the sessions
//! it is attached to, and what the monitor sends it. Nothing written to a
//! client ever blocks the loop: what the socket does not take waits in a
//! bounded buffer; a session whose clients' buffers are full is not read
//! (backpressure), and a client whose buffer stays full for [`STALL_MS`] is
//! dropped, so a stopped manager cannot stall a container for ever.

use common::protocol::{self, FrameBuffer, ShimMsg, MAX_FRAME};
use std::io::{ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

pub(crate) const MAX_CLIENTS: usize = 16;

/// Bytes queued for one client before the sessions it is attached to stop
/// being read.
pub(crate) const OUT_CAP: usize = 256 * 1024;

/// Past this (replies queued on a full buffer), the client is dropped.
const HARD_CAP: usize = OUT_CAP + 64 * 1024;

/// How long a client's buffer may stay full before it is dropped.
pub(crate) const STALL_MS: u64 = 5000;

/// Every frame but `Output` fits in a small buffer (texts are capped at
/// MAX_TEXT); a whole MAX_FRAME on the stack would keep 16 KiB resident.
const SMALL_FRAME: usize = protocol::MAX_TEXT + 256;

pub(crate) struct Client {
    /// Unique for the monitor's life (indices shift as clients go).
    pub id: u64,
    pub stream: UnixStream,
    pub frames: FrameBuffer,
    /// A write or read failed: dropped at the end of the loop pass, so that
    /// the indices the pass polled with stay valid until then.
    pub dead: bool,
    /// The sessions whose output it receives.
    pub attached: Vec<u32>,
    /// Bytes the socket did not take yet (allocated only when needed).
    pending: Vec<u8>,
    full_since: Option<Instant>,
}

/// Writes what the non-blocking `stream` takes now; Err when it is broken.
fn write_some(stream: &mut UnixStream, buf: &[u8]) -> Result<usize, ()> {
    let mut done = 0;
    while done < buf.len() {
        match stream.write(&buf[done..]) {
            Ok(0) => return Err(()),
            Ok(n) => done += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
    Ok(done)
}

impl Client {
    pub fn new(id: u64, stream: UnixStream) -> Self {
        Client {
            id,
            stream,
            frames: FrameBuffer::new(),
            dead: false,
            attached: Vec::new(),
            pending: Vec::new(),
            full_since: None,
        }
    }

    /// Sends `msg` (queued when the socket is full); a client that cannot
    /// take it is marked dead.
    pub fn send(&mut self, msg: &ShimMsg) {
        let mut buf = [0u8; SMALL_FRAME];
        match protocol::encode_frame(msg, &mut buf) {
            Ok(n) => self.queue(&buf[..n]),
            Err(_) => match protocol::encode_frame_vec(msg) {
                Ok(frame) => self.queue(&frame),
                Err(_) => self.dead = true,
            },
        }
    }

    /// Sends one encoded frame, queueing what the socket does not take.
    pub fn queue(&mut self, frame: &[u8]) {
        if self.dead {
            return;
        }
        let mut rest = frame;
        if self.pending.is_empty() {
            match write_some(&mut self.stream, rest) {
                Ok(n) => rest = &rest[n..],
                Err(()) => {
                    self.dead = true;
                    return;
                }
            }
        }
        if rest.is_empty() {
            return;
        }
        if self.pending.len() + rest.len() > HARD_CAP {
            self.dead = true;
            return;
        }
        self.pending.extend_from_slice(rest);
    }

    /// Writes what is queued, as far as the socket takes it.
    pub fn flush(&mut self) {
        if self.pending.is_empty() || self.dead {
            return;
        }
        match write_some(&mut self.stream, &self.pending) {
            Ok(n) if n == self.pending.len() => self.pending = Vec::new(),
            Ok(n) => {
                self.pending.drain(..n);
            }
            Err(()) => self.dead = true,
        }
    }

    /// Something waits to be written (poll for POLLOUT).
    pub fn wants_write(&self) -> bool {
        !self.pending.is_empty()
    }

    /// One more `Output` frame fits in its buffer.
    pub fn has_room(&self) -> bool {
        self.pending.len() + MAX_FRAME <= OUT_CAP
    }

    pub fn is_attached(&self, session: u32) -> bool {
        !self.dead && self.attached.contains(&session)
    }

    /// Drops (marks dead) a client whose buffer has been full for
    /// [`STALL_MS`]; true while its buffer is full (the loop then wakes to
    /// check again).
    pub fn check_stall(&mut self, now: Instant) -> bool {
        if self.dead || self.has_room() {
            self.full_since = None;
            return false;
        }
        let since = *self.full_since.get_or_insert(now);
        if now.duration_since(since) >= Duration::from_millis(STALL_MS) {
            self.dead = true;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn a_full_socket_queues_then_flushes_and_a_stalled_client_is_dropped() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let mut c = Client::new(1, ours);
        let frame = vec![7u8; 4096];
        // Fill the socket, then the buffer, until there is no room for one
        // more Output frame; nothing blocks.
        while c.has_room() {
            c.queue(&frame);
            assert!(!c.dead);
        }
        assert!(c.wants_write());
        let t0 = Instant::now();
        assert!(c.check_stall(t0));
        assert!(!c.dead);
        // The reader catches up: everything arrives, in order.
        let mut got = 0usize;
        let mut buf = vec![0u8; 65536];
        theirs
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        while c.wants_write() || !got.is_multiple_of(frame.len()) {
            c.flush();
            match theirs.read(&mut buf) {
                Ok(n) => {
                    assert!(buf[..n].iter().all(|&b| b == 7));
                    got += n;
                }
                Err(_) => break,
            }
        }
        assert!(!c.wants_write());
        assert!(!c.check_stall(t0));
        // Full again and never read: dropped after STALL_MS.
        while c.has_room() {
            c.queue(&frame);
        }
        let t1 = Instant::now();
        assert!(c.check_stall(t1));
        assert!(!c.dead);
        c.check_stall(t1 + Duration::from_millis(STALL_MS));
        assert!(c.dead);
        drop(theirs);
    }

    #[test]
    fn a_closed_peer_marks_the_client_dead() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        drop(theirs);
        let mut c = Client::new(2, ours);
        c.send(&ShimMsg::Started);
        assert!(c.dead);
        assert!(!c.is_attached(0));
    }
}
