//! `linux.maskedPaths` and `linux.readonlyPaths`: absolute, normalised
//! paths in the container, `..` refused.

use super::{container_path, cstr, PlanError};
use std::ffi::CString;

/// The paths of the list `field` ("linux.maskedPaths"), as "/a/b".
pub fn plan(field: &str, paths: Option<&Vec<String>>) -> Result<Vec<CString>, PlanError> {
    paths
        .into_iter()
        .flatten()
        .map(|p| container_path(field, p).and_then(|r| cstr(field, &format!("/{r}"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_and_dotdot_refused() {
        let list = vec!["/proc//kcore/".to_string(), "/sys/./firmware".to_string()];
        let p = plan("linux.maskedPaths", Some(&list)).unwrap();
        assert_eq!(p, [c"/proc/kcore".to_owned(), c"/sys/firmware".to_owned()]);
        let e = plan("linux.readonlyPaths", Some(&vec!["/a/../b".into()])).unwrap_err();
        assert_eq!(e.field, "linux.readonlyPaths");
        let e = plan("linux.readonlyPaths", Some(&vec!["rel".into()])).unwrap_err();
        assert!(e.reason.ends_with("is not an absolute path"), "{e}");
        assert!(plan("x", None).unwrap().is_empty());
    }
}
