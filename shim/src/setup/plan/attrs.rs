//! Process attributes applied in the child just before exec (and the
//! `process` fields that have no Linux meaning): `process.user.umask`,
//! `linux.personality`, `process.scheduler`, `process.ioPriority`,
//! `process.execCPUAffinity`, `process.terminal`/`consoleSize`,
//! `process.commandLine`, `process.user.username`.

use super::{err, PlanError};
use crate::setup::sys::SchedAttr;
use oci_spec::runtime::{
    IOPriorityClass, LinuxPersonality, LinuxPersonalityDomain, LinuxSchedulerFlag,
    LinuxSchedulerPolicy, Process,
};

/// The default umask, as runc's.
pub const DEFAULT_UMASK: u32 = 0o022;

/// CPUs a `process.execCPUAffinity` mask covers.
pub const MAX_CPUS: usize = 1024;

/// Attributes of the process set before exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attrs {
    pub umask: u32,
    /// personality(2) persona.
    pub personality: Option<u64>,
    pub scheduler: Option<SchedAttr>,
    /// ioprio_set value (class << 13 | level).
    pub io_priority: Option<i32>,
    /// Set when setup starts (`initial`) and just before exec (`final`).
    pub affinity_initial: Option<[u64; 16]>,
    pub affinity_final: Option<[u64; 16]>,
    /// `process.terminal`: the front end decides (zctr-shim refuses it).
    pub terminal: bool,
    /// `process.consoleSize` (rows, columns), only with a terminal.
    pub console_size: Option<(u16, u16)>,
}

pub fn plan(process: &Process, personality: Option<&LinuxPersonality>) -> Result<Attrs, PlanError> {
    if process.command_line().is_some() {
        return Err(err(
            "process.commandLine",
            "is for Windows; on Linux the command is process.args",
        ));
    }
    if process.user().username().is_some() {
        return Err(err(
            "process.user.username",
            "is for Windows; on Linux the user is process.user.uid/gid",
        ));
    }
    let umask = process.user().umask().unwrap_or(DEFAULT_UMASK);
    if umask > 0o777 {
        return Err(err(
            "process.user.umask",
            format!("{umask:#o} has bits beyond 0777"),
        ));
    }
    let terminal = process.terminal().unwrap_or(false);
    let console_size = match process.console_size() {
        None => None,
        Some(_) if !terminal => {
            return Err(err(
                "process.consoleSize",
                "is set but process.terminal is not true (there is no terminal to size)",
            ))
        }
        Some(b) => Some((
            u16::try_from(b.height())
                .map_err(|_| err("process.consoleSize.height", "larger than 65535"))?,
            u16::try_from(b.width())
                .map_err(|_| err("process.consoleSize.width", "larger than 65535"))?,
        )),
    };
    let (affinity_initial, affinity_final) = match process.exec_cpu_affinity() {
        None => (None, None),
        Some(a) => (
            a.initial()
                .as_deref()
                .map(|s| cpu_mask("process.execCPUAffinity.initial", s))
                .transpose()?,
            a.cpu_affinity_final()
                .as_deref()
                .map(|s| cpu_mask("process.execCPUAffinity.final", s))
                .transpose()?,
        ),
    };
    Ok(Attrs {
        umask,
        personality: personality.map(persona).transpose()?,
        scheduler: process.scheduler().as_ref().map(scheduler).transpose()?,
        io_priority: process
            .io_priority()
            .as_ref()
            .map(|p| io_priority(p.class(), p.priority()))
            .transpose()?,
        affinity_initial,
        affinity_final,
        terminal,
        console_size,
    })
}

fn persona(p: &LinuxPersonality) -> Result<u64, PlanError> {
    if let Some(f) = p.flags().as_ref().filter(|f| !f.is_empty()) {
        return Err(err(
            "linux.personality.flags",
            format!("{f:?}: no personality flag is supported"),
        ));
    }
    Ok(match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    })
}

fn scheduler(s: &oci_spec::runtime::Scheduler) -> Result<SchedAttr, PlanError> {
    let policy = match s.policy() {
        LinuxSchedulerPolicy::SchedOther => libc::SCHED_OTHER,
        LinuxSchedulerPolicy::SchedFifo => libc::SCHED_FIFO,
        LinuxSchedulerPolicy::SchedRr => libc::SCHED_RR,
        LinuxSchedulerPolicy::SchedBatch => libc::SCHED_BATCH,
        LinuxSchedulerPolicy::SchedIdle => libc::SCHED_IDLE,
        LinuxSchedulerPolicy::SchedDeadline => 6,
        LinuxSchedulerPolicy::SchedIso => {
            return Err(err(
                "process.scheduler.policy",
                "SCHED_ISO does not exist in the Linux kernel",
            ))
        }
    } as u32;
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        };
    }
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(err(
            "process.scheduler.nice",
            format!("{nice} is not in -20..19"),
        ));
    }
    let priority = s.priority().unwrap_or(0);
    let rt = policy == libc::SCHED_FIFO as u32 || policy == libc::SCHED_RR as u32;
    if (rt && !(1..=99).contains(&priority)) || (!rt && priority != 0) {
        return Err(err(
            "process.scheduler.priority",
            format!("{priority}: SCHED_FIFO and SCHED_RR take 1..99, the other policies 0"),
        ));
    }
    let dl = policy == 6;
    if !dl && (s.runtime().is_some() || s.deadline().is_some() || s.period().is_some()) {
        return Err(err(
            "process.scheduler",
            "runtime, deadline and period are for SCHED_DEADLINE only",
        ));
    }
    Ok(SchedAttr {
        size: 0,
        policy,
        flags,
        nice,
        priority: priority as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        util_min: 0,
        util_max: 0,
    })
}

