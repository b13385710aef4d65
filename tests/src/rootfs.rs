//! Building minimal root filesystems for test containers.

use crate::error::Context;
use crate::tempdir::set_mode;
use crate::{bins, Error};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

/// Applets linked to /bin/busybox by [`Rootfs::with_busybox`].
pub const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "sleep", "cat", "ls", "echo", "true", "false", "id", "ps", "kill", "mkdir", "touch",
    "env", "hostname", "mount", "head", "wc", "seq", "yes", "dd",
];

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
    user:x:1000:1000:user:/home/user:/bin/sh\n\
    nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n";

/// Where a host busybox is: /bin/busybox, else the first `busybox` on `$PATH`.
pub fn busybox_path() -> Option<PathBuf> {
    let fixed = PathBuf::from("/bin/busybox");
    if fixed.is_file() {
        return Some(fixed);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("busybox"))
        .find(|p| p.is_file())
}

/// A minimal root filesystem on the host, owned by root.
///
/// Layout: `bin sbin dev proc sys tmp(1777) etc root(0700) var run home/user(1000:1000)`,
/// `/etc/passwd` and `/etc/group` with root (0), user (1000) and nobody (65534),
/// `/etc/hostname`, and the static probe at `/bin/zctr-probe` (0755).
/// The directory itself is not removed on drop: put it inside a [`crate::TempDir`].
#[derive(Debug, Clone)]
pub struct Rootfs {
    path: PathBuf,
}

impl Rootfs {
    /// Build at `path` (created if missing) with the probe from [`bins::probe`]
    /// (which panics if it has not been built).
    pub fn new(path: impl AsRef<Path>) -> Result<Rootfs, Error> {
        Rootfs::with_probe(path, &bins::probe())
    }

    /// Build at `path` with the probe binary taken from `probe`.
    pub fn with_probe(path: impl AsRef<Path>, probe: &Path) -> Result<Rootfs, Error> {
        let rootfs = Rootfs {
            path: path.as_ref().to_path_buf(),
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&rootfs.path)
            .ctx(|| format!("mkdir {}", rootfs.path.display()))?;
        set_mode(&rootfs.path, 0o755)?;
        for dir in [
            "bin", "sbin", "dev", "proc", "sys", "etc", "var", "run", "home",
        ] {
            rootfs.mkdir(dir, 0o755)?;
        }
        rootfs.mkdir("tmp", 0o1777)?;
        rootfs.mkdir("root", 0o700)?;
        let home = rootfs.mkdir("home/user", 0o755)?;
        std::os::unix::fs::chown(&home, Some(1000), Some(1000))
            .ctx(|| format!("chown {}", home.display()))?;
        rootfs.write_file("etc/passwd", PASSWD, 0o644)?;
        rootfs.write_file("etc/group", GROUP, 0o644)?;
        rootfs.write_file("etc/hostname", "zctr-test\n", 0o644)?;
        rootfs.install_binary(probe, "bin/zctr-probe")?;
        Ok(rootfs)
    }

