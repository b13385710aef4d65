//! The handshake between the shim and the container child: a SOCK_SEQPACKET
//! socketpair, close-on-exec on both ends. Each side holds only its own end.
//!
//! shim → child: `GO` (ids mapped, cgroup joined; carries the rootfs overlay
//! mount as an SCM_RIGHTS fd when there is one), `START` (exec now), `AGENT`
//! (the seccomp agent has the listener: go on).
//! child → shim: a fixed-size [`ChildReport`]: ready, failed with step + errno,
//! or the seccomp listener (the fd attached with SCM_RIGHTS).
//! A successful exec closes the child's end: the shim sees EOF.

use crate::sys;
use nix::errno::Errno;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

const GO: u8 = b'G';
const START: u8 = b'S';
const AGENT: u8 = b'A';

const STEP_LEN: usize = 32;
const DETAIL_LEN: usize = 224;

/// What the child says, as one fixed-size datagram: no allocation on either side.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct ChildReport {
    /// b'R' ready, b'F' failed, b'L' listener, b'C' console (both with the fd).
    kind: u8,
    errno: i32,
    step: [u8; STEP_LEN],
    detail: [u8; DETAIL_LEN],
}

const REPORT_LEN: usize = std::mem::size_of::<ChildReport>();

impl ChildReport {
    fn blank(kind: u8) -> Self {
        ChildReport {
            kind,
            errno: 0,
            step: [0; STEP_LEN],
            detail: [0; DETAIL_LEN],
        }
    }

    fn as_bytes(&self) -> [u8; REPORT_LEN] {
        let mut out = [0u8; REPORT_LEN];
        out[0] = self.kind;
        out[4..8].copy_from_slice(&self.errno.to_ne_bytes());
        out[8..8 + STEP_LEN].copy_from_slice(&self.step);
        out[8 + STEP_LEN..8 + STEP_LEN + DETAIL_LEN].copy_from_slice(&self.detail);
        out
    }

    fn from_bytes(b: &[u8; REPORT_LEN]) -> Self {
        let mut r = ChildReport::blank(b[0]);
        r.errno = i32::from_ne_bytes(b[4..8].try_into().expect("4 bytes"));
        r.step.copy_from_slice(&b[8..8 + STEP_LEN]);
        r.detail
            .copy_from_slice(&b[8 + STEP_LEN..8 + STEP_LEN + DETAIL_LEN]);
        r
    }
}

fn text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn fill(dst: &mut [u8], src: &[u8]) {
    let n = src.len().min(dst.len() - 1);
    dst[..n].copy_from_slice(&src[..n]);
}

/// A setup step that failed in the child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildFailure {
    pub step: String,
    pub errno: i32,
    pub detail: String,
}

impl std::fmt::Display for ChildFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.step)?;
        if !self.detail.is_empty() {
            write!(f, " {}", self.detail)?;
        }
        write!(f, ": {}", Errno::from_raw(self.errno).desc())
    }
}

/// What the shim learns from the child.
#[derive(Debug)]
pub enum Event {
    Ready,
    Failed(ChildFailure),
    /// The seccomp listener of the filter the child just installed.
    Listener(OwnedFd),
    /// The master of the pty the child made its terminal (`zctr-oci`).
    Console(OwnedFd),
    /// The child's end closed: it exec'd (or died).
    Closed,
}

/// Creates the pair: (shim end, child end).
pub fn pair() -> nix::Result<(ShimEnd, ChildEnd)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((ShimEnd(a), ChildEnd(b)))
}

pub struct ShimEnd(OwnedFd);

impl std::os::fd::AsFd for ShimEnd {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl ShimEnd {
    /// The shim's end, inherited as `fd` (by the monitor after exec).
    pub fn from_fd(fd: OwnedFd) -> Self {
        ShimEnd(fd)
    }

    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Lets the child go on; `rootfs` (a detached mount made after clone, so
    /// not in the child's fd table) travels with it.
    pub fn send_go(&self, rootfs: Option<RawFd>) -> nix::Result<()> {
        sys::send_byte_with_fd(self.fd(), GO, rootfs)
    }

    pub fn send_start(&self) -> nix::Result<()> {
        sys::write_all(self.fd(), &[START])
    }

    /// The seccomp agent has the listener: the child may go on.
    pub fn send_agent_ready(&self) -> nix::Result<()> {
        sys::write_all(self.fd(), &[AGENT])
    }

    /// Blocks for the child's next report.
    pub fn recv(&self) -> nix::Result<Event> {
        let mut buf = [0u8; REPORT_LEN];
        let (n, fd) = sys::recv_with_fd(self.fd(), &mut buf)?;
        // Owned at once: closed on every path that does not hand it on.
        // SAFETY: the kernel just installed this fd for us (SCM_RIGHTS);
        // nothing else holds it.
        let fd = fd.map(|fd| unsafe { sys::adopt_fd(fd) }).transpose()?;
        if n == 0 {
            return Ok(Event::Closed);
        }
        if n != REPORT_LEN {
            return Err(Errno::EPROTO);
        }
        let r = ChildReport::from_bytes(&buf);
        Ok(match (r.kind, fd) {
            (b'L', Some(fd)) => Event::Listener(fd),
            (b'L', None) => return Err(Errno::EPROTO),
            (b'C', Some(fd)) => Event::Console(fd),
            (b'C', None) => return Err(Errno::EPROTO),
            (b'R', _) => Event::Ready,
            _ => Event::Failed(ChildFailure {
                step: text(&r.step),
                errno: r.errno,
                detail: text(&r.detail),
            }),
        })
    }
}

pub struct ChildEnd(OwnedFd);

impl ChildEnd {
    /// The child's end, made by the caller as one end of a SOCK_SEQPACKET
    /// pair (`setup::exec` numbers its fds above the ones it preserves).
    pub fn from_fd(fd: OwnedFd) -> Self {
        ChildEnd(fd)
    }

    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    fn wait_for(&self, byte: u8) -> Result<(), Errno> {
        let mut b = [0u8; 1];
        match sys::read(self.fd(), &mut b)? {
            1 if b[0] == byte => Ok(()),
            // The shim went away or said something unexpected: stop here.
            _ => Err(Errno::ECONNABORTED),
        }
    }

