//! Setting a container up: from `config.json` to an init waiting just before
//! exec. [`plan`] turns the config into everything the child needs (before
//! fork), [`launch`] makes the namespaces, cgroup and id maps and runs the
//! [`child`], which walks the plan. Every failure is a
//! [`zctr_shim_core::SetupError`].

pub mod child;
pub mod idmap;
pub mod launch;
pub mod mountopts;
pub mod overlay;
pub mod plan;
pub mod reach;
pub mod readfile;
pub mod seccomp;
#[allow(unsafe_code)]
pub mod sys;
