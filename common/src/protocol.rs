//! The frame protocol spoken between the manager and a shim.
//!
//! A frame is a fixed 10-byte header followed by a bincode payload:
//!
//! | bytes | field    | value                                      |
//! |-------|----------|--------------------------------------------|
//! | 0..4  | magic    | `b"ZCTR"`                                  |
//! | 4..6  | version  | `u16` little endian, [`VERSION`]           |
//! | 6..10 | length   | `u32` little endian, payload length        |
//! | 10..  | payload  | bincode (standard config) of one message   |
//!
//! The payload is one [`ShimMsg`] (shim → manager) or one [`ManagerMsg`]
//! (manager → shim). A payload is at most [`MAX_PAYLOAD`] bytes. Encoding
//! writes into a caller-supplied buffer so the shim can send frames without
//! allocating. Every malformed input is a [`FrameError`], never a panic.

use bincode::{Decode, Encode};
use std::io::{self, Read, Write};

/// First four bytes of every frame.
pub const MAGIC: [u8; 4] = *b"ZCTR";
/// Protocol version carried in every header. Bumped on any incompatible change.
pub const VERSION: u16 = 1;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 10;
/// Largest payload accepted or produced.
pub const MAX_PAYLOAD: usize = 16 * 1024;
/// Largest whole frame (header + payload); a buffer of this size fits any frame.
pub const MAX_FRAME: usize = HEADER_LEN + MAX_PAYLOAD;
/// Longest step name / message carried in a [`ShimMsg::SetupFailed`].
pub const MAX_TEXT: usize = 1024;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_PAYLOAD>()
}

/// How a container's init process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum ExitStatus {
    /// It called exit with this code.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
}

impl ExitStatus {
    /// The shell convention: the code itself, or 128 + signal.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => 128 + s,
        }
    }
}

/// Where the container stands, as a shim reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum ShimState {
    /// Set up and waiting for `Start` just before exec.
    Created,
    /// Its process was exec'd.
    Running,
    /// Its init process exited.
    Stopped,
}

/// Messages from a shim to the manager.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum ShimMsg {
    /// Sent first on every new connection: who is talking and where the container stands.
    Hello {
        shim_pid: i32,
        /// The container's init pid on the host (0 if it never got one).
        init_pid: i32,
        state: ShimState,
    },
    /// The container is created: its init waits before exec.
    Created { pid: i32 },
    /// The container's process was exec'd.
    Started,
    /// The container's init process ended. `at_ms` is milliseconds since the Unix epoch.
    Exited {
        status: ExitStatus,
        oom_killed: bool,
        at_ms: u64,
    },
    /// A setup step failed; nothing of the container remains.
    SetupFailed {
        step: String,
        errno: i32,
        message: String,
    },
    /// A command from the manager could not be carried out.
    CommandFailed { errno: i32, message: String },
    /// Answer to [`ManagerMsg::Exec`]: the new process runs as session
    /// `session` (never 0, never reused by this monitor); `pid` is its host
    /// pid. The connection that sent `Exec` is attached to it unless it
    /// asked for `detach`.
    ExecStarted { session: u32, pid: i32 },
    /// Answer to [`ManagerMsg::Attach`]: this connection now receives the
    /// session's [`ShimMsg::Output`]; `tty` says whether it is a terminal
    /// (one stream, [`ManagerMsg::Resize`] applies).
    Attached { session: u32, tty: bool },
    /// Bytes a session wrote (at most [`MAX_CHUNK`] per frame), sent to the
    /// connections attached to it.
    Output {
        session: u32,
        stream: Stream,
        data: Vec<u8>,
    },
    /// An exec'd process ended (sent to every connection, after its
    /// output was relayed). `at_ms` is milliseconds since the Unix epoch.
    ExecExited {
        session: u32,
        pid: i32,
        status: ExitStatus,
        at_ms: u64,
    },
}

/// Which output of a session a chunk comes from (a terminal has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// The largest `data` in one [`ShimMsg::Output`] or [`ManagerMsg::Input`].
pub const MAX_CHUNK: usize = 8 * 1024;

/// Session 0: the container's own process (its init's stdio or pty).
pub const INIT_SESSION: u32 = 0;

