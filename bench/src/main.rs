//! zctr-bench: zctr next to runc, crun and conmon on one busybox bundle,
//! in one run. `bash bench/run.sh [--smoke] [--out FILE]` installs what is
//! missing, builds, and runs this; see docs/benchmarks.md for what each
//! figure is. Everything it makes (state dirs, cgroups below its own cgroup,
//! containers, the daemon) is removed at the end, also on failure.

mod api;
mod daemon;
mod machine;
mod monitors;
mod oci;
mod proc;
mod report;
mod scale;
mod stats;

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use zctr_tests::{bins, Rootfs, TempDir, TestCgroup};

/// How much of everything: the full run, or CI's smoke mode.
struct Sizes {
    run: usize,
    lifecycle: usize,
    warmup: usize,
    monitors: usize,
    log_mib: usize,
    log_runs: usize,
    scale: usize,
    clients: Vec<usize>,
}

impl Sizes {
    fn new(smoke: bool) -> Self {
        if smoke {
            Sizes {
                run: 3,
                lifecycle: 2,
                warmup: 1,
                monitors: 2,
                log_mib: 16,
                log_runs: 1,
                scale: 6,
                clients: vec![1, 3],
            }
        } else {
            Sizes {
                run: 100,
                lifecycle: 20,
                warmup: 3,
                monitors: 10,
                log_mib: 512,
                log_runs: 3,
                scale: 1000,
                clients: vec![1, 8, 32],
            }
        }
    }
}

struct Args {
    smoke: bool,
    /// Containers in the scale part, instead of the mode's number.
    scale: Option<usize>,
    out: PathBuf,
    json: PathBuf,
    bin_dir: PathBuf,
}

fn parse_args(a: &[String]) -> Result<Args> {
    let mut args = Args {
        smoke: false,
        scale: None,
        out: "docs/benchmarks.md".into(),
        json: "bench/results.json".into(),
        bin_dir: bins::bin_dir(),
    };
    let mut it = a.iter();
    while let Some(x) = it.next() {
        let mut val = || it.next().cloned().context(format!("{x} needs a value"));
        match x.as_str() {
            "--smoke" => args.smoke = true,
            "--out" => args.out = val()?.into(),
            "--scale" => args.scale = Some(val()?.parse().context("--scale: a number")?),
            "--json" => args.json = val()?.into(),
            "--bin-dir" => args.bin_dir = val()?.into(),
            "-h" | "--help" => {
                println!(
                    "usage: zctr-bench [--smoke] [--scale N] [--out FILE.md] [--json FILE.json] \
                     [--bin-dir DIR]"
                );
                std::process::exit(0);
            }
            _ => bail!("unknown argument {x:?} (see --help)"),
        }
    }
    Ok(args)
}

fn main() -> Result<()> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("series") {
        let (kind, s) = oci::Series::from_args(&argv[1..])?;
        println!("{}", s.measure(kind)?);
        return Ok(());
    }
    if argv.first().map(String::as_str) == Some("report") {
        // `zctr-bench report RESULTS.json OUT.md`: the document again from
        // the raw results (after a change of the report's layout).
        let [_, json, out] = argv.as_slice() else {
            bail!("usage: zctr-bench report RESULTS.json OUT.md");
        };
        let results: Value = serde_json::from_slice(&std::fs::read(json)?)?;
        std::fs::write(out, report::markdown(&results))?;
        return Ok(());
    }
    let args = parse_args(&argv)?;
    if !Path::new("/proc/self/ns/user").exists() || !is_root() {
        bail!("run as root: the benchmark starts real containers");
    }
    let mut sizes = Sizes::new(args.smoke);
    if let Some(n) = args.scale {
        sizes.scale = n;
    }
    let mut results = Map::new();
    results.insert(
        "mode".into(),
        json!(if args.smoke { "smoke" } else { "full" }),
    );
    results.insert("machine".into(), machine::describe(&args.bin_dir));
    let failed = bench(&args, &sizes, &mut results)?;
    results.insert("loadavg_at_end".into(), json!(machine::loadavg()));
    let results = Value::Object(results);
    for p in [&args.out, &args.json] {
        if let Some(d) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d)?;
        }
    }
    std::fs::write(&args.json, serde_json::to_string_pretty(&results)? + "\n")?;
    std::fs::write(&args.out, report::markdown(&results))?;
    eprintln!(
        "zctr-bench: wrote {} and {}",
        args.out.display(),
        args.json.display()
    );
    if failed > 0 {
        bail!("{failed} section(s) failed (see the \"error\" entries)");
    }
    Ok(())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|v| v.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Records a section's result, or its error (and counts it).
