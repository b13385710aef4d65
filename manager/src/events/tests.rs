use super::*;
use crate::model::ExitInfo;
use common::id::ContainerId;

fn tmp() -> crate::testutil::TempDir {
    crate::testutil::TempDir::new("events")
}

fn record(id: &str, status: Status, exit: Option<ExitInfo>) -> ContainerRecord {
    let mut r = crate::testutil::record(ContainerId::new(id).unwrap());
    r.status = status;
    r.exit = exit;
    r
}

fn exit(code: i32, at_ms: u64, oom: bool) -> ExitInfo {
    ExitInfo {
        exit_code: code,
        code: Some(code),
        signal: None,
        oom_killed: oom,
        at_ms,
    }
}

#[test]
fn each_transition_makes_its_events() {
    let t = tmp();
    let ev = Events::open(t.path());
    ev.transition(Status::Creating, &record("a", Status::Created, None));
    ev.transition(Status::Created, &record("a", Status::Running, None));
    ev.transition(Status::Running, &record("a", Status::Paused, None));
    ev.transition(Status::Paused, &record("a", Status::Running, None));
    let later = now_ms() + 1;
    ev.transition(
        Status::Running,
        &record("a", Status::Stopped, Some(exit(137, later, true))),
    );
    ev.deleted("a");
    let (past, _) = ev.since(0, None);
    let kinds: Vec<Kind> = past.iter().map(|e| e.kind).collect();
    use Kind::*;
    assert_eq!(
        kinds,
        [Created, Started, Paused, Resumed, Oom, Exited, Deleted]
    );
    assert_eq!(past[5].exit_code, Some(137));
    let seqs: Vec<u64> = past.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=7).collect::<Vec<_>>());
}

#[test]
fn the_file_carries_events_and_numbers_across_restarts() {
    let t = tmp();
    {
        let ev = Events::open(t.path());
        ev.transition(Status::Creating, &record("a", Status::Created, None));
        ev.deleted("a");
    }
    let ev = Events::open(t.path());
    ev.transition(Status::Creating, &record("b", Status::Created, None));
    let (past, _) = ev.since(0, None);
    assert_eq!(past.len(), 3);
    assert_eq!(past[2].seq, 3);
    let (only_b, _) = ev.since(0, Some("b"));
    assert_eq!(only_b.len(), 1);
    assert_eq!(only_b[0].id, "b");
}

#[test]
fn recovery_events_come_out_sorted_by_time_and_marked_away() {
    let t = tmp();
    let ev = Events::open(t.path());
    let (_, mut rx) = ev.since(0, None);
    ev.hold();
    let before = ev.started_ms - 10_000;
    // Read in name order, happened the other way round.
    ev.transition(
        Status::Running,
        &record("a", Status::Stopped, Some(exit(1, before + 500, false))),
    );
    ev.transition(
        Status::Running,
        &record("b", Status::Stopped, Some(exit(2, before, false))),
    );
    assert!(rx.try_recv().is_err(), "published before the release");
    ev.release();
    let first = rx.try_recv().unwrap();
    let second = rx.try_recv().unwrap();
    assert_eq!((first.id.as_str(), second.id.as_str()), ("b", "a"));
    assert!(first.seq < second.seq);
    assert_eq!(first.kind, Kind::DiedWhileAway);
    assert_eq!(first.at_ms, before);
}

#[test]
fn the_file_rotates_and_a_missing_directory_costs_only_the_file() {
    let t = tmp();
    let ev = Events::open(t.path());
    let mut inner = ev.lock();
    let big = vec![b'x'; (MAX_FILE as usize) - 1];
    ev.append(&mut inner, &big);
    ev.append(&mut inner, b"{}\n");
    drop(inner);
    assert!(t.path().join("events.jsonl.1").is_file());
    assert_eq!(fs::read(t.path().join(FILE)).unwrap(), b"{}\n");

    let gone = Events::open(&t.path().join("no/such/dir"));
    gone.deleted("x");
    assert_eq!(gone.since(0, None).0.len(), 1);
}