/// Messages from the manager to a shim.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum ManagerMsg {
    /// Let the created container exec its process.
    Start,
    /// Send this signal to the container's init process.
    Kill { signal: i32 },
    /// Ask for a fresh `Hello`.
    Status,
    /// Run a new process in the running container as a child of the
    /// monitor (docs/protocol.md, "Sessions"). Answered by
    /// [`ShimMsg::ExecStarted`] or [`ShimMsg::CommandFailed`] (a container
    /// that is not running, paused, or a process that cannot start).
    Exec {
        /// The `zctr-shim` executable that joins the container and execs it.
        shim: String,
        /// A runtime-spec `process` object (JSON file), merged by the caller.
        process: String,
        /// A pty from the container's own devpts as its controlling terminal.
        tty: bool,
        /// Keep its input open for [`ManagerMsg::Input`] (else /dev/null).
        stdin: bool,
        /// Nobody attaches: its output goes to the container's log.
        detach: bool,
        /// The terminal's initial (rows, columns).
        size: Option<(u16, u16)>,
    },
    /// Attach this connection to a session's output and input.
    Attach { session: u32 },
    /// Bytes for a session's input (at most [`MAX_CHUNK`]).
    Input { session: u32, data: Vec<u8> },
    /// Close a session's input (the process reads end of file).
    CloseInput { session: u32 },
    /// A session's terminal size changed.
    Resize { session: u32, rows: u16, cols: u16 },
}

/// A frame that could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame truncated: needed {needed} bytes, got {got}")]
    Truncated { needed: usize, got: usize },
    #[error("frame payload of {len} bytes exceeds the maximum of {max}")]
    Oversized { len: usize, max: usize },
    #[error("bad frame magic {found:02x?}, expected {MAGIC:02x?}")]
    BadMagic { found: [u8; 4] },
    #[error("unsupported frame protocol version {found}, this side speaks {VERSION}")]
    BadVersion { found: u16 },
    #[error("frame payload does not decode: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    #[error("frame payload of {len} bytes has {extra} trailing bytes")]
    TrailingBytes { len: usize, extra: usize },
    #[error("message does not encode: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    #[error("frame i/o: {0}")]
    Io(#[from] io::Error),
}

