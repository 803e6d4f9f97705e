//! `cai aws run`'s library against moto: start (with the definition brought in line with the
//! payload), follow with map-run counts, and fetch the summary and the costs from the REPORT
//! lines put into the log groups. moto runs no Lambda code, so each test queues the results
//! its handlers would return and puts the files Summarize would write into moto's S3.

#[path = "it/support.rs"]
mod support;

use std::sync::Once;
use std::time::Duration;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionCode, Runtime};
use cai_aws::context::AwsContext;
use cai_aws::deploy::ENV_SCOPE;
use cai_aws::execution::{
    self, CostSource, ExecutionError, FetchOptions, FollowProgress, MapCounts,
};
use cai_aws::iam::Scope;
use cai_aws::names::{StackNames, DEPLOYED_HANDLERS};
use cai_store::{Store, StoreConfig};
use cai_workflow::definition::generate;
use cai_workflow::{layout, Payload};
use serde_json::{json, Value};

const POLL: Duration = Duration::from_millis(200);

/// A tag unique to this test process, so the tests can run again against the same moto
/// server (IAM roles and S3 buckets are not per region).
fn tag() -> String {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        format!("{:05x}", (nanos ^ std::process::id()) & 0xfffff)
    })
    .clone()
}

/// A deployment name and a bucket name for one test.
fn test_names(what: &str) -> (StackNames, String) {
    let names = StackNames::new(&format!("mrun-{what}-{}", tag())).unwrap();
    (names, format!("cai-moto-{what}-{}", tag()))
}

/// Points cai-store's S3 client at moto (it reads the standard AWS environment) and turns on
/// moto's state machine execution with code-less Lambdas.
fn moto_environment(endpoint: &str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var("AWS_ENDPOINT_URL_S3", endpoint);
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        curl(&[
            "-X",
            "POST",
            "-d",
            r#"{"lambda":{"use_docker":false},"stepfunctions":{"execute_state_machine":true}}"#,
            &format!("{endpoint}/moto-api/config"),
        ]);
    });
}

fn curl(args: &[&str]) {
    let out = std::process::Command::new("curl")
        .arg("-sf")
        .args(args)
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl {args:?}: {out:?}");
}

/// A payload for `world` ranks, all files in `bucket`.
fn payload_text(bucket: &str, world: u64, max_concurrency: u64) -> String {
    json!({
        "model": "seed:0",
        "bucket": bucket,
        "batch_size": 8,
        "result_path": "runs/r1",
        "data_bucket": bucket,
        "data_prefix": "parts",
        "world_size": world,
        "max_concurrency": max_concurrency,
        "memory_mb": 2048
    })
    .to_string()
}

/// What `cai aws deploy` would create, made directly: a role, the four functions (a dummy
/// zip), the state machine for `deployed_payload`'s settings, and the data bucket.
async fn deploy(ctx: &AwsContext, names: &StackNames, deployed_payload: &str, bucket: &str) {
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]}, "Action": "sts:AssumeRole"}]});
    let role = ctx
        .iam()
        .create_role()
        .role_name(names.states_role())
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .expect("iam:CreateRole");
    let role_arn = role.role().map(|r| r.arn().to_string()).expect("role arn");
    let scope = Scope::new(bucket, &["parts".into()], &["runs".into()], &[]).unwrap();
    for h in DEPLOYED_HANDLERS {
        let env = Environment::builder()
            .variables(ENV_SCOPE, scope.to_env())
            .build();
        ctx.lambda()
            .create_function()
            .environment(env)
            .function_name(names.function(h))
            .runtime(Runtime::Providedal2023)
            .handler("bootstrap")
            .role(&role_arn)
            .memory_size(2048)
            .code(
                FunctionCode::builder()
                    .zip_file(Blob::new(dummy_zip()))
                    .build(),
            )
            .send()
            .await
            .expect("lambda:CreateFunction");
    }
    let p = Payload::parse(deployed_payload).unwrap();
    let def = generate(&p.settings, &names.functions(&ctx.region, &ctx.account));
    ctx.sfn()
        .create_state_machine()
        .name(names.state_machine())
        .definition(def.to_string())
        .role_arn(&role_arn)
        .send()
        .await
        .expect("states:CreateStateMachine");
    let endpoint = support::moto_endpoint().unwrap();
    curl(&["-X", "PUT", &format!("{endpoint}/{bucket}")]);
}

