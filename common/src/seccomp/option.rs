//! The container config's `seccomp` field: `"default"` (the profile's own
//! filter, see [`super::default_profile`]), `"unconfined"` (no filter), or a
//! custom profile inline as the OCI `linux.seccomp` object.
//!
//! A custom profile is read strictly: unknown actions, operators,
//! architectures and flags are refused by serde with their name, and so are
//! unknown keys (Docker's own profile file, with `archMap` and per-rule
//! `includes`/`excludes`, is not an OCI object; accepting it while ignoring
//! those keys would allow what it meant to refuse).

use oci_spec::runtime::LinuxSeccomp;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// What filter a container gets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SeccompOption {
    /// The profile's default filter.
    #[default]
    Default,
    /// No filter at all.
    Unconfined,
    /// This profile instead of the default.
    Custom(Box<LinuxSeccomp>),
}

impl SeccompOption {
    pub fn is_default(&self) -> bool {
        *self == SeccompOption::Default
    }
}

impl Serialize for SeccompOption {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SeccompOption::Default => s.serialize_str("default"),
            SeccompOption::Unconfined => s.serialize_str("unconfined"),
            SeccompOption::Custom(p) => p.serialize(s),
        }
    }
}

const TOP_KEYS: &[&str] = &[
    "defaultAction",
    "defaultErrnoRet",
    "architectures",
    "flags",
    "listenerPath",
    "listenerMetadata",
    "syscalls",
];
const RULE_KEYS: &[&str] = &["names", "action", "errnoRet", "args"];
const ARG_KEYS: &[&str] = &["index", "value", "valueTwo", "op"];

fn check_keys(v: &Value, allowed: &[&str], at: &str) -> Result<(), String> {
    if let Value::Object(map) = v {
        if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(format!(
                "seccomp{at}: unknown key {k:?} (expected one of {})",
                allowed.join(", ")
            ));
        }
    }
    Ok(())
}

/// Refuses keys the OCI `LinuxSeccomp` object does not have, at every level.
fn check_profile_keys(v: &Value) -> Result<(), String> {
    check_keys(v, TOP_KEYS, "")?;
    if let Some(Value::Array(rules)) = v.get("syscalls") {
        for (i, r) in rules.iter().enumerate() {
            check_keys(r, RULE_KEYS, &format!(".syscalls[{i}]"))?;
            if let Some(Value::Array(args)) = r.get("args") {
                for (j, a) in args.iter().enumerate() {
                    check_keys(a, ARG_KEYS, &format!(".syscalls[{i}].args[{j}]"))?;
                }
            }
        }
    }
    Ok(())
}

/// Parses the field's JSON value; errors name what is wrong.
pub fn parse(v: Value) -> Result<SeccompOption, String> {
    match v {
        Value::String(s) => match s.as_str() {
            "default" => Ok(SeccompOption::Default),
            "unconfined" => Ok(SeccompOption::Unconfined),
            other => Err(format!(
                "seccomp: {other:?} is not \"default\", \"unconfined\" or a profile object"
            )),
        },
        v @ Value::Object(_) => {
            check_profile_keys(&v)?;
            serde_json::from_value::<LinuxSeccomp>(v)
                .map(|p| SeccompOption::Custom(Box::new(p)))
                .map_err(|e| format!("seccomp: {e}"))
        }
        _ => Err("seccomp: expected \"default\", \"unconfined\" or a profile object".into()),
    }
}

impl<'de> Deserialize<'de> for SeccompOption {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse(Value::deserialize(d)?).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(json: &str) -> Result<SeccompOption, String> {
        parse(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn names_and_objects_parse_and_round_trip() {
        assert_eq!(p(r#""default""#).unwrap(), SeccompOption::Default);
        assert_eq!(p(r#""unconfined""#).unwrap(), SeccompOption::Unconfined);
        let custom = p(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],
            "action":"SCMP_ACT_ERRNO","errnoRet":5,"args":[{"index":0,"value":3,"op":"SCMP_CMP_EQ"}]}]}"#)
        .unwrap();
        let json = serde_json::to_string(&custom).unwrap();
        assert_eq!(p(&json).unwrap(), custom);
        assert_eq!(
            serde_json::to_string(&SeccompOption::Unconfined).unwrap(),
            r#""unconfined""#
        );
    }

    #[test]
    fn unknown_names_keys_actions_and_ops_are_refused_by_name() {
        for (json, want) in [
            (r#""none""#, "\"none\""),
            ("3", "expected"),
            (r#"{"defaultAction":"SCMP_ACT_NOPE"}"#, "SCMP_ACT_NOPE"),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","archMap":[]}"#,
                "archMap",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","includes":{}}]}"#,
                "syscalls[0]: unknown key \"includes\"",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_XX"}]}]}"#,
                "SCMP_CMP_XX",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_VAX"]}"#,
                "SCMP_ARCH_VAX",
            ),
        ] {
            let e = p(json).unwrap_err();
            assert!(e.contains(want), "{json}: {e}");
        }
    }
}