fn section(results: &mut Map<String, Value>, failed: &mut usize, name: &str, r: Result<Value>) {
    let load = machine::loadavg();
    eprintln!("zctr-bench: {name} done ({load})");
    let loads = results.entry("loadavg_after").or_insert_with(|| json!({}));
    loads[name] = json!(load);
    let v = r.unwrap_or_else(|e| {
        eprintln!("zctr-bench: {name} FAILED: {e:#}");
        *failed += 1;
        json!({"error": format!("{e:#}")})
    });
    results.insert(name.into(), v);
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

fn bench(args: &Args, sizes: &Sizes, results: &mut Map<String, Value>) -> Result<usize> {
    let bin = &args.bin_dir;
    for b in ["zctr", "zctr-shim", "zctr-shim-monitor", "zctr-probe"] {
        if !bin.join(b).is_file() {
            bail!("{}/{b} missing: run scripts/build-static.sh", bin.display());
        }
    }
    let work = TempDir::new("zctr-bench")?;
    let cg = TestCgroup::new()?;
    let rel = cg.relative_path().to_string();
    let rootfs = Rootfs::with_probe(work.join("rootfs"), &bin.join("zctr-probe"))?;
    rootfs.with_busybox()?;
    let rootfs = rootfs.path().to_path_buf();
    let mut failed = 0;

    // Run to exit and the lifecycle, per runtime.
    let mut run = Map::new();
    let mut life = Map::new();
    let zctr_oci = bin.join("zctr-oci");
    let runtimes: Vec<(&str, Option<PathBuf>, bool)> = vec![
        ("zctr-shim run", Some(bin.join("zctr-shim")), true),
        (
            "zctr-oci",
            zctr_oci.is_file().then(|| zctr_oci.clone()),
            false,
        ),
        ("runc", which("runc"), false),
        ("crun", which("crun"), false),
    ];
    for (name, path, shim) in &runtimes {
        let Some(path) = path else {
            let why = if *name == "zctr-oci" {
                "not built"
            } else {
                "not installed"
            };
            run.insert(name.to_string(), json!({"absent": why}));
            if !shim {
                life.insert(name.to_string(), json!({"absent": why}));
            }
            continue;
        };
        let tag = name.split_whitespace().next().unwrap_or(name);
        let dir = work.join(format!("{tag}-bundles"));
        let s = oci::Series {
            runtime: path.clone(),
            shim: *shim,
            root: work.join(format!("{tag}-state")),
            true_bundle: oci::bundle(
                &dir.join("true"),
                &rootfs,
                &["/bin/true"],
                &format!("{rel}/{tag}"),
            )?,
            sleep_bundle: oci::bundle(
                &dir.join("sleep"),
                &rootfs,
                &["/bin/sleep", "1000000"],
                &format!("{rel}/{tag}"),
            )?,
            n: sizes.run,
            warmup: sizes.warmup,
            prefix: format!("b{tag}"),
        };
        let private = *name == "crun" && machine::unified_mounted();
        eprintln!("zctr-bench: {name}: run to exit x{}", sizes.run);
        let r = s
            .measure_in_child(oci::Kind::Run, private)
            .map(|v| stats::samples("ms", &floats(&v["run"])));
        record(&mut run, &mut failed, name, r);
        if !shim {
            eprintln!("zctr-bench: {name}: lifecycle x{}", sizes.lifecycle);
            let s = oci::Series {
                n: sizes.lifecycle,
                ..s
            };
            let r = s.measure_in_child(oci::Kind::Lifecycle, private).map(steps);
            record(&mut life, &mut failed, name, r);
        }
    }

    // The daemon: run --rm (one API round trip), the lifecycle through the
    // CLI, then the scale, memory and restart figures.
    let mut d = daemon::Daemon::new(bin, &work.join("daemon"), &format!("{rel}/daemon"));
    d.start()?;
    let rootfs_s = rootfs.to_string_lossy().into_owned();
    eprintln!("zctr-bench: zctr run --rm x{}", sizes.run);
    let r = (0..sizes.warmup + sizes.run)
        .map(|i| {
            proc::timed(d.cli().args([
                "run",
                "--rm",
                &format!("r{i}"),
                "--rootfs",
                &rootfs_s,
                "--",
                "/bin/true",
            ]))
        })
        .collect::<Result<Vec<f64>>>()
        .map(|v| stats::samples("ms", &v[sizes.warmup..]));
    record(&mut run, &mut failed, "zctr run --rm (daemon)", r);
    // The same call straight from this process: the daemon's part alone,
    // with the default profile and with the privileged one (no user
    // namespace, no idmapped mounts).
    for profile in ["unprivileged", "privileged"] {
        let r = api_run_wait(&d, &rootfs, profile, sizes);
        let name = format!("POST ?wait&rm, {profile} (daemon, no client process)");
        record(&mut run, &mut failed, &name, r);
    }
    eprintln!("zctr-bench: zctr lifecycle x{}", sizes.lifecycle);
    let r = daemon_lifecycle(&d, &rootfs_s, sizes).map(steps);
    record(&mut life, &mut failed, "zctr (daemon)", r);

    let r = (0..sizes.warmup + sizes.run)
        .map(|_| {
            proc::timed(Command::new("unshare").args(["-Upmiu", "--net", "--fork", "/bin/true"]))
        })
        .collect::<Result<Vec<f64>>>()
        .map(|v| stats::samples("ms", &v[sizes.warmup..]));
    record(
        &mut run,
        &mut failed,
        "unshare -Upmiu --net --fork (floor)",
        r,
    );
    section(results, &mut failed, "run_to_exit", Ok(Value::Object(run)));
    section(results, &mut failed, "lifecycle", Ok(Value::Object(life)));

    eprintln!(
        "zctr-bench: scale x{} with {:?} clients",
        sizes.scale, sizes.clients
    );
    let r = scale::run(&mut d, &rootfs, sizes.scale, &sizes.clients);
    section(results, &mut failed, "scale", r);
    d.teardown();

    let m = monitors::Setup {
        shim: bin.join("zctr-shim"),
        work: work.join("monitors"),
        rootfs: rootfs.clone(),
        cgroup: format!("{rel}/monitors"),
    };
    std::fs::create_dir_all(&m.work)?;
    let conmon = which("conmon").is_some();
    let mut mem = Map::new();
    eprintln!("zctr-bench: idle monitors x{}", sizes.monitors);
    record(
        &mut mem,
        &mut failed,
        "zctr-shim-monitor",
        m.idle_memory(sizes.monitors, false),
    );
    let r = if conmon {
        m.idle_memory(sizes.monitors, true)
    } else {
        Ok(json!({"absent": "not installed"}))
    };
    record(&mut mem, &mut failed, "conmon (runc)", r);
    section(
        results,
        &mut failed,
        "monitor_memory",
        Ok(Value::Object(mem)),
    );

    let mut logs = Map::new();
    eprintln!(
        "zctr-bench: log throughput {} MiB x{}",
        sizes.log_mib, sizes.log_runs
    );
    let r = m.log_throughput(sizes.log_mib, sizes.log_runs, false);
    record(&mut logs, &mut failed, "zctr-shim-monitor", r);
    let r = if conmon {
        m.log_throughput(sizes.log_mib, sizes.log_runs, true)
    } else {
        Ok(json!({"absent": "not installed"}))
    };
    record(&mut logs, &mut failed, "conmon (runc)", r);
    section(
        results,
        &mut failed,
        "log_throughput",
        Ok(Value::Object(logs)),
    );

    drop(d);
    // A leftover is a failure of the run, but the figures are still written.
    let cleanup = cg
        .remove()
        .context("removing the benchmark's cgroups")
        .and_then(|()| work.remove().context("removing the work directory"));
    if let Err(e) = cleanup {
        eprintln!("zctr-bench: cleanup FAILED: {e:#}");
        results.insert("cleanup_error".into(), json!(format!("{e:#}")));
        failed += 1;
    }
    Ok(failed)
}

fn record(m: &mut Map<String, Value>, failed: &mut usize, name: &str, r: Result<Value>) {
    let v = r.unwrap_or_else(|e| {
        eprintln!("zctr-bench: {name} FAILED: {e:#}");
        *failed += 1;
        json!({"error": format!("{e:#}")})
    });
    m.insert(name.into(), v);
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_f64)
        .collect()
}