    /// The rootfs directory on the host.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `/bin/zctr-probe` as seen from inside the container.
    pub fn probe_in_container(&self) -> &'static str {
        "/bin/zctr-probe"
    }

    /// Host path of `rel` (leading `/` allowed) inside the rootfs. Refuses `..`.
    /// Does not check for symlinks; the writing helpers below do.
    pub fn host_path(&self, rel: impl AsRef<Path>) -> Result<PathBuf, Error> {
        let rel = rel.as_ref();
        let mut out = self.path.clone();
        for c in rel.components() {
            match c {
                Component::RootDir | Component::CurDir => {}
                Component::Normal(n) => out.push(n),
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(Error::UnsafePath {
                        path: rel.to_path_buf(),
                        reason: "contains ..",
                    })
                }
            }
        }
        if out == self.path {
            return Err(Error::UnsafePath {
                path: rel.to_path_buf(),
                reason: "names the rootfs itself",
            });
        }
        Ok(out)
    }

    /// Host path of `rel`, after checking that no existing component of it
    /// (below the rootfs) is a symlink, so writes cannot escape onto the host.
    fn safe_path(&self, rel: impl AsRef<Path>) -> Result<PathBuf, Error> {
        let full = self.host_path(&rel)?;
        let mut cur = self.path.clone();
        for c in full.strip_prefix(&self.path).unwrap_or(&full).components() {
            cur.push(c);
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(Error::UnsafePath {
                        path: rel.as_ref().to_path_buf(),
                        reason: "crosses a symlink inside the rootfs",
                    })
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        Ok(full)
    }

    /// Create directory `rel` (and missing parents, 0755) with `mode`.
    pub fn mkdir(&self, rel: impl AsRef<Path>, mode: u32) -> Result<PathBuf, Error> {
        let p = self.safe_path(rel)?;
        mkdir_all(&p)?;
        set_mode(&p, mode)?;
        Ok(p)
    }

    /// Write (create or truncate) file `rel` with `contents` and `mode`, creating
    /// parent directories. Refuses to follow symlinks anywhere in `rel`.
    pub fn write_file(
        &self,
        rel: impl AsRef<Path>,
        contents: impl AsRef<[u8]>,
        mode: u32,
    ) -> Result<PathBuf, Error> {
        let p = self.safe_path(rel)?;
        if let Some(parent) = p.parent() {
            mkdir_all(parent)?;
        }
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&p)
            .ctx(|| format!("create {}", p.display()))?;
        f.write_all(contents.as_ref())
            .ctx(|| format!("write {}", p.display()))?;
        set_mode(&p, mode)?;
        Ok(p)
    }

    /// Create symlink `link` (inside the rootfs) pointing at `target`, verbatim:
    /// `target` may be absolute, relative, dangling or hostile (`../../etc`).
    pub fn symlink(
        &self,
        link: impl AsRef<Path>,
        target: impl AsRef<Path>,
    ) -> Result<PathBuf, Error> {
        let p = self.safe_path(link)?;
        if let Some(parent) = p.parent() {
            mkdir_all(parent)?;
        }
        std::os::unix::fs::symlink(target.as_ref(), &p)
            .ctx(|| format!("symlink {} -> {}", p.display(), target.as_ref().display()))?;
        Ok(p)
    }

    /// Copy a host binary to `rel` with mode 0755.
    pub fn install_binary(&self, host: &Path, rel: impl AsRef<Path>) -> Result<PathBuf, Error> {
        let p = self.safe_path(rel)?;
        fs::copy(host, &p).ctx(|| format!("copy {} to {}", host.display(), p.display()))?;
        set_mode(&p, 0o755)?;
        Ok(p)
    }

    /// Install the host's static busybox as /bin/busybox with [`BUSYBOX_APPLETS`]
    /// symlinked to it. [`Error::BusyboxUnavailable`] if there is none, or if it is
    /// dynamically linked (it would not run inside the rootfs): tests can skip on that.
    pub fn with_busybox(&self) -> Result<(), Error> {
        let host = busybox_path()
            .ok_or_else(|| Error::BusyboxUnavailable("not found in /bin or $PATH".into()))?;
        match bins::is_static_elf(&host) {
            Ok(true) => {}
            Ok(false) => {
                return Err(Error::BusyboxUnavailable(format!(
                    "{} is not a static ELF binary (install busybox-static)",
                    host.display()
                )))
            }
            Err(e) => {
                return Err(Error::BusyboxUnavailable(format!(
                    "{}: {e}",
                    host.display()
                )))
            }
        }
        self.install_binary(&host, "bin/busybox")?;
        for applet in BUSYBOX_APPLETS {
            let link = self.host_path(Path::new("bin").join(applet))?;
            if fs::symlink_metadata(&link).is_ok() {
                continue;
            }
            self.symlink(Path::new("bin").join(applet), "busybox")?;
        }
        Ok(())
    }
}

/// `mkdir -p` with mode 0755 for the directories it creates.
fn mkdir_all(p: &Path) -> Result<(), Error> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(p)
        .ctx(|| format!("mkdir {}", p.display()))
}
