//! The container's stdout/stderr, appended to `container.log` and rotated to
//! `container.log.1` once it passes a size cap.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;

pub struct LogFile {
    path: PathBuf,
    old: PathBuf,
    file: File,
    size: u64,
    max: u64,
}

impl LogFile {
    /// (log path, rotated path, size cap), to reopen it after exec.
    pub fn parts(&self) -> (&std::path::Path, &std::path::Path, u64) {
        (&self.path, &self.old, self.max)
    }

    pub fn open(path: PathBuf, old: PathBuf, max: u64) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(LogFile {
            path,
            old,
            file,
            size,
            max: max.max(1),
        })
    }

    /// Appends `bytes`, rotating first when they would take the file past the cap.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.size > 0 && self.size + bytes.len() as u64 > self.max {
            fs::rename(&self.path, &self.old)?;
            self.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.size = 0;
        }
        self.file.write_all(bytes)?;
        self.size += bytes.len() as u64;
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
        fs::remove_dir_all(&dir).unwrap();
    }
}
