//! The plan on a real cgroup: each write resolved to the first of its files
//! that exists (a missing one refuses its field), then written in order. A
//! new cgroup is simply removed when a write fails; a live update reads every
//! value it replaces first and writes them back, last first, when one fails.

use super::{Plan, Restore, Target, UsageCheck};
use crate::CgroupError;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Where one cgroup's directories are: per v1 controller, and on cgroup2.
#[derive(Debug, Default)]
pub struct Dirs {
    pub v1: Vec<(String, PathBuf)>,
    pub v2: Option<PathBuf>,
}

impl Dirs {
    fn of(&self, target: &Target) -> Option<&Path> {
        match target {
            Target::V1(c) => self
                .v1
                .iter()
                .find(|(n, _)| n == c)
                .map(|(_, d)| d.as_path()),
            Target::V2 => self.v2.as_deref(),
        }
    }
}

/// One write, resolved to its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub field: String,
    pub path: PathBuf,
    pub value: String,
    pub restore: Restore,
}

fn is_file(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.is_file())
}

/// The plan's writes on the files of `dirs`; every field whose files do not
/// exist is refused (all of them together). `release` names the kernel.
pub fn resolve(plan: &Plan, dirs: &Dirs, release: &str) -> Result<Vec<Resolved>, CgroupError> {
    let mut out = Vec::new();
    let mut refused = Vec::new();
    for w in &plan.writes {
        let Some(dir) = dirs.of(&w.target) else {
            refused.push(CgroupError::Refused {
                field: w.field.clone(),
                reason: format!("no cgroup directory for {:?}", w.target),
            });
            continue;
        };
        match w.choices.iter().find(|(f, _)| is_file(&dir.join(f))) {
            Some((f, v)) => out.push(Resolved {
                field: w.field.clone(),
                path: dir.join(f),
                value: v.clone(),
                restore: w.restore.clone(),
            }),
            None => {
                let names: Vec<&str> = w.choices.iter().map(|(f, _)| f.as_str()).collect();
                refused.push(CgroupError::Refused {
                    field: w.field.clone(),
                    reason: format!(
                        "{} does not exist in {} on this kernel ({release})",
                        names.join(" or "),
                        dir.display()
                    ),
                });
            }
        }
    }
    crate::all_ok("linux.resources refused", refused)?;
    order_memsw(&mut out);
    Ok(out)
}

/// v1 memory and memory+swap limits: memory+swap must stay at or above the
/// memory limit after every write, so it goes first when it grows past the
/// current limit or becomes unlimited (runc's rule), else last.
fn order_memsw(writes: &mut [Resolved]) {
    let name = |r: &Resolved, n: &str| r.path.file_name().is_some_and(|f| f == n);
    let limit = writes.iter().position(|r| name(r, "memory.limit_in_bytes"));
    let memsw = writes
        .iter()
        .position(|r| name(r, "memory.memsw.limit_in_bytes"));
    let (Some(l), Some(s)) = (limit, memsw) else {
        return;
    };
    let current: Option<u64> = fs::read_to_string(&writes[l].path)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let first = memsw_first(&writes[s].value, current);
    if first != (s < l) {
        writes.swap(l, s);
    }
}

/// Whether the memory+swap limit `new_memsw` is written before the memory
/// limit, given the current memory limit.
pub fn memsw_first(new_memsw: &str, current_limit: Option<u64>) -> bool {
    match new_memsw.parse::<i64>() {
        Ok(-1) => true,
        Ok(v) if v > 0 => current_limit.is_some_and(|c| c < v as u64),
        _ => false,
    }
}

/// Writes `value` to an existing cgroup file (never creates one).
fn write(r: &Resolved, value: &str) -> Result<(), CgroupError> {
    fs::OpenOptions::new()
        .write(true)
        .open(&r.path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|source| CgroupError::Write {
            field: r.field.clone(),
            path: r.path.clone(),
            value: value.to_string(),
            source,
        })
}

/// Writes every value in order (a new cgroup: the caller removes it on error).
pub fn write_all(writes: &[Resolved]) -> Result<(), CgroupError> {
    writes.iter().try_for_each(|r| write(r, &r.value))
}

/// The value that `restore` would write back, from the file's text.
pub fn restore_value(restore: &Restore, text: &str) -> String {
    match restore {
        Restore::Whole => text.trim().to_string(),
        Restore::Field(key) => text
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == *key).then(|| v.trim().to_string())
            })
            .unwrap_or_else(|| text.trim().to_string()),
        Restore::Line { key, reset } => text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(key.as_str()))
            .map(|l| l.trim().to_string())
            .unwrap_or_else(|| reset.clone()),
    }
}

fn read_old(r: &Resolved) -> Result<String, CgroupError> {
    fs::read_to_string(&r.path)
        .map(|t| restore_value(&r.restore, &t))
        .map_err(|source| CgroupError::Io {
            path: r.path.clone(),
            source,
        })
}