fn io_priority(class: IOPriorityClass, level: i64) -> Result<i32, PlanError> {
    if !(0..=7).contains(&level) {
        return Err(err(
            "process.ioPriority.priority",
            format!("{level} is not in 0..7"),
        ));
    }
    let class = match class {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    Ok(class << 13 | level as i32)
}

/// A CPU list ("0-3,7") as a mask of [`MAX_CPUS`] bits.
fn cpu_mask(field: &str, list: &str) -> Result<[u64; 16], PlanError> {
    let mut mask = [0u64; 16];
    let bad = |why: &str| err(field, format!("{list:?}: {why}"));
    for part in list.split(',').map(str::trim) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let a: usize = a.trim().parse().map_err(|_| bad("not a CPU list"))?;
        let b: usize = b.trim().parse().map_err(|_| bad("not a CPU list"))?;
        if a > b || b >= MAX_CPUS {
            return Err(bad("bad range (CPUs are 0..1023)"));
        }
        for cpu in a..=b {
            mask[cpu / 64] |= 1 << (cpu % 64);
        }
    }
    Ok(mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(process: &str, personality: Option<&str>) -> Result<Attrs, PlanError> {
        let p: Process =
            serde_json::from_str(&format!(r#"{{"cwd":"/","args":["x"],{process}}}"#)).unwrap();
        let pers: Option<LinuxPersonality> = personality.map(|j| serde_json::from_str(j).unwrap());
        plan(&p, pers.as_ref())
    }

    #[test]
    fn attributes_are_parsed() {
        let a = attrs(r#""user":{"uid":0,"gid":0}"#, None).unwrap();
        assert_eq!(a.umask, 0o022);
        assert_eq!(a.personality, None);
        let a = attrs(
            r#""user":{"uid":0,"gid":0,"umask":7},
               "scheduler":{"policy":"SCHED_RR","priority":5,"flags":["SCHED_RESET_ON_FORK"]},
               "ioPriority":{"class":"IOPRIO_CLASS_IDLE","priority":4},
               "execCPUAffinity":{"initial":"0,2-3","final":"65"}"#,
            Some(r#"{"domain":"LINUX32"}"#),
        )
        .unwrap();
        assert_eq!(a.umask, 7);
        assert_eq!(a.personality, Some(8));
        let s = a.scheduler.unwrap();
        assert_eq!((s.policy, s.priority, s.flags), (2, 5, 1));
        assert_eq!(a.io_priority, Some(3 << 13 | 4));
        assert_eq!(a.affinity_initial.unwrap()[0], 0b1101);
        assert_eq!(a.affinity_final.unwrap()[1], 0b10);
    }

    #[test]
    fn bad_attributes_name_the_field() {
        let cases = [
            (
                r#""user":{"uid":0,"gid":0,"umask":4096}"#,
                None,
                "process.user.umask",
            ),
            (
                r#""user":{"uid":0,"gid":0,"username":"x"}"#,
                None,
                "process.user.username",
            ),
            (
                r#""user":{"uid":0,"gid":0},"commandLine":"x""#,
                None,
                "process.commandLine",
            ),
            (
                r#""user":{"uid":0,"gid":0},"consoleSize":{"height":1,"width":2}"#,
                None,
                "process.consoleSize",
            ),
            (
                r#""user":{"uid":0,"gid":0},"scheduler":{"policy":"SCHED_ISO"}"#,
                None,
                "process.scheduler.policy",
            ),
            (
                r#""user":{"uid":0,"gid":0},"scheduler":{"policy":"SCHED_FIFO"}"#,
                None,
                "process.scheduler.priority",
            ),
            (
                r#""user":{"uid":0,"gid":0},"ioPriority":{"class":"IOPRIO_CLASS_BE","priority":8}"#,
                None,
                "process.ioPriority.priority",
            ),
            (
                r#""user":{"uid":0,"gid":0},"execCPUAffinity":{"final":"3-1"}"#,
                None,
                "process.execCPUAffinity.final",
            ),
            (
                r#""user":{"uid":0,"gid":0}"#,
                Some(r#"{"domain":"LINUX","flags":["SHORT_INODE"]}"#),
                "linux.personality.flags",
            ),
        ];
        for (p, pers, field) in cases {
            assert_eq!(attrs(p, pers).unwrap_err().field, field, "{p}");
        }
    }
}
