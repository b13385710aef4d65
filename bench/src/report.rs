//! docs/benchmarks.md from the results (the raw samples stay in the JSON).

use serde_json::Value;
use std::fmt::Write;

fn f(v: &Value, digits: usize) -> String {
    v.as_f64()
        .map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "-".into())
}

/// "not built", "not installed", "failed: ...", or `None` for a result.
fn absent(v: &Value) -> Option<String> {
    if let Some(a) = v["absent"].as_str() {
        return Some(a.to_string());
    }
    v["error"].as_str().map(|e| {
        let short: String = e.chars().take(120).collect();
        format!("failed: {short}")
    })
}

/// How to read the figures (the same text on every run).
const NOTES: &str = "\
## What is measured, and how to read it

- **One bundle.** runc, crun, zctr-oci (when built) and `zctr-shim run` get the same OCI \
bundle: a static busybox root, read-only, new pid, ipc, uts, mount and network \
namespaces, `/proc` and a `/dev` tmpfs, no capabilities, no user namespace, a cgroup \
below the benchmark's own cgroup. The daemon (`zctr run --rm`, `zctr create`...) builds \
its own config from the same root with its **default (unprivileged) profile**: a user \
namespace with idmapped mounts, a rootfs overlay on a tmpfs of its own, seccomp and \
limits (docs/profiles.md). Its rows so carry more isolation work than the others, plus \
the `zctr` client process and one HTTP round trip to the daemon; the `POST ?wait&rm` rows \
are that same single call sent by the benchmark itself, without a client process, with \
the default profile and with the privileged one (no user namespace, no idmapped mounts; \
still the overlay, seccomp and limits).
- **crun** 1.8.1 refuses the hybrid cgroup layout: on such a host each crun series runs \
in a private mount namespace where `/sys/fs/cgroup/unified` is unmounted (the host is \
untouched); the namespace is set up once per series, never inside a sample.
- **The floor** is `unshare -Upmiu --net --fork /bin/true`: the kernel's namespace \
creation and an exec, no runtime at all.
- **Monitors**: zctr's `zctr-shim-monitor` (started with `zctr-shim create` + `start`, \
as the daemon does) and conmon (runc as its runtime, as podman runs it) watch the same \
bundle, each with a 1 MiB log cap.
- **Load.** The load averages at start and end are below. On a shared or busy machine \
(they are far above the CPU count) every latency is inflated and noisy, the p95s most: \
compare rows of one run with each other, not with another machine's figures.
- Run it yourself: `bash bench/run.sh` (as root; `--smoke` for a quick check that \
writes to a temporary directory). Raw samples: `bench/results.json`.
- **What durability costs, and is kept.** The daemon's state root here is on a disk \
(on a node, `/run/zctr` is a tmpfs, where an fsync costs nothing). A started container \
costs 8 fsyncs there: its record (`container.json`) written when created and when \
started, each with the file and its directory synced (so a status is on disk before \
it is reported), and the monitor's `status.json` when created and when running, the \
same way; its exit 4 more (the record and `status.json` when stopped). Not synced, because nothing is lost by it: the bundle's \
`config.json` (written again from the record at every launch, a restart after a \
host crash included) and the record of a container still being created (recovery \
removes an unfinished creation whether its record is there or not). A record write \
that would change nothing is skipped (every shim's `Hello` at a daemon restart was \
one: 2,000 fsyncs for 1,000 containers), and a write that fsyncs hands the daemon \
worker's other tasks to another thread first.
";

const LIFECYCLE: [&str; 6] = ["create", "start", "pause", "resume", "kill", "delete"];

/// Rows and columns in a fixed order: zctr first, then the others, the
/// floor last; anything else after them.
const ORDER: [&str; 11] = [
    "zctr-shim run",
    "zctr-shim-monitor",
    "conmon (runc)",
    "zctr run --rm (daemon)",
    "POST ?wait&rm, unprivileged (daemon, no client process)",
    "POST ?wait&rm, privileged (daemon, no client process)",
    "zctr (daemon)",
    "zctr-oci",
    "runc",
    "crun",
    "unshare -Upmiu --net --fork (floor)",
];

fn ordered(v: &Value) -> Vec<(&str, &Value)> {
    let mut rows: Vec<(&str, &Value)> = v
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    rows.sort_by_key(|(k, _)| ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()));
    rows
}

