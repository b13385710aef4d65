//! Reading a container's log files in order across rotations, and knowing
//! when a rotated file was lost before it was read.
//!
//! The shim appends to `container.log` and, past its size cap, renames it to
//! `container.log.1` (replacing the previous one) and creates a new
//! `container.log`. A reader that holds a file open keeps its content even
//! after it is replaced, so following is lossless as long as every new
//! generation is *opened* before the one after it is created (the window is
//! the time the shim takes to write one whole file): reading may lag far
//! behind. A watch on the state directory ([`Events`], the daemon's inotify
//! in `crate::api::logwatch`) wakes the follower on every change and counts
//! the creations of `container.log`, so the follower knows how many
//! generations came since the last one it holds and can say exactly how many
//! it missed. Without a watch (no inotify) it polls, and a miss is still
//! detected, without a count.
//!
//! Everything here is blocking file I/O: the daemon runs it on the blocking
//! pool.
//!
//! Opening the newest two files is made consistent: `container.log` is opened,
//! then `container.log.1`, then `container.log` is looked at again, and the
//! creations seen meanwhile are drained; the whole is repeated until nothing
//! moved, so `.1` is known to be the direct predecessor of the newest file.
//!
//! What the follower reads is a queue of open generations and gap markers.
//! At most [`MAX_HELD`] generations are held (each pins a file of up to the
//! shim's cap on the state disk); when the reader is slower than that, the
//! oldest are dropped and reported as a gap.

use common::layout::{LOG_FILE, LOG_FILE_OLD};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Most generations a follower holds open before it drops the oldest.
pub const MAX_HELD: usize = 8;

/// How many times [`LogTail::snapshot`] looks again before it settles for
/// what it has (only a shim rotating faster than three syscalls keeps it busy).
const SNAPSHOT_TRIES: usize = 100;

/// One generation of the log, held open.
struct Gen {
    file: File,
    id: (u64, u64),
}

impl Gen {
    fn open(path: &Path) -> io::Result<Option<Gen>> {
        match File::open(path) {
            Ok(file) => {
                let m = file.metadata()?;
                if !m.is_file() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: not a regular file", path.display()),
                    ));
                }
                Ok(Some(Gen {
                    id: (m.dev(), m.ino()),
                    file,
                }))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

enum Item {
    File(Gen),
    /// Generations lost here: how many, when known.
    Gap(Option<u64>),
}

/// What [`LogTail::read`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk {
    /// This many bytes were read into the buffer.
    Data(usize),
    /// Output was lost here: this many rotated files (when known) were gone
    /// before they could be read.
    Gap(Option<u64>),
    /// Nothing to read now.
    Idle,
}

/// Creation events of `container.log` seen on the watch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub created: u64,
    /// The event queue overflowed: the count is a lower bound.
    pub overflow: bool,
}

/// A watch on a log directory.
pub trait Events {
    /// The creations of `container.log` since the last call, counting every
    /// one that happened before this call.
    fn take(&mut self) -> Seen;
}

impl Seen {
    fn any(&self) -> bool {
        self.created > 0 || self.overflow
    }

    fn add(&mut self, other: Seen) {
        self.created += other.created;
        self.overflow |= other.overflow;
    }
}

/// The log of one container, read in order.
pub struct LogTail {
    path: PathBuf,
    old: PathBuf,
    /// Whether the caller has a watch on the directory (and passes it to
    /// every call); without one, changes are found by looking.
    watched: bool,
    queue: VecDeque<Item>,
    /// Identity of the newest generation queued (it stays open in the queue
    /// until a newer one is queued, so its inode cannot be reused meanwhile).
    newest: Option<(u64, u64)>,
}

impl LogTail {
    /// The log files in `dir`, from the start of the older one. Later
    /// generations are picked up by [`LogTail::refresh`]; `watch` (made
    /// before this call) must be passed to every later call.
    pub fn open(dir: &Path, watch: Option<&mut dyn Events>) -> io::Result<LogTail> {
        let mut t = LogTail {
            path: dir.join(LOG_FILE),
            old: dir.join(LOG_FILE_OLD),
            watched: watch.is_some(),
            queue: VecDeque::new(),
            newest: None,
        };
        let mut watch = watch;
        let (_, newest, previous) = t.snapshot(&mut watch, Seen::default())?;
        for g in [previous, newest].into_iter().flatten() {
            t.push(g);
        }
        Ok(t)
    }

    fn push(&mut self, g: Gen) {
        if self.newest == Some(g.id) {
            return;
        }
        self.newest = Some(g.id);
        self.queue.push_back(Item::File(g));
        let held = self
            .queue
            .iter()
            .filter(|i| matches!(i, Item::File(_)))
            .count();
        if held > MAX_HELD {
            // Too far behind: give up the oldest generation (and the rest of
            // what was read of it), and say so where it was.
            let mut lost = 0;
            let mut unknown = false;
            while let Some(item) = self.queue.pop_front() {
                match item {
                    Item::Gap(n) => match n {
                        Some(n) => lost += n,
                        None => unknown = true,
                    },
                    Item::File(_) => {
                        lost += 1;
                        break;
                    }
                }
            }
            self.queue
                .push_front(Item::Gap(if unknown { None } else { Some(lost) }));
        }
    }