/// A zip holding one `bootstrap` file (moto never runs it).
fn dummy_zip() -> Vec<u8> {
    use std::io::Write;
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut z = zip::ZipWriter::new(&mut buf);
    z.start_file("bootstrap", zip::write::SimpleFileOptions::default())
        .unwrap();
    z.write_all(b"#!/bin/sh\n").unwrap();
    z.finish().unwrap();
    buf.into_inner()
}

/// The rank payloads Initialize writes to `items.json` (moto runs no code): `pad` bytes of
/// filler in each make them as large as real ones with long keys.
fn rank_items(bucket: &str, world: u64, pad: usize) -> Value {
    let filler = "p".repeat(pad);
    Value::Array(
        (0..world)
            .map(|r| json!({"RANK": r.to_string(), "DATA_PATH": format!("parts/{filler}{r}.pt"), "DATA_BUCKET": bucket, "RESULT_PATH": "runs/r1"}))
            .collect(),
    )
}

/// What Initialize, each Infer and Summarize return, in invocation order; the items are in
/// moto's S3 at `runs/r1/items.json` (see [`put_items`]).
fn canned_results(bucket: &str, world: u64) -> Vec<Value> {
    let mut out = vec![json!({
        "statusCode": 200,
        "items": {"bucket": bucket, "key": layout::items_key("runs/r1"), "count": world,
                  "with_data": world},
        "run": {"run_id": "moto-run", "memory_mb": 2048},
        "plan": {"bucket": bucket, "key": layout::plan_key("runs/r1")},
        "warnings": ["a warning from Initialize"],
    })];
    out.extend((0..world).map(|r| json!({"statusCode": 200, "rank": r})));
    out.push(json!({"status": "succeeded", "samples": 8 * world, "failed_ranks": []}));
    out
}

fn rank_result(bucket: &str, rank: u64, world: u64) -> Value {
    json!({
        "total_cpu_time (seconds)": 2.0, "total_cpu_memory (MB)": 300.0,
        "execution_time (seconds/batch)": 0.1, "num_batches": 1, "batch_size": 8, "device": "cpu",
        "throughput_bps": 1.0, "sample_persec": 1.0, "result_path": "runs/r1", "data_path": format!("parts/{rank}.pt"),
        "rank": rank, "world_size": world, "samples": 8, "bits": 8, "files": [], "wall_seconds": 1.5 + rank as f64,
        "timings": {"model_load": 0.1, "fetch": 0.1, "inference": 1.0, "write": 0.1}, "peak_rss_mb": 700.0,
        "threads": 2, "attempts": 1, "model": "seed:0", "untrained": true,
        "predictions": {"bucket": bucket, "key": layout::predictions_key("runs/r1", rank), "format": "parquet", "rows": 8, "with_truth": false},
        "errors": [], "run_id": "moto-run", "cai_version": "0"
    })
}

fn summary(bucket: &str, world: u64) -> Value {
    json!({
        "run_id": "moto-run", "status": "succeeded", "data_bucket": bucket, "result_path": "runs/r1",
        "ranks": {"planned": world, "empty": 0, "succeeded": world, "resumed": 0, "failed": 0},
        "totals": {"samples": 8 * world, "planned_files": world, "bits": 8 * world, "inference_seconds": 1.0,
                   "rank_wall_seconds": 2.0, "cpu_seconds": 2.0, "max_peak_rss_mb": 700.0, "samples_per_inference_second": 8.0},
        "accuracy": null, "untrained": true, "failed_ranks": [], "map_error": null
    })
}

/// Puts the Map's items where Initialize would, into moto's S3.
async fn put_items(bucket: &str, world: u64, pad: usize) {
    let store = Store::open(StoreConfig::S3Buckets).unwrap();
    store
        .bucket(bucket)
        .unwrap()
        .put(
            &layout::items_key("runs/r1"),
            rank_items(bucket, world, pad).to_string(),
        )
        .await
        .unwrap();
}

/// Puts what Initialize, Summarize and the ranks would write into moto's S3 through
/// cai-store.
async fn put_results(bucket: &str, world: u64) -> Store {
    put_items(bucket, world, 0).await;
    let store = Store::open(StoreConfig::S3Buckets).unwrap();
    let b = store.bucket(bucket).unwrap();
    let ranks: Vec<Value> = (0..world).map(|r| rank_result(bucket, r, world)).collect();
    for (r, v) in ranks.iter().enumerate() {
        b.put(&layout::rank_result_key("runs/r1", r as u64), v.to_string())
            .await
            .unwrap();
    }
    b.put(
        &layout::combined_key("runs/r1"),
        Value::Array(ranks).to_string(),
    )
    .await
    .unwrap();
    b.put(
        &layout::summary_key("runs/r1"),
        summary(bucket, world).to_string(),
    )
    .await
    .unwrap();
    store
}

