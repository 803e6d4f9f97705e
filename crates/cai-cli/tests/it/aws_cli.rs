//! `cai aws` end to end, through the real binary, against moto's server: package, deploy
//! (then again: nothing changes), run --no-wait with canned Lambda results, status to the
//! end, a payload outside the deployed scope, destroy (then again: everything absent), and
//! the per-service endpoint variables (`AWS_ENDPOINT_URL_LAMBDA` on a dead port).
//!
//! The binary gets only the standard AWS environment pointing at moto (every inherited
//! `AWS_*` variable is removed first, and the config files are empty), in a region no
//! other test uses: moto keeps canned Lambda results in one queue per account and region.
//! Deployment names carry the process id, so reruns against the same server start clean.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// This test's region (no other test uses it).
const REGION: &str = "ap-southeast-2";
/// moto's account.
const ACCOUNT: &str = "123456789012";
/// The data and model bucket of the payload (nothing runs the handlers, so the test writes
/// what they would have: the Map's items, and a lease).
const BUCKET: &str = "cosmicai-data";
/// The payload's result path.
const RESULT_PATH: &str = "result-partition-100MB/1GB/1";
/// The four deployed functions' handler suffixes, in deploy's order.
const HANDLERS: [&str; 4] = ["init", "infer", "failure", "summarize"];
/// The longest any single `cai` invocation may take here.
const COMMAND_LIMIT: Duration = Duration::from_secs(240);

/// The moto endpoint, or None (with a note) when the stand-ins are not running. Under CI
/// a missing stand-in is a failure, never a silent skip. (The same rule as
/// crates/cai-aws/tests/support/mod.rs.)
fn moto_endpoint() -> Option<String> {
    match std::env::var("CAI_TEST_MOTO_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CAI_TEST_MOTO_ENDPOINT is not set: run the tests through ./scripts/test.sh, which starts moto")
        }
        _ => {
            eprintln!("skipped: CAI_TEST_MOTO_ENDPOINT is not set (./scripts/test.sh starts moto)");
            None
        }
    }
}

/// What one `cai` invocation did.
#[derive(Debug)]
struct Out {
    /// Exit status (-1 when killed by a signal).
    code: i32,
    /// Standard output.
    stdout: String,
    /// Standard error.
    stderr: String,
}