    fn gap(&mut self, n: Option<u64>) {
        if n != Some(0) {
            self.queue.push_back(Item::Gap(n));
        }
    }

    /// Drains the watch: creations of `container.log` since the last drain.
    fn drain(watch: &mut Option<&mut dyn Events>) -> Seen {
        watch.as_mut().map(|w| w.take()).unwrap_or_default()
    }

    /// Opens the newest generation and its predecessor with no rotation in
    /// between, and drains the creations seen meanwhile (added to `seen`).
    fn snapshot(
        &self,
        watch: &mut Option<&mut dyn Events>,
        mut seen: Seen,
    ) -> io::Result<(Seen, Option<Gen>, Option<Gen>)> {
        let mut tries = 0;
        loop {
            tries += 1;
            let newest = Gen::open(&self.path)?;
            let previous = Gen::open(&self.old)?;
            let again = file_id(&self.path);
            let more = Self::drain(watch);
            seen.add(more);
            let settled = newest.as_ref().map(|g| g.id) == again && !more.any();
            if settled || tries >= SNAPSHOT_TRIES {
                return Ok((seen, newest, previous));
            }
        }
    }

    /// Picks up generations created since the last call; queues a gap for
    /// any that were gone before they could be opened.
    pub fn refresh(&mut self, watch: Option<&mut dyn Events>) -> io::Result<()> {
        let mut watch = watch.filter(|_| self.watched);
        let seen = Self::drain(&mut watch);
        if watch.is_some() && !seen.any() {
            return Ok(());
        }
        let (seen, newest, previous) = self.snapshot(&mut watch, seen)?;
        if watch.is_none() {
            // Polling: no count. Something new unless the newest is ours.
            if newest.as_ref().map(|g| g.id) != self.newest && newest.is_some() {
                self.settle_unknown(newest, previous);
            }
            return Ok(());
        }
        if seen.overflow {
            self.settle_unknown(newest, previous);
            return Ok(());
        }
        // `seen.created` generations came after the newest one held; the
        // newest file is the last of them, `.1` the one before.
        let n = seen.created;
        match (newest, previous) {
            (Some(x), p) => {
                if n >= 2 {
                    match p {
                        Some(p) => {
                            self.gap(Some(n - 2));
                            self.push(p);
                        }
                        None => self.gap(Some(n - 1)),
                    }
                }
                self.push(x);
            }
            // Renamed away, its successor not created yet: `.1` is the last.
            (None, Some(p)) => {
                self.gap(Some(n - 1));
                self.push(p);
            }
            (None, None) => self.gap(Some(n)),
        }
        Ok(())
    }

    /// New generations came, how many is not known: a gap unless `.1` is
    /// the newest one held.
    fn settle_unknown(&mut self, newest: Option<Gen>, previous: Option<Gen>) {
        let held = self.newest;
        if newest.as_ref().map(|g| g.id) == held {
            return;
        }
        match previous {
            Some(p) if Some(p.id) == held => {}
            Some(p) => {
                self.gap(None);
                self.push(p);
            }
            None => self.gap(None),
        }
        if let Some(x) = newest {
            self.push(x);
        }
    }

    /// Reads the next bytes in order into `buf`. A generation is left once a
    /// newer one is queued and it is read to its end.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<Chunk> {
        loop {
            let more_queued = self.queue.len() > 1;
            match self.queue.front_mut() {
                None => return Ok(Chunk::Idle),
                Some(Item::Gap(n)) => {
                    let n = *n;
                    self.queue.pop_front();
                    return Ok(Chunk::Gap(n));
                }
                Some(Item::File(g)) => {
                    let n = loop {
                        match g.file.read(buf) {
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            other => break other?,
                        }
                    };
                    if n > 0 {
                        return Ok(Chunk::Data(n));
                    }
                    if !more_queued {
                        return Ok(Chunk::Idle);
                    }
                    self.queue.pop_front();
                }
            }
        }
    }
}

