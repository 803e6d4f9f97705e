//! A run owns its results: two runs of one payload at once (locally, over S3, through the
//! Lambda emulator) leave one complete, correct run and one refused naming the holder; a
//! killed run's lease is taken over by `--resume`; `--break-lease` takes a live one; and bad
//! weights fail Initialize before any rank is invoked.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common_lambda;
use crate::common_workflow;

use cai_workflow::lease::{self, HolderKind, LeaseRecord};
use common_workflow::{read_json, walk, Env, Out, BUCKET};
use serde_json::{json, Value};

/// `cai run` of a payload file, started but not waited for, with the same flags as
/// [`Env::run_file`] (two invocations at a time, one thread each).
fn spawn_run(env: &Env, payload: &Path, extra: &[&str], vars: &[(String, String)]) -> Child {
    let store = env.store();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cai"));
    cmd.arg("run")
        .arg(payload)
        .args(["--concurrency", "2", "--threads", "1", "-q"])
        .args(extra)
        .env_remove("RUST_LOG")
        .env_remove("CAI_FAULT")
        .env("CAI_SCRATCH", env.scratch())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if !extra.contains(&"--store") {
        cmd.arg("--store").arg(&store);
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start cai run")
}

/// Waits for a spawned run (at most 5 minutes).
fn finish(child: Child) -> Out {
    let out = child.wait_with_output().expect("wait for cai run");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// When the second run starts.
#[derive(Clone, Copy, PartialEq)]
enum Start {
    /// Right after the first: both race for the lease (which only an atomic create decides).
    Together,
    /// Once the first holds the lease: S3 stand-ins check `If-None-Match` and then write,
    /// not atomically (s3s-fs and moto both), so two creates in the same instant can both
    /// succeed there; real S3 decides it atomically. (Should it happen, Initialize still
    /// refuses the run whose lease is not the one in place, before it writes anything.)
    AfterLease,
}

/// Starts the same run twice, the second as `start` says, with `result_path` `rp`; returns
/// (winner, refused, winner's pid).
fn race(
    env: &Env,
    rp: &str,
    payload: &Path,
    extra: &[&str],
    vars: &[(String, String)],
    start: Start,
) -> (Out, Out, u32) {
    let a = spawn_run(env, payload, extra, vars);
    if start == Start::AfterLease {
        let t = Instant::now();
        while !env.results(rp).join("lease.json").exists() {
            assert!(t.elapsed() < Duration::from_secs(60), "no lease after 60 s");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let b = spawn_run(env, payload, extra, vars);
    let (pa, pb) = (a.id(), b.id());
    let (a, b) = (finish(a), finish(b));
    match (a.code, b.code) {
        (0, 2) => (a, b, pa),
        (2, 0) => (b, a, pb),
        _ => panic!(
            "want one run to succeed and one to be refused (exit 2); got {} and {}\n--- a stdout\n{}\n--- a stderr\n{}\n--- b stdout\n{}\n--- b stderr\n{}",
            a.code, b.code, a.stdout, a.stderr, b.stdout, b.stderr
        ),
    }
}

/// The refused run's message names the result path, the holder and what to do.
fn assert_refused_by(refused: &Out, result: &str, holder: &str) {
    let e = &refused.stderr;
    assert!(
        e.contains(&format!("result path {BUCKET}/{result} is in use by run ")),
        "{e}"
    );
    assert!(e.contains(holder), "want {holder:?} in: {e}");
    assert!(e.contains("lease valid until"), "{e}");
    assert!(e.contains("--break-lease"), "{e}");
    assert!(
        refused.stdout.is_empty(),
        "the refused run printed a report: {}",
        refused.stdout
    );
}

/// The winner's run id, from the summary, and a check that every rank result is that run's
/// (or, resumed, one of the `earlier` runs').
fn assert_one_run(env: &Env, rp: &str, earlier: &[&str]) -> String {
    env.assert_every_sample_once(rp);
    let summary = env.json(rp, "summary.json");
    let run_id = summary["run_id"].as_str().unwrap().to_string();
    let mut resumed = 0;
    for r in summary["execution"]["invocations"].as_array().unwrap() {
        if r["handler"] == "infer" && r["outcome"] == "ok" {
            let rank = r["rank"].as_u64().unwrap();
            let of = env.json(rp, &format!("{rank}.json"))["run_id"].clone();
            if of != run_id.as_str() {
                assert!(earlier.iter().any(|e| of == *e), "rank {rank} of run {of}");
                resumed += 1;
            }
        }
    }
    assert_eq!(summary["ranks"]["resumed"], resumed, "{}", summary["ranks"]);
    assert!(
        !env.results(rp).join("lease.json").exists(),
        "the lease was not released"
    );
    run_id
}

/// A payload that keeps a run busy for a few seconds: rank 1's first attempt hangs until its
/// 3 s timeout, then its retry succeeds.
fn slow(env: &Env, rp: &str, files: usize) -> PathBuf {
    let payload = env.payload(
        rp,
        json!({"world_size": files, "timeout_seconds": 3,
               "retry": {"max_attempts": 1, "interval_seconds": 1, "jitter": "NONE"}}),
    );
    env.payload_file(&serde_json::to_string_pretty(&payload).unwrap())
}

fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn two_runs_of_one_payload_at_once_one_completes_and_the_other_is_refused() {
    let env = Env::new(4, 5);
    let rp = "res/twice";
    let payload = slow(&env, rp, 4);
    let faults = vars(&[("CAI_FAULT", "hang@1#1")]);
    let (won, refused, pid) = race(&env, rp, &payload, &[], &faults, Start::Together);
    assert_refused_by(&refused, rp, &format!("pid {pid} on host "));
    assert!(won.stdout.contains("Succeeded"), "{}", won.stdout);
    let run_id = assert_one_run(&env, rp, &[]);
    assert!(refused.stderr.contains(&run_id), "{}", refused.stderr);
    let summary = env.json(rp, "summary.json");
    assert_eq!(summary["status"], "succeeded");
    assert_eq!(summary["ranks"]["succeeded"], 4);
    assert_eq!(summary["totals"]["samples"], 20);

    // Once it is done, the next run may go.
    env.run_file(&payload, &[], None).expect_code(0);
    assert_ne!(assert_one_run(&env, rp, &[]), run_id);
}

/// Writes a lease for another run into the local store, as if that run were running.
fn plant_lease(env: &Env, rp: &str, record: &LeaseRecord) {
    let path = env.results(rp).join("lease.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_vec_pretty(record).unwrap()).unwrap();
}

fn foreign_lease(rp: &str, pid: Option<u32>, execution: Option<&str>, ttl: u64) -> LeaseRecord {
    let now = lease::now_unix();
    LeaseRecord {
        run_id: "someone-else".into(),
        holder: if execution.is_some() {
            HolderKind::Aws
        } else {
            HolderKind::Local
        },
        host: lease::this_host(),
        pid,
        pid_started: pid.and_then(lease::process_start),
        execution: execution.map(String::from),
        renews: pid.is_some(),
        started: lease::rfc3339(now),
        started_unix: now,
        expires: lease::rfc3339(now + ttl),
        expires_unix: now + ttl,
        result: format!("{BUCKET}/{rp}"),
        took_over: None,
        cai_version: "test".into(),
    }
}

#[test]
fn a_live_lease_is_only_broken_by_break_lease() {
    let env = Env::new(2, 3);
    let rp = "res/live";
    let payload = env.payload(rp, json!({}));
    // Held by a process that is certainly alive (this test).
    let holder = foreign_lease(rp, Some(std::process::id()), None, 3600);
    plant_lease(&env, rp, &holder);
    let before = walk(&env.results(rp));
    for flags in [&[][..], &["--resume"][..]] {
        let out = env.run(&payload, flags, None);
        out.expect_code(2);
        assert_refused_by(&out, rp, &format!("pid {} on host ", std::process::id()));
        assert_eq!(walk(&env.results(rp)), before, "{flags:?}");
    }
    let out = env.run(&payload, &["--break-lease"], None);
    out.expect_code(0);
    assert!(
        out.stderr
            .contains("warning: broke the lease on cosmicai-data/res/live of run someone-else"),
        "{}",
        out.stderr
    );
    assert_one_run(&env, rp, &[]);
}

#[test]
fn a_killed_runs_lease_is_taken_over_by_resume() {
    let env = Env::new(5, 4);
    let rp = "res/killed";
    let payload = env.payload(rp, json!({"world_size": 5}));
    let path = env.payload_file(&serde_json::to_string_pretty(&payload).unwrap());
    // Rank 3 hangs, so the run is surely mid-way when it is killed: kill -9 of the run, its
    // invocations included (its own process group).
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cai"));
    cmd.arg("run")
        .arg(&path)
        .arg("--store")
        .arg(env.store())
        .args(["--concurrency", "2", "--threads", "1", "-q"])
        .env_remove("RUST_LOG")
        .env("CAI_FAULT", "hang@3")
        .env("CAI_SCRATCH", env.scratch())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    let res = env.results(rp);
    let t = Instant::now();
    while !(res.join("attempts/3.json").exists() && res.join("0.json").exists()) {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "rank 3 never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signalling the process group this test started.
    assert_eq!(unsafe { libc::kill(-(pid as i32), libc::SIGKILL) }, 0);
    child.wait().unwrap();
    // Its invocations run in process groups of their own; each ends within half a second of
    // noticing its engine gone (`cai worker` watches its parent).
    std::thread::sleep(Duration::from_millis(1500));
    let held: Value = read_json(&res.join("lease.json"));
    assert_eq!(held["pid"], pid, "{held}");
    let killed_run = held["run_id"].as_str().unwrap().to_string();

    // A plain rerun is refused: the holder is gone, but only --resume may take over.
    let before = walk(&res);
    let out = env.run(&payload, &[], None);
    out.expect_code(2);
    let e = &out.stderr;
    assert!(
        e.contains(&format!(
            "result path {BUCKET}/{rp} is held by run {killed_run} (pid {pid} on host "
        )),
        "{e}"
    );
    assert!(
        e.contains(&format!("which is gone: process {pid} no longer exists")),
        "{e}"
    );
    assert!(e.contains("--resume"), "{e}");
    assert_eq!(walk(&res), before, "the refused run changed files");

    let out = env.run(&payload, &["--resume"], None);
    out.expect_code(0);
    assert!(
        out.stderr.contains(&format!(
            "warning: took over the lease on {BUCKET}/{rp} of run {killed_run} (pid {pid} on host "
        )),
        "{}",
        out.stderr
    );
    let run_id = assert_one_run(&env, rp, &[&killed_run]);
    assert_ne!(run_id, killed_run);
    let summary = env.json(rp, "summary.json");
    assert!(
        summary["ranks"]["resumed"].as_u64().unwrap() >= 1,
        "{}",
        summary["ranks"]
    );
    assert_eq!(summary["totals"]["samples"], 20);
}

/// The `Requests` cell of the performance table `cai run` prints.
fn requests(stdout: &str) -> u64 {
    let mut lines = stdout.lines().skip_while(|l| !l.contains("Requests"));
    let header = lines.next().expect("the performance table");
    let column = header
        .split('|')
        .position(|c| c.trim() == "Requests")
        .unwrap();
    lines.next(); // the rule
    let row = lines.next().expect("a table row");
    row.split('|').nth(column).unwrap().trim().parse().unwrap()
}

#[test]
fn bad_weights_fail_before_any_rank_runs() {
    let env = Env::new(3, 2);
    let models = env.bucket().join("models");
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/model");
    let pt = std::fs::read(fixtures.join("small-vitae.dataparallel.pt")).unwrap();
    std::fs::write(models.join("truncated.pt"), &pt[..1 << 20]).unwrap();
    std::fs::write(models.join("not-a-zip.pt"), vec![7u8; 4096]).unwrap();
    // A real safetensors file whose last layer is [hidden, 1] instead of [1, hidden].
    let mut raw = cai_model::weights::load_raw(&cai_model::WeightSource::File(
        fixtures.join("small-vitae.safetensors"),
    ))
    .unwrap();
    raw.tensors
        .get_mut("concat_block.2.weight")
        .unwrap()
        .shape
        .reverse();
    let blobs: Vec<(String, Vec<u8>, Vec<usize>)> = raw
        .tensors
        .iter()
        .map(|(n, t)| {
            let b = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            (n.clone(), b, t.shape.clone())
        })
        .collect();
    let views: Vec<_> = blobs
        .iter()
        .map(|(n, b, s)| {
            let v = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b);
            (n.clone(), v.unwrap())
        })
        .collect();
    safetensors::serialize_to_file(views, None, &models.join("wrong-shape.safetensors")).unwrap();

    for (name, why) in [
        ("truncated.pt", "zip archive"),
        ("not-a-zip.pt", "not a weight file"),
        (
            "wrong-shape.safetensors",
            "concat_block.2.weight: expected shape",
        ),
    ] {
        let rp = format!("res/{name}");
        let key = format!("{BUCKET}/models/{name}");
        let payload = env.payload(&rp, json!({"model": key, "world_size": 3}));
        let out = env.run(&payload, &[], None);
        out.expect_code(1);
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with("execution failed: "))
            .unwrap_or_else(|| panic!("{name}: no failure line\n{}", out.stdout));
        assert!(
            line.starts_with(&format!(
                "execution failed: cai.InvalidModel: model {key}: "
            )),
            "{line}"
        );
        let said = &out.stdout;
        assert!(said.contains(why), "{name}: {said}");
        assert_eq!(said.matches(name).count(), 1, "{name} named twice: {said}");
        assert!(!said.contains(env.store().to_str().unwrap()), "{said}");
        // Only Initialize ran: no rank was invoked, nothing was written, the lease is back.
        assert_eq!(requests(&out.stdout), 1, "{}", out.stdout);
        assert_eq!(walk(&env.results(&rp)), Default::default(), "{name}");
    }
}

/// `cai run --store s3` against s3s-fs serving the test's store folder.
fn s3_vars(endpoint: &str) -> Vec<(String, String)> {
    common_lambda::s3_env(endpoint)
}

#[test]
fn two_runs_at_once_over_s3() {
    let env = Env::new(4, 5);
    let Some(s3) = common_lambda::S3Server::start(&env.store(), &env.dir.path().join("logs"))
    else {
        return;
    };
    let rp = "res/s3";
    let payload = slow(&env, rp, 4);
    let mut v = s3_vars(&s3.endpoint);
    v.push(("CAI_FAULT".into(), "hang@1#1".into()));
    let (won, refused, pid) = race(
        &env,
        rp,
        &payload,
        &["--store", "s3"],
        &v,
        Start::AfterLease,
    );
    assert_refused_by(&refused, rp, &format!("pid {pid} on host "));
    assert!(won.stdout.contains("Succeeded"), "{}", won.stdout);
    let run_id = assert_one_run(&env, rp, &[]);
    assert!(refused.stderr.contains(&run_id), "{}", refused.stderr);
}

/// Invokes a function of the emulator directly (as a second execution's Initialize would be
/// invoked), returning the response body.
fn invoke(endpoint: &str, function: &str, event: &Value) -> Value {
    let out = Command::new("curl")
        .args(["-s", "-X", "POST", "-H", "Content-Type: application/json"])
        .arg(format!(
            "{endpoint}/2015-03-31/functions/{function}/invocations"
        ))
        .arg("--data-binary")
        .arg(event.to_string())
        .output()
        .expect("curl");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn two_executions_through_the_lambda_emulator() {
    let env = Env::new(3, 4);
    let Some(mut emu) = common_lambda::Emulator::start(&env.store(), &env.dir.path().join("logs"))
    else {
        return;
    };
    emu.containers(2);
    let rp = "res/emulated";
    let payload = env.payload(rp, json!({"world_size": 3}));
    let path = env.payload_file(&serde_json::to_string_pretty(&payload).unwrap());
    let endpoint = emu.lambda.clone();
    let lambda = ["--store", "s3", "--lambda-endpoint", &endpoint];

    // An execution started on AWS holds the path: the engine refuses, and so does a second
    // execution's Initialize, invoked directly, without touching anything.
    let arn = "arn:aws:states:us-east-1:000000000000:execution:cai:first";
    plant_lease(&env, rp, &foreign_lease(rp, None, Some(arn), 3600));
    let before = walk(&env.results(rp));
    let out = finish(spawn_run(&env, &path, &lambda, &s3_vars(&emu.s3)));
    out.expect_code(2);
    assert_refused_by(&out, rp, &format!("execution {arn}"));
    let answer = invoke(
        &endpoint,
        "cai-init",
        &json!({"payload": payload, "rank_items": "s3",
                "execution": "arn:aws:states:us-east-1:000000000000:execution:cai:second"}),
    );
    assert_eq!(answer["errorType"], "cai.RunInProgress", "{answer}");
    let msg = answer["errorMessage"].as_str().unwrap();
    assert!(
        msg.contains(&format!("in use by run someone-else (execution {arn}")),
        "{msg}"
    );
    assert_eq!(walk(&env.results(rp)), before);
    std::fs::remove_file(env.results(rp).join("lease.json")).unwrap();

    // Two engines at once: one runs, one is refused.
    let (won, refused, pid) = race(
        &env,
        rp,
        &path,
        &lambda,
        &s3_vars(&emu.s3),
        Start::AfterLease,
    );
    assert_refused_by(&refused, rp, &format!("pid {pid} on host "));
    assert!(won.stdout.contains("Succeeded"), "{}", won.stdout);
    assert_one_run(&env, rp, &[]);
}

/// What a run does with its finished results (`cai run --report` writes report.html there)
/// happens while it still holds the lease: no other run can take the result path between the
/// last result and the report. The engine is driven in-process to look inside that moment.
#[test]
fn work_on_the_finished_results_happens_while_the_lease_is_held() {
    let env = Env::new(2, 3);
    let rp = "res/owned";
    let input = env.payload(rp, json!({}));
    let lease_file = env.results(rp).join("lease.json");
    let seen = lease_file.clone();
    let report = cai_local::run_workflow(cai_local::RunOptions {
        payload: cai_workflow::Payload::parse(&input.to_string()).unwrap(),
        input,
        definition: None,
        store: cai_store::StoreConfig::Local { root: env.store() },
        resume: false,
        break_lease: false,
        slots: Some(2),
        threads: Some(1),
        quiet: true,
        program: PathBuf::from(env!("CARGO_BIN_EXE_cai")),
        env: vec![("CAI_SCRATCH".into(), env.scratch().to_str().unwrap().into())],
        name: None,
        backend: None,
        cold: false,
        slurm: None,
        while_owned: Some(Box::new(move || {
            let record = std::fs::read(&seen).map_err(|e| format!("no lease: {e}"))?;
            let record: LeaseRecord = serde_json::from_slice(&record).map_err(|e| e.to_string())?;
            Ok(record.run_id)
        })),
    })
    .unwrap();
    assert_eq!(report.exit_code(), 0);
    let holder = report.finished.expect("the work ran").expect("lease held");
    let summary = env.json(rp, "summary.json");
    assert_eq!(summary["run_id"], holder.as_str());
    assert!(!lease_file.exists(), "the lease is released afterwards");
}