/// REPORT lines Lambda would write: (handler, billed ms, memory MB, max used MB).
async fn put_reports(
    ctx: &AwsContext,
    names: &StackNames,
    lines: &[(cai_workflow::handlers::Handler, u64, u64, u64)],
) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for h in DEPLOYED_HANDLERS {
        let group = names.log_group(h);
        ctx.logs()
            .create_log_group()
            .log_group_name(&group)
            .send()
            .await
            .expect("CreateLogGroup");
        ctx.logs()
            .create_log_stream()
            .log_group_name(&group)
            .log_stream_name("2026/01/01/[$LATEST]0001")
            .send()
            .await
            .expect("CreateLogStream");
        let mut req = ctx
            .logs()
            .put_log_events()
            .log_group_name(&group)
            .log_stream_name("2026/01/01/[$LATEST]0001");
        let mut any = false;
        for (i, (lh, billed, mem, used)) in lines.iter().enumerate() {
            if *lh != h {
                continue;
            }
            any = true;
            let start = format!("START RequestId: {h:?}-{i} Version: $LATEST");
            let report = format!(
                "REPORT RequestId: {h:?}-{i}\tDuration: {}.25 ms\tBilled Duration: {billed} ms\tMemory Size: {mem} MB\tMax Memory Used: {used} MB\t",
                billed - 1
            );
            for m in [start, report] {
                req = req.log_events(
                    aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                        .timestamp(now)
                        .message(m)
                        .build()
                        .unwrap(),
                );
            }
        }
        if any {
            req.send().await.expect("PutLogEvents");
        }
    }
}

/// Records what follow reports.
#[derive(Default)]
struct Recorder {
    statuses: Vec<String>,
    counts: Vec<MapCounts>,
}

