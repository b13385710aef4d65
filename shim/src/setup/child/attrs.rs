//! The child's steps for the process attributes of the plan: the time
//! namespace and domain name early, personality and scheduling before
//! "ready" (a failure fails `create`), labels, CPU affinity and umask just
//! before exec.

use super::{debug, ChildCtx, Context, Step};
use crate::setup::sys;

/// After the user and cgroup namespaces: a new time namespace with its
/// offsets (entered at exec), the domain name, the initial CPU affinity.
pub(super) fn early<'a>(ctx: &ChildCtx<'a>) -> Step<'a> {
    let plan = ctx.plan;
    if plan.unshare_timens {
        debug(ctx, "time namespace");
        sys::unshare(sys::CLONE_NEWTIME).at("unshare time namespace", b"")?;
        if let Some(o) = &plan.time_offsets {
            sys::write_file(c"/proc/self/timens_offsets", o.to_bytes())
                .at("write time offsets", o.to_bytes())?;
        }
    }
    if let Some(d) = &plan.domainname {
        debug(ctx, "domainname");
        sys::setdomainname(d).at("setdomainname", d.to_bytes())?;
    }
    if let Some(mask) = &plan.attrs.affinity_initial {
        sys::sched_setaffinity(mask).at("process.execCPUAffinity.initial", b"")?;
    }
    Ok(())
}

/// Before "ready": personality, scheduler, I/O priority.
pub(super) fn before_ready<'a>(ctx: &ChildCtx<'a>) -> Step<'a> {
    let a = &ctx.plan.attrs;
    if let Some(p) = a.personality {
        debug(ctx, "personality");
        sys::personality(p).at("linux.personality", b"")?;
    }
    if let Some(s) = &a.scheduler {
        debug(ctx, "scheduler");
        sys::sched_setattr(s).at("process.scheduler", b"sched_setattr")?;
    }
    if let Some(p) = a.io_priority {
        debug(ctx, "ioPriority");
        sys::ioprio_set(p).at("process.ioPriority", b"ioprio_set")?;
    }
    Ok(())
}

/// Before the user and capabilities change (as runc): the AppArmor profile
/// and SELinux label the exec switches to.
pub(super) fn labels<'a>(ctx: &ChildCtx<'a>) -> Step<'a> {
    let plan = ctx.plan;
    if let Some(p) = &plan.labels.apparmor_exec {
        debug(ctx, "apparmor profile");
        sys::write_file(c"/proc/self/attr/apparmor/exec", p.to_bytes())
            .or_else(|_| sys::write_file(c"/proc/self/attr/exec", p.to_bytes()))
            .at("process.apparmorProfile", p.to_bytes())?;
    }
    if let Some(l) = &plan.labels.selinux_exec {
        debug(ctx, "selinux label");
        sys::write_file(c"/proc/self/attr/exec", l.to_bytes())
            .at("process.selinuxLabel", l.to_bytes())?;
    }
    Ok(())
}

/// Just before exec: the final CPU affinity, the umask.
pub(super) fn before_exec<'a>(ctx: &ChildCtx<'a>) -> Step<'a> {
    let plan = ctx.plan;
    if let Some(mask) = &plan.attrs.affinity_final {
        sys::sched_setaffinity(mask).at("process.execCPUAffinity.final", b"")?;
    }
    sys::umask(plan.attrs.umask);
    Ok(())
}
