//! `cai run --engine slurm` against a real Slurm cluster: the one-node cluster
//! `scripts/slurm-local.sh start` runs on this machine (as `./scripts/test.sh` and CI do). The
//! same payload on Slurm gives the local run's predictions sample for sample; a rank killed
//! mid-partition is retried as a job of its own; a rank over its `--mem` ends as
//! `Runtime.OutOfMemory` and `--resume` recomputes only it; Ctrl-C cancels the jobs; every
//! sample is counted once throughout. Without `sinfo` the tests skip with a note, except
//! under CI, where they fail. They take the cluster in turn (a lock), as they share its cores.

use crate::common_lambda;
use crate::common_workflow;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common_workflow::{cai, failed_rank, infer_invocations, Env, Out};
use serde_json::{json, Value};

static CLUSTER: Mutex<()> = Mutex::new(());

/// The cluster, held for one test; None (with a note) when there is none outside CI.
fn cluster() -> Option<MutexGuard<'static, ()>> {
    let guard = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let ok = Command::new("sinfo")
        .args(["--noheader", "--format=%T"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(guard);
    }
    if std::env::var_os("CI").is_some() {
        panic!("no Slurm cluster (sinfo fails): run the tests through ./scripts/test.sh, which starts scripts/slurm-local.sh");
    }
    eprintln!("skipped: no Slurm cluster (`scripts/slurm-local.sh install && scripts/slurm-local.sh start`, then source ~/.cache/cai-tools/slurm/env)");
    None
}

/// `cai run --engine slurm` of a payload, one CPU a job.
fn run_slurm(env: &Env, payload: &Value, extra: &[&str], fault: Option<&str>) -> Out {
    let path = env.payload_file(&serde_json::to_string_pretty(payload).unwrap());
    let store = env.store();
    let scratch = env.scratch();
    let mut args = vec![
        "run",
        path.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        "--engine",
        "slurm",
        "--threads",
        "1",
        "-q",
    ];
    args.extend_from_slice(extra);
    let mut vars = vec![("CAI_SCRATCH", scratch.to_str().unwrap())];
    if let Some(f) = fault {
        vars.push(("CAI_FAULT", f));
    }
    cai(&args, &vars)
}

/// The cluster side of a summary: `execution.cluster.jobs`.
fn jobs(summary: &Value) -> Vec<Value> {
    summary["execution"]["cluster"]["jobs"]
        .as_array()
        .unwrap_or_else(|| panic!("no execution.cluster in {}", summary["execution"]))
        .clone()
}

/// Ranks that got an inference job.
fn ranks_with_jobs(summary: &Value) -> BTreeSet<u64> {
    jobs(summary)
        .iter()
        .filter(|j| j["handler"] == "infer")
        .map(|j| j["rank"].as_u64().unwrap())
        .collect()
}