/// `checkBeforeUpdate`: refuses a memory limit below what the cgroup uses.
fn check_usage(check: &UsageCheck, dirs: &Dirs) -> Result<(), CgroupError> {
    let Some(dir) = dirs.of(&check.target) else {
        return Ok(());
    };
    let path = dir.join(&check.file);
    let text = fs::read_to_string(&path).map_err(|source| CgroupError::Io {
        path: path.clone(),
        source,
    })?;
    let usage: u64 = text.trim().parse().unwrap_or(0);
    if usage > check.limit {
        return Err(CgroupError::Refused {
            field: "linux.resources.memory.limit".into(),
            reason: format!(
                "checkBeforeUpdate: the cgroup uses {usage} bytes ({}), more than the new limit {}",
                check.file, check.limit
            ),
        });
    }
    Ok(())
}

/// A live update: the usage check, every old value read, then the writes;
/// when one fails, the ones before it get their old values back, last first.
pub fn update(plan: &Plan, dirs: &Dirs, release: &str) -> Result<(), CgroupError> {
    let writes = resolve(plan, dirs, release)?;
    if let Some(c) = &plan.usage_check {
        check_usage(c, dirs)?;
    }
    let olds = writes.iter().map(read_old).collect::<Result<Vec<_>, _>>()?;
    for (i, r) in writes.iter().enumerate() {
        if let Err(e) = write(r, &r.value) {
            let restore_errors: Vec<CgroupError> = writes[..i]
                .iter()
                .zip(&olds)
                .rev()
                .filter_map(|(w, old)| write(w, old).err())
                .collect();
            return Err(CgroupError::UpdateFailed {
                error: Box::new(e),
                restore_errors,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_hosts::v2;
    use super::super::{plan, Restore};
    use super::*;
    use oci_spec::runtime::{LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder};

    #[test]
    fn restore_values_come_from_the_files_text() {
        assert_eq!(restore_value(&Restore::Whole, "max\n"), "max");
        let oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(restore_value(&Restore::Field("oom_kill_disable"), oom), "0");
        assert_eq!(
            restore_value(&Restore::Field("default"), "default 100\n8:0 200\n"),
            "100"
        );
        assert_eq!(restore_value(&Restore::Field("default"), "100\n"), "100");
        let line = Restore::Line {
            key: "8:0".into(),
            reset: "8:0 0".into(),
        };
        assert_eq!(restore_value(&line, "8:16 5\n8:0 1048576\n"), "8:0 1048576");
        assert_eq!(restore_value(&line, "8:16 5\n"), "8:0 0");
    }

    #[test]
    fn memory_plus_swap_goes_first_only_when_it_grows_past_the_limit() {
        assert!(memsw_first("-1", Some(1 << 20)));
        assert!(memsw_first("4096", Some(1024)));
        assert!(!memsw_first("1024", Some(4096)));
        // A new cgroup: unlimited (a huge number) memory, memory+swap after it.
        assert!(!memsw_first("1024", Some(9_223_372_036_854_771_712)));
        assert!(!memsw_first("1024", None));
    }

    /// A cgroup2 directory imitated in a temporary directory: the update
    /// writes files that exist, and refuses one that does not or a limit
    /// below the usage before it writes anything.
    #[test]
    fn updates_are_all_or_none() {
        let t = zctr_tests::TempDir::new("cg-update").unwrap();
        let dir = t.path();
        fs::write(dir.join("memory.max"), "max\n").unwrap();
        fs::write(dir.join("memory.current"), "4096\n").unwrap();
        let dirs = Dirs {
            v1: Vec::new(),
            v2: Some(dir.to_path_buf()),
        };
        let res = |limit: i64, pids: Option<i64>| {
            let mut b = LinuxResourcesBuilder::default().memory(
                LinuxMemoryBuilder::default()
                    .limit(limit)
                    .check_before_update(true)
                    .build()
                    .unwrap(),
            );
            if let Some(p) = pids {
                b = b.pids(LinuxPidsBuilder::default().limit(p).build().unwrap());
            }
            plan(&b.build().unwrap(), &v2()).unwrap()
        };
        update(&res(1 << 20, None), &dirs, "6.18").unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("memory.max")).unwrap(),
            "1048576"
        );
        // No pids.max: refused before anything is written.
        let e = update(&res(2 << 20, Some(5)), &dirs, "6.18").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("linux.resources.pids.limit: pids.max does not exist in"),
            "{e}"
        );
        assert_eq!(
            fs::read_to_string(dir.join("memory.max")).unwrap(),
            "1048576"
        );
        // Below the usage with checkBeforeUpdate.
        let e = update(&res(1024, None), &dirs, "6.18").unwrap_err();
        assert!(e.to_string().contains("checkBeforeUpdate"), "{e}");
        // A write the kernel refuses midway: kernel_tests (a real cgroup).
    }
}
