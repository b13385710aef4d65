//! Setting a container up: from `config.json` to an init waiting just before
//! exec. [`plan`] turns the config into everything the child needs (before
//! fork), [`launch`] makes the namespaces, cgroup and id maps and runs the
//! [`child`], which walks the plan. Every failure is a
//! [`zctr_shim_core::SetupError`]. The modules here allowed to use `unsafe`
//! are listed in the crate root.

#[allow(unsafe_code)]
pub mod child;
pub mod exec;
pub mod hooks;
pub mod idmap;
#[allow(unsafe_code)]
pub mod launch;
pub mod limits;
pub mod mountopts;
pub mod overlay;
pub mod plan;
pub mod reach;
pub mod readfile;
pub mod seccomp;
pub mod shim_mode;
#[allow(unsafe_code)]
pub mod sys;