/// The spool of a run, when it was kept.
fn spool_dirs(env: &Env) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(env.store().join(".cai-slurm"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn slurm_run_equals_the_local_run_sample_for_sample() {
    let Some(_cluster) = cluster() else { return };
    let env = Env::new(6, 10);
    let extra = json!({"max_concurrency": 2});
    env.run(&env.payload("res/local", extra.clone()), &[], None)
        .expect_code(0);
    let local = env.assert_every_sample_once("res/local");

    let out = run_slurm(&env, &env.payload("res/slurm", extra), &[], None);
    out.expect_code(0);
    let slurm = env.assert_every_sample_once("res/slurm");
    assert_eq!(slurm.len(), 60);
    assert!(
        slurm == local,
        "the Slurm run's predictions differ from the local run's"
    );
    assert!(out.stdout.contains("Core-hours"), "{}", out.stdout);
    assert!(out.stdout.contains("Slurm jobs"), "{}", out.stdout);

    let summary = env.json("res/slurm", "summary.json");
    let jobs = jobs(&summary);
    let infer: Vec<&Value> = jobs.iter().filter(|j| j["handler"] == "infer").collect();
    assert_eq!(infer.len(), 6, "{jobs:?}");
    // One array for the Map, its task ids the ranks; Summarize a job of its own.
    let arrays: BTreeSet<&str> = infer
        .iter()
        .map(|j| j["job_id"].as_str().unwrap().split_once('_').unwrap().0)
        .collect();
    assert_eq!(arrays.len(), 1, "{infer:?}");
    for j in &infer {
        let rank = j["rank"].as_u64().unwrap();
        assert!(
            j["job_id"].as_str().unwrap().ends_with(&format!("_{rank}")),
            "{j}"
        );
        assert_eq!(j["state"], "COMPLETED", "{j}");
        assert!(j["queued_seconds"].as_f64().is_some(), "{j}");
    }
    assert_eq!(
        jobs.iter().filter(|j| j["handler"] == "summarize").count(),
        1
    );
    let cluster = &summary["execution"]["cluster"];
    assert_eq!(cluster["scheduler"], "slurm");
    assert!(cluster["core_hours"].as_f64().unwrap() > 0.0, "{cluster}");
    // Every rank result names its job, array task (its rank) and node.
    let array: u64 = arrays.into_iter().next().unwrap().parse().unwrap();
    for rank in 0..6u64 {
        let r = env.json("res/slurm", &format!("{rank}.json"));
        assert_eq!(r["slurm_array_job_id"], array, "{r}");
        assert_eq!(r["slurm_array_task_id"], rank, "{r}");
        assert!(r["slurm_job_id"].as_u64().is_some(), "{r}");
        assert!(
            r["slurm_node"].as_str().is_some_and(|n| !n.is_empty()),
            "{r}"
        );
        let local = env.json("res/local", &format!("{rank}.json"));
        assert!(local.get("slurm_job_id").is_none(), "{local}");
    }
    assert!(spool_dirs(&env).is_empty(), "a clean run removes its spool");
}

#[test]
fn slurm_kill_mid_partition_is_retried_as_a_job_of_its_own() {
    let Some(_cluster) = cluster() else { return };
    let env = Env::new(4, 10);
    let rp = "res/kill";
    let out = run_slurm(&env, &env.payload(rp, json!({})), &[], Some("kill@1#1"));
    out.expect_code(0);
    env.assert_every_sample_once(rp);
    let summary = env.json(rp, "summary.json");
    assert_eq!(
        infer_invocations(&summary, 1),
        [(1, "Runtime.ExitError".to_string()), (2, "ok".to_string())]
    );
    for other in [0, 2, 3] {
        assert_eq!(infer_invocations(&summary, other), [(1, "ok".to_string())]);
    }
    let r1 = env.json(rp, "1.json");
    assert_eq!(r1["attempts"], 2, "{r1}");
    // The retry ran as a plain job, not in the array.
    assert!(r1.get("slurm_array_task_id").is_none(), "{r1}");
    assert!(r1["slurm_job_id"].as_u64().is_some(), "{r1}");
    let rank1: Vec<Value> = jobs(&summary)
        .into_iter()
        .filter(|j| j["rank"] == 1)
        .collect();
    assert_eq!(rank1.len(), 2, "{rank1:?}");
    assert_eq!(
        (rank1[0]["attempt"].clone(), rank1[0]["state"].clone()),
        (json!(1), json!("FAILED"))
    );
    assert_eq!(
        (rank1[1]["attempt"].clone(), rank1[1]["state"].clone()),
        (json!(2), json!("COMPLETED"))
    );
}

#[test]
fn slurm_timeout_is_states_timeout_and_retried() {
    let Some(_cluster) = cluster() else { return };
    let env = Env::new(3, 10);
    let rp = "res/hang";
    let payload = env.payload(rp, json!({"timeout_seconds": 3}));
    let out = run_slurm(&env, &payload, &[], Some("hang@0#1"));
    out.expect_code(0);
    env.assert_every_sample_once(rp);
    let summary = env.json(rp, "summary.json");
    assert_eq!(
        infer_invocations(&summary, 0),
        [(1, "States.Timeout".to_string()), (2, "ok".to_string())]
    );
}

#[test]
fn slurm_out_of_memory_is_not_retried_and_resume_recomputes_only_that_rank() {
    let Some(_cluster) = cluster() else { return };
    let env = Env::new(6, 10);
    let rp = "res/oom";
    let payload = env.payload(rp, json!({"memory_mb": 300, "tolerated_failure_count": 1}));
    let out = run_slurm(&env, &payload, &[], Some("oom@3"));
    out.expect_code(3);
    assert!(out.stdout.contains("FAILED rank 3"), "{}", out.stdout);
    let first = env.json(rp, "summary.json");
    let failed = failed_rank(&first, 3);
    assert_eq!(failed["error"], "Runtime.OutOfMemory", "{failed}");
    assert_eq!(failed["attempts"], 1, "never retried: {failed}");
    assert_eq!(first["totals"]["samples"], 50);
    let oom: Vec<Value> = jobs(&first)
        .into_iter()
        .filter(|j| j["rank"] == 3)
        .collect();
    assert_eq!(oom.len(), 1, "{oom:?}");
    // cgroup enforcement ends the job OUT_OF_MEMORY; the accounting poller (slurm-local.sh's
    // fallback, CAI_SLURM_MEMORY=poll) kills it as FAILED and says why in its log.
    let want = match std::env::var("CAI_SLURM_MEMORY").as_deref() {
        Ok("poll") => "FAILED",
        _ => "OUT_OF_MEMORY",
    };
    assert_eq!(
        oom[0]["state"], want,
        "Slurm enforced --mem=300M: {}",
        oom[0]
    );
    assert_eq!(
        spool_dirs(&env).len(),
        1,
        "a run with a failure keeps its spool"
    );

    let res = env.results(rp);
    let before: Vec<Vec<u8>> = [0, 1, 2, 4, 5]
        .iter()
        .map(|r| std::fs::read(res.join(format!("predictions/{r}.parquet"))).unwrap())
        .collect();
    let out = run_slurm(&env, &payload, &["--resume"], None);
    out.expect_code(0);
    env.assert_every_sample_once(rp);
    let second = env.json(rp, "summary.json");
    assert_eq!(second["ranks"]["resumed"], 5, "{}", second["ranks"]);
    assert_eq!(second["totals"]["samples"], 60);
    assert_eq!(
        ranks_with_jobs(&second),
        BTreeSet::from([3]),
        "only rank 3 is a job"
    );
    let after: Vec<Vec<u8>> = [0, 1, 2, 4, 5]
        .iter()
        .map(|r| std::fs::read(res.join(format!("predictions/{r}.parquet"))).unwrap())
        .collect();
    assert!(after == before, "a kept rank was recomputed");
    assert_eq!(env.json(rp, "3.json")["run_id"], second["run_id"]);
}

/// Jobs of the cluster named `name` that have not finished.
fn open_jobs(name: &str) -> Vec<String> {
    let out = Command::new("squeue")
        .args(["--noheader", "--format=%i %T", &format!("--name={name}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.trim().is_empty())
        .collect()
}

#[test]
fn slurm_ctrl_c_cancels_the_jobs_and_resume_finishes_the_run() {
    let Some(_cluster) = cluster() else { return };
    let env = Env::new(4, 10);
    let rp = "res/interrupt";
    let payload = env.payload(rp, json!({}));
    let name = format!("cai-interrupt-{}", std::process::id());
    let mut child = spawn_slurm(&env, &payload, &name, "hang@0#1,hang@1#1,hang@2#1,hang@3#1");
    let job_name = format!("{name}-infer");
    wait_for_job(&mut child, &job_name, |l| l.contains("RUNNING"));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("cancelled Slurm job") && stderr.contains("--resume"),
        "{stderr}"
    );
    let t = Instant::now();
    loop {
        let open = open_jobs(&job_name);
        if open.is_empty() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "still queued or running: {open:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!env.results(rp).join("summary.json").exists());

    let out = run_slurm(&env, &payload, &["--resume"], None);
    out.expect_code(0);
    env.assert_every_sample_once(rp);
    assert_eq!(env.json(rp, "summary.json")["totals"]["samples"], 40);
}

/// Sets a node back to service when dropped, however the test ends.
struct NodeBack(String);

impl Drop for NodeBack {
    fn drop(&mut self) {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(60) {
            // With ReturnToService=2 slurmd's next registration may do it first; then this
            // update is refused and the loop just sees the node idle.
            let _ = Command::new("scontrol")
                .args(["update", &format!("nodename={}", self.0), "state=resume"])
                .output();
            let state = Command::new("sinfo")
                .args([
                    "--noheader",
                    "--Node",
                    "--format=%T",
                    &format!("--nodes={}", self.0),
                ])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default();
            if state == "idle" || state == "mixed" || state == "allocated" {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        eprintln!(
            "node {} did not come back: scontrol update nodename={} state=resume",
            self.0, self.0
        );
    }
}

/// Starts `cai run --engine slurm` in the background under execution name `name`.
fn spawn_slurm(env: &Env, payload: &Value, name: &str, fault: &str) -> std::process::Child {
    let path = env.payload_file(&serde_json::to_string_pretty(payload).unwrap());
    Command::new(env!("CARGO_BIN_EXE_cai"))
        .args(["run", path.to_str().unwrap(), "--store"])
        .arg(env.store())
        .args(["--engine", "slurm", "--threads", "1", "-q", "--name", name])
        .env("CAI_SCRATCH", env.scratch())
        .env("CAI_FAULT", fault)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until a job line of `job_name` matching `want` shows in squeue.
fn wait_for_job(child: &mut std::process::Child, job_name: &str, want: impl Fn(&str) -> bool) {
    let t = Instant::now();
    while !open_jobs(job_name).iter().any(|l| want(l)) {
        assert!(t.elapsed() < Duration::from_secs(60), "no such job in 60 s");
        assert!(child.try_wait().unwrap().is_none(), "cai ended early");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn slurm_node_failure_is_retried() {
    let Some(_cluster) = cluster() else { return };
    let env = Env::new(3, 10);
    let rp = "res/nodefail";
    let name = format!("cai-nodefail-{}", std::process::id());
    let mut child = spawn_slurm(&env, &env.payload(rp, json!({})), &name, "hang@1#1");
    wait_for_job(&mut child, &format!("{name}-infer"), |l| {
        l.contains("_1 ") && l.contains("RUNNING")
    });
    let node = Command::new("sinfo")
        .args(["--noheader", "--Node", "--format=%N"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap();
    {
        let _back = NodeBack(node.clone());
        let down = Command::new("scontrol")
            .args([
                "update",
                &format!("nodename={node}"),
                "state=down",
                "reason=cai-test",
            ])
            .output()
            .unwrap();
        assert!(down.status.success(), "{down:?}");
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.assert_every_sample_once(rp);
    let summary = env.json(rp, "summary.json");
    assert_eq!(
        infer_invocations(&summary, 1),
        [
            (1, "Lambda.ServiceException".to_string()),
            (2, "ok".to_string())
        ]
    );
    let failed: Vec<Value> = jobs(&summary)
        .into_iter()
        .filter(|j| j["rank"] == 1 && j["attempt"] == 1)
        .collect();
    assert_eq!(failed[0]["state"], "NODE_FAIL", "{failed:?}");
}

/// s3s-fs serving a folder as S3 on 127.0.0.1, stopped when dropped.
struct S3Server {
    child: std::process::Child,
    endpoint: String,
}

impl S3Server {
    /// None (with a note) outside CI when s3s-fs is not installed.
    fn start(root: &Path) -> Option<S3Server> {
        let bin = common_lambda::tool("CAI_TEST_S3S_FS")?;
        let port = common_lambda::free_port();
        let child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", common_lambda::ACCESS_KEY])
            .args(["--secret-key", common_lambda::SECRET_KEY])
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "s3s-fs did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn slurm_with_an_s3_store_and_with_a_user_definition() {
    let Some(_cluster) = cluster() else { return };
    let env = Env::new(3, 8);
    let Some(s3) = S3Server::start(&env.store()) else {
        return;
    };
    let vars = common_lambda::s3_env(&s3.endpoint);
    let mut vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (&k[..], &v[..])).collect();
    let scratch = env.scratch();
    vars.push(("CAI_SCRATCH", scratch.to_str().unwrap()));
    let spool = env.dir.path().join("spool");
    let run = |rp: &str, extra: &[&str]| {
        let path = env.payload_file(&serde_json::to_string(&env.payload(rp, json!({}))).unwrap());
        let mut args = vec!["run", path.to_str().unwrap(), "--store", "s3"];
        args.extend_from_slice(&[
            "--engine",
            "slurm",
            "-q",
            "--spool",
            spool.to_str().unwrap(),
        ]);
        args.extend_from_slice(extra);
        cai(&args, &vars)
    };
    // The store is S3 (the nodes reach it through the exported AWS environment); the Map is
    // one array.
    run("res/s3", &[]).expect_code(0);
    let through_s3 = env.assert_every_sample_once("res/s3");
    let summary = env.json("res/s3", "summary.json");
    assert!(jobs(&summary)
        .iter()
        .filter(|j| j["handler"] == "infer")
        .all(|j| j["job_id"].as_str().unwrap().contains('_')));

    // A user-edited definition: the events cannot be known in advance, so every rank is a
    // job of its own; the results are the same.
    let path =
        env.payload_file(&serde_json::to_string(&env.payload("res/def", json!({}))).unwrap());
    let asl = cai(&["asl", path.to_str().unwrap()], &[]);
    asl.expect_code(0);
    let def = env.dir.path().join("definition.json");
    std::fs::write(&def, &asl.stdout).unwrap();
    run("res/def", &["--definition", def.to_str().unwrap()]).expect_code(0);
    assert!(env.assert_every_sample_once("res/def") == through_s3);
    let summary = env.json("res/def", "summary.json");
    let infer: Vec<Value> = jobs(&summary)
        .into_iter()
        .filter(|j| j["handler"] == "infer")
        .collect();
    assert_eq!(infer.len(), 3);
    assert!(
        infer
            .iter()
            .all(|j| !j["job_id"].as_str().unwrap().contains('_')),
        "{infer:?}"
    );
    assert!(env
        .json("res/def", "0.json")
        .get("slurm_array_task_id")
        .is_none());
}

#[test]
fn slurm_flags_need_the_slurm_engine_and_the_engine_needs_a_cluster() {
    let env = Env::new(1, 4);
    let payload = env.payload("res/flags", json!({}));
    let out = env.run(&payload, &["--partition", "cpu"], None);
    out.expect_code(2);
    assert!(out.stderr.contains("--engine slurm"), "{}", out.stderr);
    let path = env.payload_file(&serde_json::to_string(&payload).unwrap());
    let store = env.store();
    let args = [
        "run",
        path.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        "--engine",
        "slurm",
        "--concurrency",
        "2",
    ];
    let out = cai(&args, &[]);
    out.expect_code(2);
    assert!(out.stderr.contains("max_concurrency"), "{}", out.stderr);
    // Without Slurm's commands on PATH the run is refused before any work, saying why.
    let out = cai(&args[..6], &[("PATH", "/nonexistent")]);
    out.expect_code(2);
    assert!(out.stderr.contains("sbatch"), "{}", out.stderr);
    assert!(!Path::new(&env.results("res/flags")).exists());
}