/// The line that stands in a followed log where output was lost.
pub fn gap_marker(n: Option<u64>) -> String {
    match n {
        Some(n) => format!(
            "--- zctr: output lost: {n} rotated log file(s) were removed before they were read ---\n"
        ),
        None => "--- zctr: output lost: rotated log files were removed before they were read ---\n"
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Write;

    /// A stand-in for the shim: appends, rotates like `shim/src/logfile.rs`.
    struct Writer {
        dir: PathBuf,
        file: File,
    }

    impl Writer {
        fn new(dir: &Path) -> Writer {
            Writer {
                dir: dir.to_path_buf(),
                file: fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join(LOG_FILE))
                    .unwrap(),
            }
        }
        fn write(&mut self, s: &str) {
            self.file.write_all(s.as_bytes()).unwrap();
        }
        fn rotate(&mut self) {
            fs::rename(self.dir.join(LOG_FILE), self.dir.join(LOG_FILE_OLD)).unwrap();
            *self = Writer::new(&self.dir);
        }
    }

    fn read_all(t: &mut LogTail, w: Option<&mut dyn Events>) -> (String, Vec<Option<u64>>) {
        let mut out = Vec::new();
        let mut gaps = Vec::new();
        let mut buf = [0u8; 7];
        t.refresh(w).unwrap();
        loop {
            match t.read(&mut buf).unwrap() {
                Chunk::Data(n) => out.extend_from_slice(&buf[..n]),
                Chunk::Gap(n) => {
                    gaps.push(n);
                    out.extend_from_slice(b"|GAP|");
                }
                Chunk::Idle => break,
            }
        }
        (String::from_utf8(out).unwrap(), gaps)
    }

    /// A watch of `d` on a watcher of its own (the daemon has one for all).
    fn watch(d: &Path) -> (crate::api::logwatch::Cursor, crate::api::logwatch::Wake) {
        let w = crate::api::logwatch::Watcher::start();
        w.follow(d).expect("inotify")
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("zctr-logtail-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[tokio::test]
    async fn follows_every_rotation_it_is_woken_for() {
        let d = scratch("keep");
        let mut log = Writer::new(&d);
        log.write("a1\n");
        log.rotate();
        log.write("b1\n");
        let (mut w, _wake) = watch(&d);
        let mut t = LogTail::open(&d, Some(&mut w)).unwrap();
        assert_eq!(read_all(&mut t, Some(&mut w)), ("a1\nb1\n".into(), vec![]));
        // Two rotations before the next look: the one in between is still `.1`.
        log.write("b2\n");
        log.rotate();
        log.write("c1\n");
        log.rotate();
        log.write("d1\n");
        assert_eq!(
            read_all(&mut t, Some(&mut w)),
            ("b2\nc1\nd1\n".into(), vec![])
        );
        // One at a time, each opened before the next rotation: the reader may
        // lag by up to MAX_HELD files.
        for i in 0..MAX_HELD - 1 {
            log.write(&format!("e{i}\n"));
            log.rotate();
            t.refresh(Some(&mut w)).unwrap();
        }
        let (text, gaps) = read_all(&mut t, Some(&mut w));
        assert!(gaps.is_empty(), "{gaps:?}");
        let want: String = (0..MAX_HELD - 1).map(|i| format!("e{i}\n")).collect();
        assert_eq!(text, want);
        fs::remove_dir_all(&d).unwrap();
    }

    #[tokio::test]
    async fn says_how_many_files_it_missed() {
        let d = scratch("miss");
        let mut log = Writer::new(&d);
        log.write("a\n");
        let (mut w, _wake) = watch(&d);
        let mut t = LogTail::open(&d, Some(&mut w)).unwrap();
        for g in ["b", "c", "d", "e"] {
            log.rotate();
            log.write(&format!("{g}\n"));
        }
        // b and c are gone, d is `.1`, e is current.
        assert_eq!(
            read_all(&mut t, Some(&mut w)),
            ("a\n|GAP|d\ne\n".into(), vec![Some(2)])
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[tokio::test]
    async fn a_slow_reader_holds_at_most_max_held_files() {
        let d = scratch("slow");
        let mut log = Writer::new(&d);
        log.write("0\n");
        let (mut w, _wake) = watch(&d);
        let mut t = LogTail::open(&d, Some(&mut w)).unwrap();
        for i in 1..=(MAX_HELD + 2) {
            log.rotate();
            log.write(&format!("{i}\n"));
            t.refresh(Some(&mut w)).unwrap();
        }
        let (text, gaps) = read_all(&mut t, Some(&mut w));
        assert_eq!(gaps, vec![Some(3)]);
        let want: String = (3..=(MAX_HELD + 2)).map(|i| format!("{i}\n")).collect();
        assert_eq!(text, format!("|GAP|{want}"));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn without_a_watch_a_miss_is_still_seen() {
        let d = scratch("poll");
        let mut log = Writer::new(&d);
        log.write("a\n");
        let mut t = LogTail::open(&d, None).unwrap();
        assert_eq!(read_all(&mut t, None), ("a\n".into(), vec![]));
        log.rotate();
        log.write("b\n");
        assert_eq!(read_all(&mut t, None), ("b\n".into(), vec![]));
        for g in ["c", "d", "e"] {
            log.rotate();
            log.write(&format!("{g}\n"));
        }
        assert_eq!(read_all(&mut t, None), ("|GAP|d\ne\n".into(), vec![None]));
        fs::remove_dir_all(&d).unwrap();
    }
}