    /// Waits for `GO`; returns the fd that came with it, if any.
    pub fn wait_go(&self) -> Result<Option<RawFd>, Errno> {
        match sys::recv_byte_with_fd(self.fd())? {
            (1, GO, fd) => Ok(fd),
            (_, _, fd) => {
                if let Some(fd) = fd {
                    // SAFETY: the kernel just installed `fd` for us with this
                    // message; nothing else holds it, and it is dropped here.
                    unsafe { sys::close(fd) };
                }
                Err(Errno::ECONNABORTED)
            }
        }
    }

    pub fn wait_start(&self) -> Result<(), Errno> {
        self.wait_for(START)
    }

    /// Sends the seccomp listener `fd` to the shim: one fixed-size report on
    /// the stack, the fd attached (the child's copy stays open).
    pub fn send_listener(&self, fd: RawFd) -> Result<(), Errno> {
        sys::send_with_fd(self.fd(), &ChildReport::blank(b'L').as_bytes(), Some(fd))
    }

    /// Sends the master of the pty the child opened (`fd` attached).
    pub fn send_console(&self, fd: RawFd) -> Result<(), Errno> {
        sys::send_with_fd(self.fd(), &ChildReport::blank(b'C').as_bytes(), Some(fd))
    }

    /// Waits until the shim has handed the listener to the seccomp agent.
    pub fn wait_agent(&self) -> Result<(), Errno> {
        self.wait_for(AGENT)
    }

    pub fn ready(&self) {
        let _ = sys::write_all(self.fd(), &ChildReport::blank(b'R').as_bytes());
    }

    pub fn failed(&self, step: &str, errno: Errno, detail: &[u8]) {
        let mut r = ChildReport::blank(b'F');
        r.errno = errno as i32;
        fill(&mut r.step, step.as_bytes());
        fill(&mut r.detail, detail);
        let _ = sys::write_all(self.fd(), &r.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_cross_the_pair_intact() {
        let (shim, child) = pair().unwrap();
        child.ready();
        assert!(matches!(shim.recv().unwrap(), Event::Ready));
        child.failed("mount", Errno::ENOENT, b"/proc");
        match shim.recv().unwrap() {
            Event::Failed(f) => {
                assert_eq!(f.step, "mount");
                assert_eq!(f.errno, libc::ENOENT);
                assert_eq!(f.detail, "/proc");
                assert!(f.to_string().contains("No such file"));
            }
            e => panic!("{e:?}"),
        }
        shim.send_go(None).unwrap();
        assert_eq!(child.wait_go().unwrap(), None);
        let devnull = std::fs::File::open("/dev/null").unwrap();
        shim.send_go(Some(devnull.as_raw_fd())).unwrap();
        let got = child.wait_go().unwrap().expect("an fd came with GO");
        assert!(got > 2 && got != devnull.as_raw_fd());
        // SAFETY: `got` came with GO, a new fd nothing else holds.
        unsafe { sys::close(got) };
        shim.send_go(None).unwrap();
        assert_eq!(child.wait_start(), Err(Errno::ECONNABORTED));
        drop(child);
        assert!(matches!(shim.recv().unwrap(), Event::Closed));
    }

    #[test]
    fn the_listener_goes_up_and_the_agent_reply_comes_down() {
        let (shim, child) = pair().unwrap();
        let devnull = std::fs::File::open("/dev/null").unwrap();
        child.send_listener(devnull.as_raw_fd()).unwrap();
        match shim.recv().unwrap() {
            Event::Listener(fd) => {
                assert_ne!(fd.as_raw_fd(), devnull.as_raw_fd());
                let st = nix::sys::stat::fstat(&fd).unwrap();
                assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFCHR);
            }
            e => panic!("{e:?}"),
        }
        shim.send_agent_ready().unwrap();
        child.wait_agent().unwrap();
        // A listener report without its fd is a protocol error.
        sys::write_all(child.fd(), &ChildReport::blank(b'L').as_bytes()).unwrap();
        assert_eq!(shim.recv().unwrap_err(), Errno::EPROTO);
        shim.send_start().unwrap();
        assert_eq!(child.wait_agent(), Err(Errno::ECONNABORTED));
    }

    #[test]
    fn the_console_goes_up_with_its_fd() {
        let (shim, child) = pair().unwrap();
        let devnull = std::fs::File::open("/dev/null").unwrap();
        child.send_console(devnull.as_raw_fd()).unwrap();
        match shim.recv().unwrap() {
            Event::Console(fd) => assert_ne!(fd.as_raw_fd(), devnull.as_raw_fd()),
            e => panic!("{e:?}"),
        }
        // A console report without its fd is a protocol error.
        sys::write_all(child.fd(), &ChildReport::blank(b'C').as_bytes()).unwrap();
        assert_eq!(shim.recv().unwrap_err(), Errno::EPROTO);
    }

    #[test]
    fn long_details_are_cut_not_overflowed() {
        let (shim, child) = pair().unwrap();
        child.failed(&"s".repeat(100), Errno::EINVAL, &[b'd'; 1000]);
        let Event::Failed(f) = shim.recv().unwrap() else {
            panic!()
        };
        assert_eq!(f.step.len(), STEP_LEN - 1);
        assert_eq!(f.detail.len(), DETAIL_LEN - 1);
    }
}
