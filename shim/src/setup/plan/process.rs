//! `process.args`, `process.env`, `process.cwd`: the C strings exec needs,
//! and where to look for the executable.

use super::{container_path, cstr, err, PlanError};
use oci_spec::runtime::Process;
use std::ffi::CString;

/// The process section of a plan (user, rlimits and capabilities have their
/// own sections).
#[derive(Debug)]
pub struct Exec {
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    pub exec_candidates: Vec<CString>,
    /// Absolute and normalised ("/a/b").
    pub cwd: String,
}

/// Where a command without a '/' is looked for when the environment has no PATH.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub fn plan(process: &Process) -> Result<Exec, PlanError> {
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() || args[0].is_empty() {
        return Err(err("process.args", "empty: nothing to execute"));
    }
    let argv = args
        .iter()
        .map(|a| cstr("process.args", a))
        .collect::<Result<Vec<_>, _>>()?;
    let env = process.env().clone().unwrap_or_default();
    for e in &env {
        if !e.contains('=') {
            return Err(err("process.env", format!("{e:?} is not KEY=VALUE")));
        }
    }
    let envp = env
        .iter()
        .map(|e| cstr("process.env", e))
        .collect::<Result<Vec<_>, _>>()?;
    let path_var = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let exec_candidates = if args[0].contains('/') {
        vec![argv[0].clone()]
    } else {
        path_var
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| {
                cstr(
                    "process.args",
                    &format!("{}/{}", d.trim_end_matches('/'), args[0]),
                )
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    let cwd = process.cwd().to_string_lossy().into_owned();
    let cwd = format!("/{}", container_path("process.cwd", &cwd)?);
    Ok(Exec {
        argv,
        envp,
        exec_candidates,
        cwd,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(json: &str) -> Result<Exec, PlanError> {
        let cwd = if json.contains(r#""cwd""#) {
            ""
        } else {
            r#""cwd":"/","#
        };
        let p: Process =
            serde_json::from_str(&format!(r#"{{{cwd}"user":{{"uid":0,"gid":0}},{json}}}"#))
                .unwrap();
        plan(&p)
    }

    #[test]
    fn the_executable_is_looked_for_in_the_last_path() {
        let e = exec(r#""args":["sh"],"env":["PATH=/a","PATH=/b/:/c"]"#).unwrap();
        assert_eq!(
            e.exec_candidates,
            [c"/b/sh".to_owned(), c"/c/sh".to_owned()]
        );
        let e = exec(r#""args":["sh"]"#).unwrap();
        assert_eq!(e.exec_candidates.len(), DEFAULT_PATH.split(':').count());
        let e = exec(r#""args":["./x"],"cwd":"/w//d/""#).unwrap();
        assert_eq!(e.exec_candidates, [c"./x".to_owned()]);
        assert_eq!(e.cwd, "/w/d");
    }

    #[test]
    fn bad_processes_name_the_field() {
        assert_eq!(exec(r#""args":[""]"#).unwrap_err().field, "process.args");
        assert_eq!(
            exec(r#""args":["x"],"env":["A"]"#).unwrap_err().field,
            "process.env"
        );
        assert_eq!(
            exec(r#""args":["x"],"cwd":"rel""#).unwrap_err().field,
            "process.cwd"
        );
    }
}