/// Parses a header and returns the payload length it announces.
pub fn decode_header(bytes: &[u8]) -> Result<usize, FrameError> {
    if bytes.len() < HEADER_LEN {
        return Err(FrameError::Truncated {
            needed: HEADER_LEN,
            got: bytes.len(),
        });
    }
    let found: [u8; 4] = bytes[0..4].try_into().expect("4 bytes");
    if found != MAGIC {
        return Err(FrameError::BadMagic { found });
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if version != VERSION {
        return Err(FrameError::BadVersion { found: version });
    }
    let len = u32::from_le_bytes(bytes[6..10].try_into().expect("4 bytes")) as usize;
    if len > MAX_PAYLOAD {
        return Err(FrameError::Oversized {
            len,
            max: MAX_PAYLOAD,
        });
    }
    Ok(len)
}

/// Encodes `msg` as one whole frame into `buf` and returns the frame's length.
/// Allocates nothing; `buf` of [`MAX_FRAME`] bytes always suffices.
pub fn encode_frame<T: Encode>(msg: &T, buf: &mut [u8]) -> Result<usize, FrameError> {
    if buf.len() < HEADER_LEN {
        return Err(FrameError::Truncated {
            needed: HEADER_LEN,
            got: buf.len(),
        });
    }
    let room = (buf.len() - HEADER_LEN).min(MAX_PAYLOAD);
    let len = bincode::encode_into_slice(msg, &mut buf[HEADER_LEN..HEADER_LEN + room], config())?;
    buf[0..4].copy_from_slice(&MAGIC);
    buf[4..6].copy_from_slice(&VERSION.to_le_bytes());
    buf[6..10].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(HEADER_LEN + len)
}

/// Encodes `msg` as a frame into a new vector.
pub fn encode_frame_vec<T: Encode>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut buf = vec![0u8; MAX_FRAME];
    let n = encode_frame(msg, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// Decodes one frame at the start of `bytes`; returns the message and the number
/// of bytes it used. `Truncated` means more bytes are needed.
pub fn decode_frame<T: Decode<()>>(bytes: &[u8]) -> Result<(T, usize), FrameError> {
    let len = decode_header(bytes)?;
    let total = HEADER_LEN + len;
    if bytes.len() < total {
        return Err(FrameError::Truncated {
            needed: total,
            got: bytes.len(),
        });
    }
    let (msg, used) = bincode::decode_from_slice(&bytes[HEADER_LEN..total], config())?;
    if used != len {
        return Err(FrameError::TrailingBytes {
            len,
            extra: len - used,
        });
    }
    Ok((msg, total))
}

/// Writes one frame to a blocking writer.
pub fn write_frame<T: Encode, W: Write>(w: &mut W, msg: &T) -> Result<(), FrameError> {
    let mut buf = [0u8; MAX_FRAME];
    let n = encode_frame(msg, &mut buf)?;
    w.write_all(&buf[..n])?;
    Ok(())
}

/// Reads one frame from a blocking reader. `Ok(None)` is a clean end of stream
/// (EOF before the first header byte); EOF inside a frame is `Truncated`.
pub fn read_frame<T: Decode<()>, R: Read>(r: &mut R) -> Result<Option<T>, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    let got = read_full(r, &mut header)?;
    if got == 0 {
        return Ok(None);
    }
    if got < HEADER_LEN {
        return Err(FrameError::Truncated {
            needed: HEADER_LEN,
            got,
        });
    }
    let len = decode_header(&header)?;
    let mut frame = vec![0u8; HEADER_LEN + len];
    frame[..HEADER_LEN].copy_from_slice(&header);
    let got = read_full(r, &mut frame[HEADER_LEN..])?;
    if got < len {
        return Err(FrameError::Truncated {
            needed: HEADER_LEN + len,
            got: HEADER_LEN + got,
        });
    }
    decode_frame(&frame).map(|(m, _)| Some(m))
}

fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Accumulates bytes from a non-blocking stream and yields whole frames.
/// Used by both the shim's poll loop and the manager's async reader.
#[derive(Debug, Default)]
pub struct FrameBuffer {
    buf: Vec<u8>,
}

impl FrameBuffer {
    pub fn new() -> Self {
        Self {
            buf: Vec::with_capacity(256),
        }
    }

    /// Appends freshly read bytes.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Takes the next whole frame, if one has arrived. A malformed frame is an
    /// error; the buffer should then be discarded with the connection.
    pub fn next_frame<T: Decode<()>>(&mut self) -> Result<Option<T>, FrameError> {
        match decode_frame(&self.buf) {
            Ok((msg, used)) => {
                self.buf.drain(..used);
                Ok(Some(msg))
            }
            Err(FrameError::Truncated { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Bytes held that do not yet form a whole frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip<T: Encode + Decode<()> + PartialEq + std::fmt::Debug>(msg: T) {
        let bytes = encode_frame_vec(&msg).unwrap();
        let (back, used): (T, usize) = decode_frame(&bytes).unwrap();
        assert_eq!(back, msg);
        assert_eq!(used, bytes.len());
        let mut cursor = io::Cursor::new(bytes);
        let read: Option<T> = read_frame(&mut cursor).unwrap();
        assert_eq!(read.unwrap(), msg);
    }

    #[test]
    fn every_message_roundtrips() {
        roundtrip(ShimMsg::Hello {
            shim_pid: 10,
            init_pid: 11,
            state: ShimState::Running,
        });
        roundtrip(ShimMsg::Created { pid: 4242 });
        roundtrip(ShimMsg::Started);
        roundtrip(ShimMsg::Exited {
            status: ExitStatus::Code(7),
            oom_killed: false,
            at_ms: 1_700_000_000_000,
        });
        roundtrip(ShimMsg::Exited {
            status: ExitStatus::Signal(9),
            oom_killed: true,
            at_ms: 1,
        });
        roundtrip(ShimMsg::SetupFailed {
            step: "pivot_root".into(),
            errno: 22,
            message: "invalid argument".into(),
        });
        roundtrip(ShimMsg::CommandFailed {
            errno: 3,
            message: "no such process".into(),
        });
        roundtrip(ManagerMsg::Start);
        roundtrip(ManagerMsg::Kill { signal: 15 });
        roundtrip(ManagerMsg::Status);
        roundtrip(ShimMsg::ExecStarted {
            session: 3,
            pid: 99,
        });
        roundtrip(ShimMsg::Attached {
            session: 0,
            tty: true,
        });
        roundtrip(ShimMsg::Output {
            session: 1,
            stream: Stream::Stderr,
            data: vec![0, 1, 255],
        });
        roundtrip(ShimMsg::ExecExited {
            session: 1,
            pid: 99,
            status: ExitStatus::Code(7),
            at_ms: 5,
        });
        roundtrip(ManagerMsg::Exec {
            shim: "/usr/bin/zctr-shim".into(),
            process: "/run/zctr/c/exec-1.json".into(),
            tty: true,
            stdin: true,
            detach: false,
            size: Some((24, 80)),
        });
        roundtrip(ManagerMsg::Attach { session: 2 });
        roundtrip(ManagerMsg::Input {
            session: 2,
            data: b"ls\n".to_vec(),
        });
        roundtrip(ManagerMsg::CloseInput { session: 2 });
        roundtrip(ManagerMsg::Resize {
            session: 0,
            rows: 40,
            cols: 120,
        });
    }

    #[test]
    fn a_full_output_chunk_fits_a_frame() {
        let msg = ShimMsg::Output {
            session: u32::MAX,
            stream: Stream::Stdout,
            data: vec![0xff; MAX_CHUNK],
        };
        let frame = encode_frame_vec(&msg).unwrap();
        assert!(frame.len() <= MAX_FRAME);
        let input = ManagerMsg::Input {
            session: u32::MAX,
            data: vec![0xff; MAX_CHUNK],
        };
        assert!(encode_frame_vec(&input).unwrap().len() <= MAX_FRAME);
    }

    #[test]
    fn golden_bytes() {
        // These bytes are the wire format: a change here breaks running shims.
        assert_eq!(
            encode_frame_vec(&ShimMsg::Created { pid: 4242 }).unwrap(),
            // 4242 zigzag-encodes to 8484 = 0x2124, a varint after the 0xfb (u16) marker.
            [b'Z', b'C', b'T', b'R', 1, 0, 4, 0, 0, 0, 1, 0xfb, 0x24, 0x21]
        );
        assert_eq!(
            encode_frame_vec(&ShimMsg::Exited {
                status: ExitStatus::Signal(9),
                oom_killed: true,
                at_ms: 1000,
            })
            .unwrap(),
            [b'Z', b'C', b'T', b'R', 1, 0, 7, 0, 0, 0, 3, 1, 18, 1, 0xfb, 0xe8, 0x03]
        );
        assert_eq!(
            encode_frame_vec(&ShimMsg::SetupFailed {
                step: "mount".into(),
                errno: 2,
                message: "x".into(),
            })
            .unwrap(),
            [
                b'Z', b'C', b'T', b'R', 1, 0, 10, 0, 0, 0, 4, 5, b'm', b'o', b'u', b'n', b't', 4,
                1, b'x'
            ]
        );
        assert_eq!(
            encode_frame_vec(&ManagerMsg::Kill { signal: 15 }).unwrap(),
            [b'Z', b'C', b'T', b'R', 1, 0, 2, 0, 0, 0, 1, 30]
        );
        assert_eq!(
            encode_frame_vec(&ManagerMsg::Start).unwrap(),
            [b'Z', b'C', b'T', b'R', 1, 0, 1, 0, 0, 0, 0]
        );
    }

    #[test]
    fn truncated_frames_are_errors() {
        let bytes = encode_frame_vec(&ShimMsg::Created { pid: 1 }).unwrap();
        for cut in 0..bytes.len() {
            match decode_frame::<ShimMsg>(&bytes[..cut]) {
                Err(FrameError::Truncated { got, .. }) => assert_eq!(got, cut),
                other => panic!("cut at {cut}: {other:?}"),
            }
            if cut > 0 {
                let mut cursor = io::Cursor::new(bytes[..cut].to_vec());
                assert!(matches!(
                    read_frame::<ShimMsg, _>(&mut cursor),
                    Err(FrameError::Truncated { .. })
                ));
            }
        }
        let mut empty = io::Cursor::new(Vec::new());
        assert!(read_frame::<ShimMsg, _>(&mut empty).unwrap().is_none());
    }

    #[test]
    fn oversized_frames_are_errors() {
        let mut bytes = encode_frame_vec(&ManagerMsg::Start).unwrap();
        bytes[6..10].copy_from_slice(&((MAX_PAYLOAD as u32) + 1).to_le_bytes());
        assert!(matches!(
            decode_frame::<ManagerMsg>(&bytes),
            Err(FrameError::Oversized { len, .. }) if len == MAX_PAYLOAD + 1
        ));
        bytes[6..10].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut cursor = io::Cursor::new(bytes);
        assert!(matches!(
            read_frame::<ManagerMsg, _>(&mut cursor),
            Err(FrameError::Oversized { .. })
        ));
        let huge = ShimMsg::CommandFailed {
            errno: 0,
            message: "x".repeat(MAX_PAYLOAD),
        };
        assert!(matches!(
            encode_frame_vec(&huge),
            Err(FrameError::Encode(_))
        ));
    }

    #[test]
    fn wrong_magic_and_version_are_errors() {
        let mut bytes = encode_frame_vec(&ManagerMsg::Start).unwrap();
        bytes[0] = b'X';
        assert!(matches!(
            decode_frame::<ManagerMsg>(&bytes),
            Err(FrameError::BadMagic { found }) if &found == b"XCTR"
        ));
        let mut bytes = encode_frame_vec(&ManagerMsg::Start).unwrap();
        bytes[4] = 2;
        let err = decode_frame::<ManagerMsg>(&bytes).unwrap_err();
        assert!(matches!(err, FrameError::BadVersion { found: 2 }));
        assert!(err.to_string().contains("version 2"));
    }

    #[test]
    fn garbage_payloads_are_errors() {
        // Unknown enum tag.
        let bytes = [b'Z', b'C', b'T', b'R', 1, 0, 1, 0, 0, 0, 9];
        assert!(matches!(
            decode_frame::<ManagerMsg>(&bytes),
            Err(FrameError::Decode(_))
        ));
        // Payload longer than the message it holds.
        let bytes = [b'Z', b'C', b'T', b'R', 1, 0, 2, 0, 0, 0, 0, 0];
        assert!(matches!(
            decode_frame::<ManagerMsg>(&bytes),
            Err(FrameError::TrailingBytes { len: 2, extra: 1 })
        ));
        // A string length pointing past the payload.
        let bytes = [b'Z', b'C', b'T', b'R', 1, 0, 3, 0, 0, 0, 5, 0, 200];
        assert!(matches!(
            decode_frame::<ShimMsg>(&bytes),
            Err(FrameError::Decode(_))
        ));
        // Invalid UTF-8 in a string.
        let bytes = [b'Z', b'C', b'T', b'R', 1, 0, 4, 0, 0, 0, 5, 0, 1, 0xff];
        assert!(matches!(
            decode_frame::<ShimMsg>(&bytes),
            Err(FrameError::Decode(_))
        ));
    }

    #[test]
    fn frame_buffer_yields_frames_across_partial_reads() {
        let mut stream = encode_frame_vec(&ShimMsg::Created { pid: 5 }).unwrap();
        stream.extend(encode_frame_vec(&ShimMsg::Started).unwrap());
        let mut fb = FrameBuffer::new();
        let mut got = Vec::new();
        for b in &stream {
            fb.extend(std::slice::from_ref(b));
            while let Some(m) = fb.next_frame::<ShimMsg>().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, vec![ShimMsg::Created { pid: 5 }, ShimMsg::Started]);
        assert_eq!(fb.pending(), 0);
        fb.extend(b"NOPE0000000");
        assert!(fb.next_frame::<ShimMsg>().is_err());
    }

    #[test]
    fn exit_status_code_follows_shell_convention() {
        assert_eq!(ExitStatus::Code(7).code(), 7);
        assert_eq!(ExitStatus::Signal(9).code(), 137);
    }
}
