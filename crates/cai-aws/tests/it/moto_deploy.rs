//! `cai aws deploy`/`destroy` against moto: what deploy creates (read back through IAM,
//! Lambda and Step Functions), idempotence, a precise update, an execution of the deployed
//! definition with canned Lambda results, and an exact destroy.
//! Each test has its own region (moto's canned Lambda results queue per region) and its own
//! deployment name (IAM is global), suffixed with the process id so reruns against the same
//! server start clean.

use crate::support;

use std::io::Write;
use std::time::{Duration, Instant};

use aws_sdk_sfn::types::ExecutionStatus;
use cai_aws::context::AwsContext;
use cai_aws::deploy::{self, Action, Change, DeployError, DeploySpec, ENV_SCOPE};
use cai_aws::destroy::destroy;
use cai_aws::iam::{self, Scope};
use cai_aws::names::{StackNames, DEPLOYED_HANDLERS, STACK_TAG};
use cai_workflow::settings::Architecture;
use serde_json::{json, Value};

/// A zip holding a `bootstrap` entry, as `cai aws package` makes (content is irrelevant to
/// moto, which runs no code).
fn test_zip(content: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .unix_permissions(0o755);
    zip.start_file("bootstrap", options).unwrap();
    zip.write_all(content).unwrap();
    zip.finish().unwrap().into_inner()
}

/// A unique deployment name for one test.
fn stack(test: &str) -> StackNames {
    StackNames::new(&format!("{test}-{}", std::process::id())).unwrap()
}

fn spec(names: StackNames) -> DeploySpec {
    DeploySpec {
        names,
        scope: Scope::new(
            "cosmicai-data",
            &["100MB".into()],
            &["result".into()],
            &["models-b/Anomaly Detection/w.pt".into()],
        )
        .unwrap(),
        zip: test_zip(b"#!/bin/sh\necho cai\n"),
        memory_mb: 2048,
        timeout_seconds: 900,
        ephemeral_mb: 2048,
        architecture: Architecture::X86_64,
        settings: DeploySpec::default_settings(900, 2048, Architecture::X86_64),
    }
}

fn actions(changes: &[Change]) -> Vec<(String, Action)> {
    changes
        .iter()
        .map(|c| (c.resource.clone(), c.action))
        .collect()
}

/// Every resource of a deployment, in the order deploy reports them.
fn resources(names: &StackNames) -> Vec<String> {
    let mut r = vec![
        format!("role {}", names.lambda_role()),
        format!("role {}", names.states_role()),
    ];
    r.extend(
        DEPLOYED_HANDLERS
            .iter()
            .map(|&h| format!("function {}", names.function(h))),
    );
    r.push(format!("state machine {}", names.state_machine()));
    r
}

/// IAM returns documents URL-encoded; moto may or may not.
fn document(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| {
        let mut out = Vec::new();
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                out.push(
                    u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap(), 16).unwrap(),
                );
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        serde_json::from_slice(&out).unwrap()
    })
}

async fn check_role(
    ctx: &AwsContext,
    role: &str,
    names: &StackNames,
    trust: &Value,
    policy: &Value,
) -> String {
    let iam = ctx.iam();
    let got = iam.get_role().role_name(role).send().await.unwrap();
    let r = got.role().unwrap();
    assert_eq!(
        &document(r.assume_role_policy_document().unwrap()),
        trust,
        "{role} trust"
    );
    let p = iam
        .get_role_policy()
        .role_name(role)
        .policy_name(names.policy())
        .send()
        .await
        .unwrap();
    assert_eq!(&document(p.policy_document()), policy, "{role} policy");
    let tags = iam.list_role_tags().role_name(role).send().await.unwrap();
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == STACK_TAG && t.value() == names.name()),
        "{role} tags: {:?}",
        tags.tags()
    );
    r.arn().to_string()
}