impl FollowProgress for Recorder {
    fn update(&mut self, status: &str, counts: Option<&MapCounts>) {
        self.statuses.push(status.to_string());
        self.counts.extend(counts.copied());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_followed_and_priced_from_the_report_lines() {
    let region = "eu-north-1";
    let Some(ctx) = support::moto_context(region).await else {
        return;
    };
    moto_environment(&support::moto_endpoint().unwrap());
    use cai_workflow::handlers::Handler;
    let world = 3;
    let (names, bucket) = test_names("reports");
    let bucket = bucket.as_str();
    let text = payload_text(bucket, world, 2);
    deploy(&ctx, &names, &text, bucket).await;
    let store = put_results(bucket, world).await;
    support::queue_lambda_results(region, &canned_results(bucket, world));

    let started = execution::start(&ctx, &names, &text, None)
        .await
        .expect("start");
    assert_eq!(
        started.definition_update, None,
        "the deployed definition already fits"
    );
    assert!(started.name.starts_with("cai-"), "{}", started.name);
    let mut rec = Recorder::default();
    let info = execution::follow(&ctx, &started.execution_arn, POLL, &mut rec)
        .await
        .expect("follow");
    assert_eq!(info.status, "SUCCEEDED", "{info:?}");
    let last = rec
        .counts
        .last()
        .copied()
        .expect("map-run counts were reported");
    assert_eq!(
        (last.total, last.succeeded, last.done()),
        (world, world, world),
        "{:?}",
        rec.counts
    );

    let lines = [
        (Handler::Init, 301, 1024, 90),
        (Handler::Infer, 1501, 2048, 812),
        (Handler::Infer, 2502, 2048, 813),
        (Handler::Infer, 3503, 2048, 814),
        (Handler::Summarize, 404, 1024, 95),
    ];
    put_reports(&ctx, &names, &lines).await;
    let rep = execution::fetch(
        &ctx,
        &names,
        &store,
        &info,
        &FetchOptions {
            log_attempts: 1,
            log_wait: Duration::ZERO,
        },
    )
    .await
    .expect("fetch");
    assert_eq!(rep.cost_source, CostSource::Reports { lines: 5 });
    let r = &rep.report;
    let mut billed: Vec<(String, u64, f64)> = r
        .invocations
        .iter()
        .map(|i| (i.handler.clone(), i.billed_ms, i.peak_rss_mb))
        .collect();
    billed.sort_by_key(|b| b.1);
    let want: Vec<(String, u64, f64)> = lines
        .iter()
        .map(|(h, b, _, used)| (h.name().to_string(), *b, *used as f64))
        .collect();
    let mut want = want;
    want.sort_by_key(|b| b.1);
    assert_eq!(billed, want);
    assert_eq!(r.performance.requests, 5);
    assert_eq!(
        r.performance.memory_gb, 2.0,
        "the Infer function's configured memory"
    );
    let gb_s = (0.301 + 0.404) * 1.0 + (1.501 + 2.502 + 3.503) * 2.0;
    let price = cai_workflow::cost::gb_second_price(cai_workflow::settings::Architecture::X86_64);
    assert!(
        (r.performance.compute_usd - gb_s * price).abs() < 1e-12,
        "{:?}",
        r.performance
    );
    assert_eq!(r.execution.status, "SUCCEEDED");
    assert_eq!(
        r.execution.state_transitions,
        world + 5,
        "ranks + 5, as the local engine counts"
    );
    assert!(
        rep.transitions_estimated,
        "moto cannot list a map run's child executions"
    );
    let s = r.summary.as_ref().expect("summary.json was read");
    assert_eq!(
        (s.ranks.planned, s.ranks.succeeded, s.totals.samples),
        (world, world, 8 * world)
    );
    assert_eq!(
        s.execution.as_ref().map(|e| e.name.as_str()),
        Some(started.name.as_str())
    );
    assert_eq!(r.capacity.slots, 2, "the Map's MaxConcurrency");
    assert_eq!(r.capacity.threads, 2, "the ranks' threads");
    assert_eq!(r.warnings, vec!["a warning from Initialize".to_string()]);
    assert_eq!(r.exit_code(), 0);
    // The execution record was written back into summary.json.
    let back = store
        .bucket(bucket)
        .unwrap()
        .get(&layout::summary_key("runs/r1"))
        .await
        .unwrap();
    let back: Value = serde_json::from_slice(&back).unwrap();
    assert_eq!(back["execution"]["state_transitions"], json!(world + 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_report_lines_the_cost_comes_from_the_rank_results() {
    let region = "ap-northeast-3";
    let Some(ctx) = support::moto_context(region).await else {
        return;
    };
    moto_environment(&support::moto_endpoint().unwrap());
    let world = 2;
    let (names, bucket) = test_names("fallback");
    let bucket = bucket.as_str();
    let text = payload_text(bucket, world, 0);
    deploy(&ctx, &names, &text, bucket).await;
    let store = put_results(bucket, world).await;
    support::queue_lambda_results(region, &canned_results(bucket, world));
    let started = execution::start(&ctx, &names, &text, Some("named-run"))
        .await
        .expect("start");
    assert!(
        started.execution_arn.ends_with(":named-run"),
        "{}",
        started.execution_arn
    );
    let info = execution::follow(&ctx, &started.execution_arn, POLL, &mut ())
        .await
        .expect("follow");
    let rep = execution::fetch(
        &ctx,
        &names,
        &store,
        &info,
        &FetchOptions {
            log_attempts: 1,
            log_wait: Duration::ZERO,
        },
    )
    .await
    .expect("fetch");
    let CostSource::HandlerRecords { ranks, bookkeeping } = rep.cost_source.clone() else {
        panic!("expected the fallback, got {:?}", rep.cost_source)
    };
    assert_eq!(
        (ranks, bookkeeping),
        (2, 2),
        "2 ranks + Initialize and Summarize from the history"
    );
    let infer: Vec<u64> = rep
        .report
        .invocations
        .iter()
        .filter(|i| i.handler == "infer")
        .map(|i| i.billed_ms)
        .collect();
    assert_eq!(
        infer,
        vec![1500, 2500],
        "wall_seconds of each rank result, rounded up to the ms"
    );
    assert_eq!(
        rep.report.performance.memory_gb, 2.0,
        "the payload's memory_mb"
    );
    assert_eq!(
        rep.report.capacity.slots, 2,
        "MaxConcurrency 0 means every rank at once"
    );
    assert!(rep
        .cost_source
        .describe()
        .contains("no Lambda REPORT lines"));

    // status: the deployment comes from the ARN.
    let arn = execution::ExecutionArn::parse(&started.execution_arn).unwrap();
    assert_eq!(
        (arn.state_machine.as_str(), arn.region.as_str()),
        (names.name(), region)
    );
}

/// Step Functions' own ItemReader (moto's, executing the deployed definition) reads the rank
/// items Initialize wrote, however many: here more than would fit in any state inline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_map_reads_more_items_than_fit_inline_from_s3() {
    let region = "sa-east-1";
    let Some(ctx) = support::moto_context(region).await else {
        return;
    };
    moto_environment(&support::moto_endpoint().unwrap());
    let world = 600;
    let (names, bucket) = test_names("items");
    let bucket = bucket.as_str();
    let text = payload_text(bucket, world, 50);
    deploy(&ctx, &names, &text, bucket).await;
    put_items(bucket, world, 400).await;
    let inline = rank_items(bucket, world, 400).to_string().len();
    assert!(inline > 256 * 1024, "the items are {inline} bytes");
    support::queue_lambda_results(region, &canned_results(bucket, world));

    let started = execution::start(&ctx, &names, &text, None)
        .await
        .expect("start");
    let mut rec = Recorder::default();
    let info = execution::follow(&ctx, &started.execution_arn, POLL, &mut rec)
        .await
        .expect("follow");
    assert_eq!(info.status, "SUCCEEDED", "{info:?}");
    let last = rec.counts.last().copied().expect("map-run counts");
    assert_eq!((last.total, last.succeeded), (world, world), "{last:?}");

    // The ResultWriter put its manifest under the run's result path.
    let store = Store::open(StoreConfig::S3Buckets).unwrap();
    let listed = store.bucket(bucket).unwrap().list("runs/r1").await.unwrap();
    assert!(
        listed.iter().any(|e| e.key.ends_with("/manifest.json")),
        "{listed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_with_other_settings_updates_the_definition() {
    let region = "ca-central-1";
    let Some(ctx) = support::moto_context(region).await else {
        return;
    };
    moto_environment(&support::moto_endpoint().unwrap());
    let (names, bucket) = test_names("update");
    let bucket = bucket.as_str();
    deploy(&ctx, &names, &payload_text(bucket, 2, 2), bucket).await;
    let text = payload_text(bucket, 2, 7);
    let started = execution::start(&ctx, &names, &text, None)
        .await
        .expect("start");
    let note = started
        .definition_update
        .expect("the definition was updated");
    assert!(
        note.starts_with(&format!(
            "state machine {}: definition updated",
            names.name()
        )),
        "{note}"
    );
    assert!(
        note.contains("States.Inference.MaxConcurrency: 2 -> 7"),
        "{note}"
    );
    let sm = ctx
        .sfn()
        .describe_state_machine()
        .state_machine_arn(names.state_machine_arn(&ctx.region, &ctx.account))
        .send()
        .await
        .unwrap();
    let def: Value = serde_json::from_str(sm.definition()).unwrap();
    assert_eq!(def["States"]["Inference"]["MaxConcurrency"], json!(7));
    // A payload outside the deployed scope is refused before anything starts.
    let outside = payload_text("cai-moto-elsewhere", 2, 7);
    let err = execution::start(&ctx, &names, &outside, None)
        .await
        .unwrap_err();
    assert!(matches!(err, ExecutionError::Scope(_)), "{err:?}");
    assert!(err.to_string().contains("data_bucket"), "{err}");
    // A second start with the same payload changes nothing.
    let again = execution::start(&ctx, &names, &text, None)
        .await
        .expect("start again");
    assert_eq!(again.definition_update, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absent_deployment_is_named_in_the_error() {
    let region = "sa-east-1";
    let Some(ctx) = support::moto_context(region).await else {
        return;
    };
    let names = StackNames::new("mrun-absent").unwrap();
    let err = execution::start(&ctx, &names, &payload_text("cai-moto-absent", 1, 0), None)
        .await
        .unwrap_err();
    assert!(matches!(err, ExecutionError::NotDeployed { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.starts_with("not deployed"), "{text}");
    assert!(text.contains("cai aws deploy --name mrun-absent"), "{text}");
    let bad = execution::start(&ctx, &names, "{\"bucket\": 1}", None)
        .await
        .unwrap_err();
    assert!(matches!(bad, ExecutionError::Payload(_)), "{bad:?}");
}