impl Out {
    /// Panics with the whole output unless the exit status is `code`.
    fn expect_code(&self, code: i32, what: &str) -> &Self {
        assert_eq!(
            self.code, code,
            "{what}: exit status {} (want {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    /// stdout's non-empty lines.
    fn lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }
}

/// Runs `cai` against moto: the standard AWS environment (endpoint, test credentials, this
/// test's region, no instance metadata, empty config files), plus `extra` (which
/// may override any of it). Killed and reported after [`COMMAND_LIMIT`].
struct Moto {
    endpoint: String,
    /// Holds the zip, the payloads and the (empty) AWS config files.
    dir: tempfile::TempDir,
}

impl Moto {
    fn cai(&self, args: &[&str], extra: &[(&str, &str)]) -> Out {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cai"));
        cmd.args(args);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(&k);
            }
        }
        // Empty config files: no profile of the developer's applies (a missing file would
        // draw a warning from aws-config on every command).
        let nowhere = self.dir.path().join("empty-aws-config");
        if !nowhere.exists() {
            std::fs::write(&nowhere, "").unwrap();
        }
        cmd.env_remove("RUST_LOG")
            .env_remove("CAI_FAULT")
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", &nowhere)
            .env("AWS_SHARED_CREDENTIALS_FILE", &nowhere);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        run_with_limit(cmd, &format!("cai {}", args.join(" ")))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Runs `cmd` to the end (at most [`COMMAND_LIMIT`]), collecting its output.
fn run_with_limit(mut cmd: Command, what: &str) -> Out {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + COMMAND_LIMIT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let o = Out {
        code: status.and_then(|s| s.code()).unwrap_or(-1),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    assert!(
        status.is_some(),
        "{what}: still running after {COMMAND_LIMIT:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.stdout,
        o.stderr
    );
    o
}

/// POSTs `body` to moto with `curl`, with an Authorization header naming [`REGION`] (moto
/// takes the region from it); returns the response body.
fn moto_post(endpoint: &str, path: &str, body: &str) -> String {
    let auth = format!(
        "Authorization: AWS4-HMAC-SHA256 Credential=testing/20240101/{REGION}/lambda/aws4_request, SignedHeaders=host, Signature=0"
    );
    let out = Command::new("curl")
        .args([
            "-sf",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-H",
        ])
        .arg(auth)
        .arg("-d")
        .arg(body)
        .arg(format!("{endpoint}{path}"))
        .output()
        .expect("curl");
    assert!(out.status.success(), "POST {path}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// PUTs `body` as object `bucket/key` in moto's S3 (bucket created first if needed), where
/// Initialize would have written it.
fn moto_put_object(endpoint: &str, bucket: &str, key: &str, body: &str) {
    let put = |url: String, data: &str| {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT"])
            // Signed-looking, so moto attributes the request to its default account, and not
            // curl's default form type, which moto would parse as a form.
            .args(["-H", "Content-Type: application/json", "-H"])
            .arg("Authorization: AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0")
            .arg("-d")
            .arg(data)
            .arg(url)
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    put(format!("{endpoint}/{bucket}"), "");
    assert_eq!(
        put(format!("{endpoint}/{bucket}/{key}"), body),
        "200",
        "PUT {bucket}/{key}"
    );
}

/// Deletes object `bucket/key` from moto's S3, if it is there.
fn moto_delete_object(endpoint: &str, bucket: &str, key: &str) {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-X", "DELETE", "-H"])
        .arg("Authorization: AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0")
        .arg(format!("{endpoint}/{bucket}/{key}"))
        .output()
        .expect("curl");
    assert!(out.status.success(), "DELETE {bucket}/{key}: {out:?}");
}

/// A lease of run `planted` held by `execution` for the next hour, as Initialize writes it.
fn lease_json(execution: &str) -> String {
    use cai_workflow::lease::{self, HolderKind, LeaseRecord};
    let now = lease::now_unix();
    let record = LeaseRecord {
        run_id: "planted".into(),
        holder: HolderKind::Aws,
        host: "lambda".into(),
        pid: None,
        pid_started: None,
        execution: Some(execution.into()),
        renews: false,
        started: lease::rfc3339(now),
        started_unix: now,
        expires: lease::rfc3339(now + 3600),
        expires_unix: now + 3600,
        result: format!("{BUCKET}/{RESULT_PATH}"),
        took_over: None,
        cai_version: "test".into(),
    };
    serde_json::to_string(&record).unwrap()
}

/// Queues canned results for the next Lambda invocations in [`REGION`] (moto runs no code).
fn queue_lambda_results(endpoint: &str, results: &[Value]) {
    let body = json!({
        "results": results.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        "region": REGION,
    });
    moto_post(
        endpoint,
        "/moto-api/static/lambda-simple/response",
        &body.to_string(),
    );
}

/// Consumes canned results a failed earlier run left in [`REGION`]: with an empty queue
/// moto echoes the request.
fn drain_canned_results(endpoint: &str, function: &str) {
    for i in 0..200 {
        let marker = json!({ "drain": i }).to_string();
        let got = moto_post(
            endpoint,
            &format!("/2015-03-31/functions/{function}/invocations"),
            &marker,
        );
        if got == marker {
            return;
        }
    }
    panic!("moto's canned Lambda results never drained");
}

/// The resources of deployment `n`, as deploy reports them.
fn resources(n: &str) -> Vec<String> {
    let mut r = vec![format!("role {n}-lambda"), format!("role {n}-states")];
    r.extend(HANDLERS.iter().map(|h| format!("function {n}-{h}")));
    r.push(format!("state machine {n}"));
    r
}

/// `(action, resource)` of each change line (`created  role N-lambda (detail)`), sorted by
/// resource; panics on a line of another shape.
fn changes(o: &Out) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = o
        .lines()
        .iter()
        .map(|l| {
            let (action, rest) = l
                .split_once(' ')
                .unwrap_or_else(|| panic!("not a change line: {l:?}\n{}", o.stdout));
            let resource = rest.trim_start();
            let resource = resource
                .split_once(" (")
                .map_or(resource, |(r, _)| r)
                .to_string();
            (action.to_string(), resource)
        })
        .collect();
    v.sort_by(|a, b| a.1.cmp(&b.1));
    v
}

/// Asserts that `o` reported exactly the resources of `n`, each with `action`.
fn assert_all(o: &Out, n: &str, action: &str, what: &str) {
    let mut want: Vec<(String, String)> = resources(n)
        .into_iter()
        .map(|r| (action.to_string(), r))
        .collect();
    want.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        changes(o),
        want,
        "{what}\n--- stdout\n{}\n--- stderr\n{}",
        o.stdout,
        o.stderr
    );
}

/// The payload in the original's shape, for [`BUCKET`] and `data_prefix`.
fn payload(data_prefix: &str) -> Value {
    json!({
        "bucket": BUCKET,
        "file_limit": "2",
        "batch_size": 512,
        "object_type": "folder",
        "S3_object_name": "Anomaly Detection",
        "script": "/tmp/Anomaly Detection/Inference/inference.py",
        "result_path": RESULT_PATH,
        "data_bucket": BUCKET,
        "data_prefix": data_prefix,
        "model": "seed:0",
    })
}

/// Writes `value` as a JSON file.
fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(value).unwrap()).unwrap();
}

/// One rank's payload as Initialize emits it (checked against cai's own type).
fn rank_payload(rank: u64, world: u64, data_path: &str) -> Value {
    let v = json!({
        "S3_BUCKET": BUCKET,
        "S3_OBJECT_NAME": "Anomaly Detection",
        "SCRIPT": "/tmp/Anomaly Detection/Inference/inference.py",
        "S3_OBJECT_TYPE": "folder",
        "WORLD_SIZE": world.to_string(),
        "RANK": rank.to_string(),
        "DATA_BUCKET": BUCKET,
        "DATA_PREFIX": "100MB",
        "DATA_PATH": data_path,
        "RESULT_PATH": RESULT_PATH,
        "BATCH_SIZE": 512,
    });
    let parsed: cai_workflow::RankPayload = serde_json::from_value(v.clone())
        .unwrap_or_else(|e| panic!("not a rank payload: {e}: {v}"));
    assert_eq!(parsed.rank_number(), Ok(rank));
    v
}

/// What the four handlers would return for the payload, in invocation order: Initialize
/// (where the rank items are, the run settings, where the plan is), two Infer digests,
/// Summarize. The rank items are put into moto's S3, as Initialize would write them.
fn canned_results(endpoint: &str, payload: &Value) -> Vec<Value> {
    let mut run = cai_workflow::Payload::from_value(payload)
        .expect("the test payload is valid")
        .settings;
    run.run_id = format!("moto-cli-{}", std::process::id());
    let items_key = cai_workflow::layout::items_key(RESULT_PATH);
    let items = json!([
        rank_payload(0, 2, "100MB/1.pt"),
        rank_payload(1, 2, "100MB/2.pt")
    ]);
    moto_put_object(endpoint, BUCKET, &items_key, &items.to_string());
    let init = json!({
        "statusCode": 200,
        "items": { "bucket": BUCKET, "key": items_key, "count": 2, "with_data": 2 },
        "run": serde_json::to_value(&run).unwrap(),
        "plan": { "bucket": BUCKET, "key": cai_workflow::layout::plan_key(RESULT_PATH) },
        "warnings": [],
    });
    let infer = |rank: u64| {
        json!({ "rank": rank, "status": "ok", "samples": 8, "wall_seconds": 1.5,
                "peak_rss_mb": 400.0, "attempts": 1 })
    };
    let summarize = json!({
        "status": "succeeded",
        "samples": 16,
        "ranks": { "planned": 2, "empty": 0, "succeeded": 2, "resumed": 0, "failed": 0 },
        "failed_ranks": [],
        "summary": { "bucket": BUCKET, "key": cai_workflow::layout::summary_key(RESULT_PATH) },
    });
    vec![init, infer(0), infer(1), summarize]
}

/// Destroys deployment `name` when dropped during a panic, so a failed run leaves nothing
/// behind in moto.
struct DestroyOnPanic<'a> {
    moto: &'a Moto,
    name: String,
}