#[tokio::test]
async fn deploy_creates_everything_then_is_idempotent_and_updates_precisely() {
    let region = "us-west-1";
    let Some(ctx) = support::moto_context(region).await else {
        return;
    };
    let names = stack("create");
    let spec = spec(names.clone());
    let (r, a) = (ctx.region.as_str(), ctx.account.as_str());

    let changes = deploy::deploy(&ctx, &spec).await.unwrap();
    let expected: Vec<(String, Action)> = resources(&names)
        .into_iter()
        .map(|r| (r, Action::Created))
        .collect();
    assert_eq!(actions(&changes), expected);

    let lambda_role = check_role(
        &ctx,
        &names.lambda_role(),
        &names,
        &iam::lambda_trust_policy(),
        &iam::lambda_policy(&spec.scope, &names, r, a),
    )
    .await;
    let states_role = check_role(
        &ctx,
        &names.states_role(),
        &names,
        &iam::states_trust_policy(a),
        &iam::states_policy(&spec.scope, &names, r, a),
    )
    .await;

    for h in DEPLOYED_HANDLERS {
        let out = ctx
            .lambda()
            .get_function()
            .function_name(names.function(h))
            .send()
            .await
            .unwrap();
        let c = out.configuration().unwrap();
        assert_eq!(c.runtime().unwrap().as_str(), "provided.al2023");
        assert_eq!(c.handler(), Some("bootstrap"));
        assert_eq!(c.role(), Some(lambda_role.as_str()));
        assert_eq!(c.memory_size(), Some(2048));
        assert_eq!(c.timeout(), Some(900));
        assert_eq!(c.ephemeral_storage().map(|e| e.size()), Some(2048));
        assert_eq!(
            c.architectures(),
            &[aws_sdk_lambda::types::Architecture::X8664]
        );
        let env = c.environment().unwrap().variables().unwrap();
        assert_eq!(env["CAI_HANDLER"], h.name());
        assert_eq!(env["CAI_STORE"], "s3");
        assert_eq!(Scope::from_env(&env[ENV_SCOPE]).unwrap(), spec.scope);
        assert_eq!(
            c.code_sha256(),
            Some(deploy::code_sha256(&spec.zip).as_str())
        );
        assert_eq!(out.tags().unwrap()[STACK_TAG], names.name());
    }

    let sm = ctx
        .sfn()
        .describe_state_machine()
        .state_machine_arn(names.state_machine_arn(r, a))
        .send()
        .await
        .unwrap();
    let definition: Value = serde_json::from_str(sm.definition()).unwrap();
    assert_eq!(definition, spec.definition(r, a));
    assert_eq!(sm.role_arn(), states_role);
    assert_eq!(sm.r#type(), &aws_sdk_sfn::types::StateMachineType::Standard);

    assert_eq!(
        deploy::deployed_scope(&ctx, &names).await.unwrap(),
        Some(spec.scope.clone())
    );

    // Idempotent: nothing differs, nothing is touched.
    let again = deploy::deploy(&ctx, &spec).await.unwrap();
    assert!(
        again.iter().all(|c| c.action == Action::Unchanged),
        "{again:#?}"
    );

    // Only memory changed: exactly the four functions update, saying so.
    let mut bigger = spec.clone();
    bigger.memory_mb = 3008;
    let changes = deploy::deploy(&ctx, &bigger).await.unwrap();
    for c in &changes {
        if c.resource.starts_with("function ") {
            assert_eq!(c.action, Action::Updated, "{c}");
            assert_eq!(c.detail, "memory 2048 -> 3008 MB", "{c}");
        } else {
            assert_eq!(c.action, Action::Unchanged, "{c}");
        }
    }
    let c = ctx
        .lambda()
        .get_function()
        .function_name(names.function(cai_workflow::handlers::Handler::Infer))
        .send()
        .await
        .unwrap();
    assert_eq!(c.configuration().unwrap().memory_size(), Some(3008));

    // New code and a wider scope: code, environment and the functions' policy change.
    let mut wider = bigger.clone();
    wider.zip = test_zip(b"new binary");
    wider.scope = Scope::new(
        "cosmicai-data",
        &["100MB".into(), "1GB".into()],
        &["result".into()],
        &["models-b/Anomaly Detection/w.pt".into()],
    )
    .unwrap();
    let changes = deploy::deploy(&ctx, &wider).await.unwrap();
    assert_eq!(changes[0].action, Action::Updated);
    assert_eq!(changes[0].detail, "policy");
    assert_eq!(changes[1].action, Action::Unchanged);
    for c in &changes[2..6] {
        assert_eq!(c.action, Action::Updated, "{c}");
        assert_eq!(c.detail, "environment CAI_SCOPE, code", "{c}");
    }
    assert_eq!(changes[6].action, Action::Unchanged);
    assert_eq!(
        deploy::deployed_scope(&ctx, &names).await.unwrap(),
        Some(wider.scope.clone())
    );

    destroy(&ctx, &names).await.unwrap();
    assert_eq!(deploy::deployed_scope(&ctx, &names).await.unwrap(), None);
}

/// Consumes any canned Lambda results a failed earlier run left in this region: with an
/// empty queue moto echoes the request.
async fn drain_canned_results(ctx: &AwsContext) {
    for i in 0..200 {
        let marker = json!({ "drain": i }).to_string();
        let out = ctx
            .lambda()
            .invoke()
            .function_name("drain")
            .payload(aws_sdk_lambda::primitives::Blob::new(marker.clone()))
            .send()
            .await
            .unwrap();
        let body = out
            .payload()
            .map(|b| b.as_ref().to_vec())
            .unwrap_or_default();
        if body == marker.as_bytes() {
            return;
        }
    }
    panic!("moto's canned Lambda results never drained");
}

#[tokio::test]
async fn deployed_definition_runs_on_moto_with_canned_results() {
    let region = "eu-west-1";
    let Some(ctx) = support::moto_context(region).await else {
        return;
    };
    let names = stack("exec");
    let spec = spec(names.clone());
    deploy::deploy(&ctx, &spec).await.unwrap();
    drain_canned_results(&ctx).await;

    // Initialize writes the rank payloads to items.json and returns where they are plus the
    // run settings; the Map reads the items from S3; each rank's Infer returns its result;
    // Summarize returns the summary. moto runs no code, so the items are put into its S3 and
    // the results queued in invocation order (all Infer results look alike, so their order
    // within the Map does not matter).
    let ranks = [
        json!({"rank": 0, "file": "a.pt"}),
        json!({"rank": 1, "file": "b.pt"}),
    ];
    support::put_s3_object(
        "cosmicai-data",
        "result/r1/items.json",
        &json!(ranks).to_string(),
    );
    let items = json!({"bucket": "cosmicai-data", "key": "result/r1/items.json", "count": 2,
                       "with_data": 2});
    let init = json!({ "items": items, "run": { "run_id": "moto-1" }, "result_path": "result/r1" });
    let infer = json!({ "ok": true });
    let summary = json!({ "ranks": 2, "failed": 0 });
    support::queue_lambda_results(
        region,
        &[init.clone(), infer.clone(), infer, summary.clone()],
    );

    let payload = json!({
        "bucket": "models-b", "S3_object_name": "Anomaly Detection", "batch_size": 512,
        "result_path": "result/r1", "data_bucket": "cosmicai-data", "data_prefix": "100MB",
        "model": "models-b/Anomaly Detection/w.pt"
    });
    assert!(spec
        .scope
        .check(&cai_workflow::Payload::from_value(&payload).unwrap())
        .is_ok());
    let arn = names.state_machine_arn(&ctx.region, &ctx.account);
    let started = ctx
        .sfn()
        .start_execution()
        .state_machine_arn(&arn)
        .name(format!("run-{}", std::process::id()))
        .input(payload.to_string())
        .send()
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    let done = loop {
        let d = ctx
            .sfn()
            .describe_execution()
            .execution_arn(started.execution_arn())
            .send()
            .await
            .unwrap();
        if d.status() != &ExecutionStatus::Running {
            break d;
        }
        assert!(
            Instant::now() < deadline,
            "execution still running after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        done.status(),
        &ExecutionStatus::Succeeded,
        "error {:?} cause {:?}",
        done.error(),
        done.cause()
    );
    let output: Value = serde_json::from_str(done.output().unwrap()).unwrap();
    // The Map discards its results (ResultPath null); Summarize's lands under `summary`.
    assert_eq!(output["items"], items);
    assert_eq!(output["run"], init["run"]);
    assert_eq!(output["summary"], summary);
    assert!(output.get("map_error").is_none(), "{output}");

    // Every canned result was consumed by the execution: the queue echoes again.
    drain_canned_results(&ctx).await;
    destroy(&ctx, &names).await.unwrap();
}

#[tokio::test]
async fn destroy_removes_everything_and_then_reports_absent() {
    let region = "ap-southeast-1";
    let Some(ctx) = support::moto_context(region).await else {
        return;
    };
    let names = stack("destroy");
    deploy::deploy(&ctx, &spec(names.clone())).await.unwrap();

    let changes = destroy(&ctx, &names).await.unwrap();
    let expected_order = {
        let r = resources(&names);
        // State machine first, then functions, then roles.
        let mut o = vec![r[6].clone()];
        o.extend(r[2..6].iter().cloned());
        o.extend(r[..2].iter().cloned());
        o
    };
    assert_eq!(
        actions(&changes),
        expected_order
            .iter()
            .map(|r| (r.clone(), Action::Deleted))
            .collect::<Vec<_>>()
    );

    let e = ctx
        .iam()
        .get_role()
        .role_name(names.lambda_role())
        .send()
        .await;
    assert!(e.is_err(), "role survived");
    let e = ctx
        .lambda()
        .get_function()
        .function_name(names.function(cai_workflow::handlers::Handler::Init))
        .send()
        .await;
    assert!(e.is_err(), "function survived");
    let list = ctx.sfn().list_state_machines().send().await.unwrap();
    assert!(
        list.state_machines()
            .iter()
            .all(|s| s.name() != names.state_machine()),
        "state machine survived"
    );

    let again = destroy(&ctx, &names).await.unwrap();
    assert_eq!(
        actions(&again),
        expected_order
            .iter()
            .map(|r| (r.clone(), Action::Absent))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn destroy_and_deploy_leave_an_untagged_same_named_role_alone() {
    let region = "ca-central-1";
    let Some(ctx) = support::moto_context(region).await else {
        return;
    };
    let names = stack("foreign");
    let role = names.lambda_role();
    ctx.iam()
        .create_role()
        .role_name(&role)
        .assume_role_policy_document(iam::lambda_trust_policy().to_string())
        .send()
        .await
        .unwrap();

    let changes = destroy(&ctx, &names).await.unwrap();
    let lambda_role = changes
        .iter()
        .find(|c| c.resource == format!("role {role}"))
        .unwrap();
    assert_eq!(lambda_role.action, Action::Skipped);
    assert!(lambda_role.detail.contains(STACK_TAG), "{lambda_role}");
    assert!(changes
        .iter()
        .filter(|c| c.resource != lambda_role.resource)
        .all(|c| c.action == Action::Absent));
    ctx.iam()
        .get_role()
        .role_name(&role)
        .send()
        .await
        .expect("role still there");

    // Deploy refuses to take it over, naming it.
    let e = deploy::deploy(&ctx, &spec(names.clone()))
        .await
        .unwrap_err();
    assert!(matches!(e, DeployError::NotOurs { .. }), "{e}");
    assert!(e.to_string().contains(&format!("role {role}")), "{e}");

    ctx.iam()
        .delete_role()
        .role_name(&role)
        .send()
        .await
        .unwrap();
}