pub fn markdown(r: &Value) -> String {
    let mut s = String::new();
    let m = &r["machine"];
    let w = &mut s;
    let _ = writeln!(w, "# Benchmarks\n");
    let _ = writeln!(
        w,
        "Written by `bash bench/run.sh` (`bench/`, binary `zctr-bench`); the raw samples are in \
         `bench/results.json`. Mode: **{}**. Times are wall-clock milliseconds of the whole \
         command as a user runs it (process start to exit), medians and 95th percentiles \
         (nearest rank); ratios are medians divided by the median of `zctr-shim run`.\n",
        r["mode"].as_str().unwrap_or("?")
    );
    let _ = writeln!(w, "{NOTES}");
    let _ = writeln!(w, "## Machine\n");
    let _ = writeln!(w, "| | |\n|---|---|");
    for (k, label) in [
        ("date", "date (UTC)"),
        ("cpu", "CPU"),
        ("cpus", "CPUs"),
        ("mem_mib", "memory (MiB)"),
        ("kernel", "kernel"),
        ("os", "OS"),
        ("cgroups", "cgroup layout"),
        ("loadavg_at_start", "load average at start (1, 5, 15 min)"),
    ] {
        let v = &m[k];
        let text = v
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string());
        let _ = writeln!(w, "| {label} | {text} |");
    }
    let _ = writeln!(
        w,
        "| load average at end | {} |",
        r["loadavg_at_end"].as_str().unwrap_or("?")
    );
    for (k, v) in r["loadavg_after"].as_object().into_iter().flatten() {
        let _ = writeln!(
            w,
            "| load average after {k} | {} |",
            v.as_str().unwrap_or("?")
        );
    }
    for (k, v) in m["versions"].as_object().into_iter().flatten() {
        let _ = writeln!(w, "| {k} | {} |", v.as_str().unwrap_or("?"));
    }

    let run = &r["run_to_exit"];
    let base = run["zctr-shim run"]["median"].as_f64();
    let _ = writeln!(w, "\n## Run to exit of `/bin/true`\n");
    let _ = writeln!(
        w,
        "Sequential runs after a few unrecorded warm-up runs; each one creates, starts, \
         waits for and removes the container.\n"
    );
    let _ = writeln!(
        w,
        "| runtime | n | median ms | p95 ms | ratio |\n|---|---:|---:|---:|---:|"
    );
    for (name, v) in ordered(run) {
        if let Some(a) = absent(v) {
            let _ = writeln!(w, "| {name} | | {a} | | |");
            continue;
        }
        let ratio = match (v["median"].as_f64(), base) {
            (Some(x), Some(b)) if b > 0.0 => format!("{:.2}", x / b),
            _ => "-".into(),
        };
        let _ = writeln!(
            w,
            "| {name} | {} | {} | {} | {ratio} |",
            v["n"],
            f(&v["median"], 2),
            f(&v["p95"], 2)
        );
    }

    let life = &r["lifecycle"];
    let _ = writeln!(w, "\n## Lifecycle latencies\n");
    let _ = writeln!(
        w,
        "One command per step on a `sleep` container, median / p95 in ms (`kill` is \
         `KILL`; the wait for the exit between kill and delete is not timed).\n"
    );
    let names: Vec<&str> = ordered(life).into_iter().map(|(k, _)| k).collect();
    let _ = write!(w, "| step |");
    for n in &names {
        let _ = write!(w, " {n} |");
    }
    let _ = write!(w, "\n|---|");
    for _ in &names {
        let _ = write!(w, "---:|");
    }
    let _ = writeln!(w);
    for step in LIFECYCLE {
        let _ = write!(w, "| {step} |");
        for n in &names {
            let v = &life[*n];
            match absent(v) {
                Some(a) => {
                    let _ = write!(w, " {a} |");
                }
                None => {
                    let x = &v[step];
                    let _ = write!(w, " {} / {} |", f(&x["median"], 2), f(&x["p95"], 2));
                }
            }
        }
        let _ = writeln!(w);
    }

    let mem = &r["monitor_memory"];
    let sc = &r["scale"];
    let _ = writeln!(w, "\n## Memory\n");
    let _ = writeln!(
        w,
        "Per-container monitor of an idle `sleep` container (mean over the monitors, KiB, \
         3 s after start). `zctr-shim-monitor` and conmon monitor the same bundle (conmon \
         with runc as its runtime, as podman runs it); the last row is the monitors the \
         daemon started during the scale run (default profile: user namespace, overlay).\n"
    );
    let _ = writeln!(
        w,
        "| monitor | n | RSS KiB | PSS KiB |\n|---|---:|---:|---:|"
    );
    let mut mrows: Vec<(String, &Value)> = ordered(mem)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    mrows.push(("zctr-shim-monitor (daemon's)".into(), &sc["monitor"]));
    for (name, v) in mrows {
        match absent(v) {
            Some(a) => {
                let _ = writeln!(w, "| {name} | | {a} | |");
            }
            None => {
                let _ = writeln!(
                    w,
                    "| {name} | {} | {} | {} |",
                    v["monitors"], v["rss_kib"], v["pss_kib"]
                );
            }
        }
    }
    let _ = writeln!(w, "\nDaemon RSS with N idle containers (KiB):\n");
    let _ = writeln!(w, "| containers | daemon RSS KiB |\n|---:|---:|");
    for (k, v) in sc["daemon_rss_kib"].as_object().into_iter().flatten() {
        let _ = writeln!(w, "| {k} | {v} |");
    }

    let _ = writeln!(w, "\n## Scale through the API\n");
    if let Some(a) = absent(sc) {
        let _ = writeln!(w, "{a}");
    }
    let _ = writeln!(
        w,
        "`sleep` containers created and started (`POST /v1/containers?start=true`), then \
         all deleted (`DELETE ...?force=true`), by N concurrent clients (one connection \
         per request).\n"
    );
    let _ = writeln!(
        w,
        "| op | clients | containers | seconds | per second | request median ms | p95 ms |\n\
         |---|---:|---:|---:|---:|---:|---:|"
    );
    for x in sc["rounds"].as_array().into_iter().flatten() {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} |",
            x["op"].as_str().unwrap_or(""),
            x["clients"],
            x["containers"],
            f(&x["seconds"], 1),
            f(&x["per_second"], 1),
            f(&x["latency_ms"]["median"], 1),
            f(&x["latency_ms"]["p95"], 1)
        );
    }
    let rs = &sc["restart"];
    let _ = writeln!(
        w,
        "\nRestart with {} live containers (SIGTERM, then a new daemon): answering \
         after {} ms, all listed `running` (reconciled) after {} ms; daemon RSS then {} KiB.",
        rs["containers"],
        f(&rs["serving_ms"], 0),
        f(&rs["all_listed_running_ms"], 0),
        rs["daemon_rss_kib_after"]
    );

    let logs = &r["log_throughput"];
    let _ = writeln!(w, "\n## Log throughput\n");
    let _ = writeln!(
        w,
        "A container writes zeros with `dd bs=64k` to its stdout; the monitor copies them \
         into its log file (1 MiB cap, rotated). Throughput is bytes over the time from \
         `start` to the exit being recorded; CPU is the monitor's user+system time \
         (/proc/PID/stat, 10 ms ticks) per GiB.\n"
    );
    let _ = writeln!(
        w,
        "| monitor | MiB per run | runs | MiB/s median | MiB/s min | CPU s per GiB median |\n\
         |---|---:|---:|---:|---:|---:|"
    );
    for (name, v) in ordered(logs) {
        if let Some(a) = absent(v) {
            let _ = writeln!(w, "| {name} | | | {a} | | |");
            continue;
        }
        let b = &v["bytes_per_second"];
        let mib = |x: &Value| x.as_f64().map(|x| format!("{:.0}", x / 1048576.0));
        let _ = writeln!(
            w,
            "| {name} | {} | {} | {} | {} | {} |",
            v["mib_per_run"],
            b["n"],
            mib(&b["median"]).unwrap_or_default(),
            mib(&b["min"]).unwrap_or_default(),
            f(&v["monitor_cpu_s_per_gib"]["median"], 2)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_ratios_and_absent_runtimes() {
        let r = json!({
            "mode": "smoke",
            "machine": {"cpus": 2, "versions": {"runc": "runc version 1"}},
            "run_to_exit": {
                "runc": {"n": 3, "median": 20.0, "p95": 30.0},
                "zctr-shim run": {"n": 3, "median": 10.0, "p95": 12.0},
                "zctr-oci": {"absent": "not built"},
                "crun": {"error": "boom"}
            },
            "lifecycle": {"runc": {"create": {"median": 1.5, "p95": 2.5}},
                          "zctr-oci": {"absent": "not built"}},
        });
        let md = markdown(&r);
        assert!(
            md.contains("| zctr-shim run | 3 | 10.00 | 12.00 | 1.00 |"),
            "{md}"
        );
        assert!(md.contains("| runc | 3 | 20.00 | 30.00 | 2.00 |"), "{md}");
        assert!(md.contains("| zctr-oci | | not built | | |"), "{md}");
        assert!(md.contains("failed: boom"), "{md}");
        assert!(md.contains("| create | not built | 1.50 / 2.50 |"), "{md}");
        // zctr first, whatever the JSON's key order.
        assert!(md.find("| zctr-shim run").unwrap() < md.find("| runc | 3 |").unwrap());
    }
}