impl Drop for DestroyOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let o = self
                .moto
                .cai(&["aws", "destroy", "--name", &self.name], &[]);
            eprintln!(
                "cleanup: cai aws destroy --name {} exited {}\n{}{}",
                self.name, o.code, o.stdout, o.stderr
            );
        }
    }
}

#[test]
fn aws_package_deploy_run_status_destroy_against_moto() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let moto = Moto {
        endpoint: endpoint.clone(),
        dir: tempfile::tempdir().unwrap(),
    };
    let pid = std::process::id();
    let name = format!("clitest{pid}");
    let _cleanup = DestroyOnPanic {
        moto: &moto,
        name: name.clone(),
    };

    // 1. The zip of the running binary.
    let zip = moto.path("cai.zip");
    let zip_s = zip.to_str().unwrap();
    let o = moto.cai(&["aws", "package", "--out", zip_s], &[]);
    o.expect_code(0, "package");
    assert!(
        std::fs::metadata(&zip)
            .map(|m| m.len() > 0)
            .unwrap_or(false),
        "no zip at {zip_s}\n{o:?}"
    );
    assert!(o.stdout.contains(zip_s), "{o:?}");

    let payload_v = payload("100MB");
    let payload_file = moto.path("payload.json");
    write_json(&payload_file, &payload_v);
    let payload_s = payload_file.to_str().unwrap();
    let deploy_args = [
        "aws",
        "deploy",
        "--bucket",
        BUCKET,
        "--name",
        &name,
        "--zip",
        zip_s,
        "--payload",
        payload_s,
    ];

    // 2. Deploy creates everything, one line per resource.
    let o = moto.cai(&deploy_args, &[]);
    o.expect_code(0, "first deploy");
    assert_all(&o, &name, "created", "first deploy");

    // 3. Deploying the same again changes nothing.
    let o = moto.cai(&deploy_args, &[]);
    o.expect_code(0, "second deploy");
    assert_all(&o, &name, "unchanged", "second deploy");

    // 4. An execution with canned Lambda results, not waited for. (No lease may be left from
    // an earlier run of this test against the same server: see 6b.)
    moto_delete_object(&endpoint, BUCKET, &format!("{RESULT_PATH}/lease.json"));
    drain_canned_results(&endpoint, &format!("{name}-init"));
    queue_lambda_results(&endpoint, &canned_results(&endpoint, &payload_v));
    let o = moto.cai(
        &["aws", "run", payload_s, "--name", &name, "--no-wait"],
        &[],
    );
    o.expect_code(0, "run --no-wait");
    let lines = o.lines();
    assert_eq!(lines.len(), 1, "run --no-wait prints only the ARN: {o:?}");
    let arn = lines[0].trim().to_string();
    let prefix = format!("arn:aws:states:{REGION}:{ACCOUNT}:execution:{name}:");
    assert!(
        arn.starts_with(&prefix) && arn.len() > prefix.len(),
        "{arn:?} is not an execution of {name}\n{o:?}"
    );

    // 5. Status follows it to the end. Nothing ran the handlers, so there is no
    // summary.json to read and no REPORT line to price from.
    let o = moto.cai(&["aws", "status", &arn], &[]);
    eprintln!(
        "--- status exit {}\n--- stdout\n{}\n--- stderr\n{}",
        o.code, o.stdout, o.stderr
    );
    o.expect_code(3, "status");
    assert!(
        o.stdout.contains("SUCCEEDED") || o.stdout.contains("Succeeded"),
        "{o:?}"
    );
    assert!(o.stdout.contains("no summary was written"), "{o:?}");
    assert!(
        o.stdout
            .contains("cost source: no Lambda REPORT lines found in CloudWatch Logs"),
        "{o:?}"
    );
    assert!(o.stdout.contains(&format!("execution: {arn}")), "{o:?}");
    drain_canned_results(&endpoint, &format!("{name}-init"));

    // 6. A payload outside the deployed scope is refused before anything starts.
    let other = moto.path("other.json");
    write_json(&other, &payload("other"));
    let o = moto.cai(
        &[
            "aws",
            "run",
            other.to_str().unwrap(),
            "--name",
            &name,
            "--no-wait",
        ],
        &[],
    );
    assert_ne!(o.code, 0, "a payload outside the scope started: {o:?}");
    assert!(o.stderr.contains("data_prefix"), "{o:?}");
    assert!(!o.stdout.contains("arn:aws:states"), "{o:?}");

    // 6b. The result path's lease. An execution holding it refuses a second run before
    // anything starts; one whose execution Step Functions says has ended is gone, which
    // only --resume takes over (passing Initialize the run whose lease to replace).
    let lease_key = format!("{RESULT_PATH}/lease.json");
    let absent = format!("arn:aws:states:{REGION}:{ACCOUNT}:execution:{name}:elsewhere");
    moto_put_object(&endpoint, BUCKET, &lease_key, &lease_json(&absent));
    let run = ["aws", "run", payload_s, "--name", &name, "--no-wait"];
    let o = moto.cai(&run, &[]);
    o.expect_code(2, "run while an execution holds the lease");
    let held_by = format!(
        "result path {BUCKET}/{RESULT_PATH} is in use by run planted (execution {absent}, started "
    );
    assert!(o.stderr.contains(&held_by), "{o:?}");
    assert!(o.stderr.contains("--break-lease"), "{o:?}");
    assert!(!o.stdout.contains("arn:aws:states"), "{o:?}");
    moto_put_object(&endpoint, BUCKET, &lease_key, &lease_json(&arn));
    let o = moto.cai(&run, &[]);
    o.expect_code(2, "run while an ended execution's lease is in place");
    assert!(
        o.stderr
            .contains("which is gone: its execution is SUCCEEDED"),
        "{o:?}"
    );
    assert!(o.stderr.contains("--resume"), "{o:?}");
    let o = moto.cai(
        &[
            "aws",
            "run",
            payload_s,
            "--name",
            &name,
            "--no-wait",
            "--resume",
        ],
        &[],
    );
    o.expect_code(0, "run --resume over a gone execution's lease");
    assert!(
        o.stderr.contains(&format!(
            "taking over the lease on {BUCKET}/{RESULT_PATH} of run planted (execution {arn}"
        )),
        "{o:?}"
    );
    assert_eq!(o.lines().len(), 1, "{o:?}");
    moto_delete_object(&endpoint, BUCKET, &lease_key);

    // 7. Destroy removes exactly the seven resources; again, all are absent.
    let o = moto.cai(&["aws", "destroy", "--name", &name], &[]);
    o.expect_code(0, "destroy");
    assert_all(&o, &name, "deleted", "destroy");
    let o = moto.cai(&["aws", "destroy", "--name", &name], &[]);
    o.expect_code(0, "second destroy");
    assert_all(&o, &name, "absent", "second destroy");

    // The per-service endpoint variables are honoured: Lambda on a dead port fails the
    // deploy, naming Lambda, while IAM (still moto) got its roles.
    let dead = format!("clitestdead{pid}");
    let _cleanup_dead = DestroyOnPanic {
        moto: &moto,
        name: dead.clone(),
    };
    let o = moto.cai(
        &[
            "aws",
            "deploy",
            "--bucket",
            BUCKET,
            "--name",
            &dead,
            "--zip",
            zip_s,
            "--payload",
            payload_s,
        ],
        &[("AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:9")],
    );
    eprintln!(
        "--- dead-Lambda deploy exit {}\n--- stdout\n{}\n--- stderr\n{}",
        o.code, o.stdout, o.stderr
    );
    assert_ne!(
        o.code, 0,
        "deploy with Lambda on a dead port succeeded: {o:?}"
    );
    assert!(o.stderr.contains("lambda:"), "{o:?}");
    assert!(o.stderr.contains(&format!("function {dead}-init")), "{o:?}");
    let o = moto.cai(&["aws", "destroy", "--name", &dead], &[]);
    o.expect_code(0, "destroy after the failed deploy");
    let got = changes(&o);
    for (action, resource) in &got {
        let want = if resource.starts_with("role ") {
            "deleted"
        } else {
            "absent"
        };
        assert_eq!(action, want, "{resource}\n{o:?}");
    }
    assert_eq!(got.len(), 7, "{o:?}");
}
