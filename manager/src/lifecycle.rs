//! Which operation is allowed in which state: one pure function, so the rules
//! live (and are tested) in one place.

use crate::model::Status;

/// A lifecycle operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Start,
    Pause,
    Resume,
    Kill,
    Delete {
        force: bool,
    },
    /// Run another process in it (`exec`).
    Exec,
    /// Attach to its own process's output and input.
    Attach,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Start => "start",
            Op::Pause => "pause",
            Op::Resume => "resume",
            Op::Kill => "kill",
            Op::Delete { force: false } => "delete",
            Op::Delete { force: true } => "delete --force",
            Op::Exec => "exec in",
            Op::Attach => "attach to",
        }
    }
}

/// `op` is not allowed while the container is `status`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} a {} container{}", op.name(), status.as_str(), hint(*op, *status))]
pub struct InvalidTransition {
    pub op: Op,
    pub status: Status,
}

fn hint(op: Op, status: Status) -> &'static str {
    match (op, status) {
        (Op::Delete { force: false }, Status::Running | Status::Paused) => {
            " (stop it first or use force)"
        }
        (_, Status::Creating) => " (it is still being created)",
        (Op::Exec, Status::Paused) => " (resume it first)",
        (Op::Exec, Status::Created) => " (start it first)",
        _ => "",
    }
}

/// Checks `op` against `status`.
pub fn check(op: Op, status: Status) -> Result<(), InvalidTransition> {
    use Status::*;
    let ok = match op {
        Op::Start => status == Created,
        Op::Pause => status == Running,
        Op::Resume => status == Paused,
        Op::Kill => matches!(status, Created | Running | Paused),
        Op::Delete { force: false } => matches!(status, Created | Stopped),
        // A creating container is waited for (its creation holds the
        // operation lock), then deleted.
        Op::Delete { force: true } => true,
        // The monitor refuses it too (it knows a freeze the daemon has not
        // recorded yet).
        Op::Exec => status == Running,
        Op::Attach => matches!(status, Created | Running | Paused),
    };
    if ok {
        Ok(())
    } else {
        Err(InvalidTransition { op, status })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    const ALL: [Status; 5] = [Creating, Created, Running, Paused, Stopped];

    fn allowed(op: Op) -> Vec<Status> {
        ALL.into_iter().filter(|s| check(op, *s).is_ok()).collect()
    }

    #[test]
    fn the_transition_table() {
        assert_eq!(allowed(Op::Start), vec![Created]);
        assert_eq!(allowed(Op::Exec), vec![Running]);
        assert_eq!(allowed(Op::Attach), vec![Created, Running, Paused]);
        assert_eq!(allowed(Op::Pause), vec![Running]);
        assert_eq!(allowed(Op::Resume), vec![Paused]);
        assert_eq!(allowed(Op::Kill), vec![Created, Running, Paused]);
        assert_eq!(allowed(Op::Delete { force: false }), vec![Created, Stopped]);
        assert_eq!(allowed(Op::Delete { force: true }), ALL.to_vec());
    }

    #[test]
    fn messages_say_what_and_why() {
        let e = check(Op::Delete { force: false }, Running).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot delete a running container (stop it first or use force)"
        );
        let e = check(Op::Start, Running).unwrap_err();
        assert_eq!(e.to_string(), "cannot start a running container");
        let e = check(Op::Pause, Stopped).unwrap_err();
        assert_eq!(e.to_string(), "cannot pause a stopped container");
    }
}
