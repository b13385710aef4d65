//! The container's stdout/stderr, appended to `container.log` and rotated to
//! `container.log.1` once it passes a size cap.
//!
//! A write that fails (a full disk, an I/O error) loses those bytes and
//! nothing else: the next write tries again, and a rotation cut short after
//! its rename (no room for the new file) is finished by the next write.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;

pub struct LogFile {
    path: PathBuf,
    old: PathBuf,
    /// `None` after a rotation whose new file could not be created yet.
    file: Option<File>,
    size: u64,
    max: u64,
}

fn open_append(path: &std::path::Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl LogFile {
    /// (log path, rotated path, size cap), to reopen it after exec.
    pub fn parts(&self) -> (&std::path::Path, &std::path::Path, u64) {
        (&self.path, &self.old, self.max)
    }

    pub fn open(path: PathBuf, old: PathBuf, max: u64) -> io::Result<Self> {
        let file = open_append(&path)?;
        let size = file.metadata()?.len();
        Ok(LogFile {
            path,
            old,
            file: Some(file),
            size,
            max: max.max(1),
        })
    }

    /// Moves the full file to the rotated name and starts a new one.
    fn rotate(&mut self) -> io::Result<()> {
        if self.file.is_some() {
            match fs::rename(&self.path, &self.old) {
                Ok(()) => {}
                // Removed behind our back: start a new one all the same.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            self.file = None;
            self.size = 0;
        }
        self.file = Some(open_append(&self.path)?);
        Ok(())
    }

    /// Appends `bytes`, rotating first when they would take the file past the
    /// cap. On error, what was not written is lost (the file stays usable).
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.file.is_none() || (self.size > 0 && self.size + bytes.len() as u64 > self.max) {
            self.rotate()?;
        }
        let Some(file) = self.file.as_mut() else {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        };
        let mut rest = bytes;
        while !rest.is_empty() {
            match file.write(rest) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => {
                    self.size += n as u64;
                    rest = &rest[n..];
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_past_the_cap() {
        let dir = std::env::temp_dir().join(format!("zctr-log-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let (p, o) = (dir.join("c.log"), dir.join("c.log.1"));
        let mut log = LogFile::open(p.clone(), o.clone(), 10).unwrap();
        log.write(b"12345").unwrap();
        log.write(b"6789").unwrap();
        log.write(b"abc").unwrap();
        assert_eq!(fs::read(&o).unwrap(), b"123456789");
        assert_eq!(fs::read(&p).unwrap(), b"abc");
        // Reopening continues where the file stands.
        let mut log = LogFile::open(p.clone(), o.clone(), 10).unwrap();
        log.write(b"defghijk").unwrap();
        assert_eq!(fs::read(&o).unwrap(), b"abc");
        assert_eq!(fs::read(&p).unwrap(), b"defghijk");
        // The log removed from under it: the next rotation starts a new one.
        fs::remove_file(&p).unwrap();
        log.write(b"lmnop").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"lmnop");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_rotation_is_finished_by_the_next_write() {
        let dir = std::env::temp_dir().join(format!("zctr-log-unit2-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let (p, o) = (dir.join("c.log"), dir.join("c.log.1"));
        let mut log = LogFile::open(p.clone(), o.clone(), 10).unwrap();
        log.write(b"123456789").unwrap();
        log.write(b"abc").unwrap();
        // As after a rename whose new file could not be created: the path is
        // blocked (a directory in the way), writes fail and are lost.
        log.file = None;
        fs::remove_file(&p).unwrap();
        fs::create_dir(&p).unwrap();
        assert!(log.write(b"lost").is_err());
        assert!(log.write(b"lost").is_err());
        fs::remove_dir(&p).unwrap();
        log.write(b"back").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"back");
        fs::remove_dir_all(&dir).unwrap();
    }
}