/// `{"create": [ms...], ...}` to a summary per step.
fn steps(v: Value) -> Value {
    let mut out = Map::new();
    for (k, xs) in v.as_object().into_iter().flatten() {
        out.insert(k.clone(), stats::samples("ms", &floats(xs)));
    }
    Value::Object(out)
}

/// `POST /v1/containers?wait=true&rm=true` of /bin/true from this process.
fn api_run_wait(d: &daemon::Daemon, rootfs: &Path, profile: &str, sizes: &Sizes) -> Result<Value> {
    let api = d.api();
    let mut ms = Vec::new();
    for i in 0..sizes.warmup + sizes.run {
        let id = format!("a-{profile}-{i}");
        let config = json!({"rootfs": rootfs, "args": ["/bin/true"], "profile": profile});
        let body = json!({"id": id, "config": config});
        let t0 = std::time::Instant::now();
        let v = api.call("POST", "/v1/containers?wait=true&rm=true", Some(&body))?;
        if v["exit"]["exit_code"] != 0 {
            bail!("{id}: {v}");
        }
        if i >= sizes.warmup {
            ms.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(stats::samples("ms", &ms))
}

/// create, start, pause, resume, kill, delete through the `zctr` CLI.
fn daemon_lifecycle(d: &daemon::Daemon, rootfs: &str, sizes: &Sizes) -> Result<Value> {
    let mut out: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    for i in 0..sizes.warmup + sizes.lifecycle {
        let id = format!("l{i}");
        let mut one = Vec::new();
        let mut step = |name: &'static str, a: &[&str]| -> Result<()> {
            one.push((name, proc::timed(d.cli().args(a))?));
            Ok(())
        };
        step(
            "create",
            &[
                "create",
                &id,
                "--rootfs",
                rootfs,
                "--",
                "/bin/sleep",
                "1000000",
            ],
        )?;
        step("start", &["start", &id])?;
        step("pause", &["pause", &id])?;
        step("resume", &["resume", &id])?;
        step("kill", &["kill", &id, "KILL"])?;
        // Not timed: until the exit is recorded.
        let _ = proc::output(d.cli().args(["wait", &id]));
        step("delete", &["delete", &id])?;
        if i >= sizes.warmup {
            for (k, v) in one {
                out.entry(k).or_default().push(v);
            }
        }
    }
    Ok(json!(out))
}
