//! The whole workflow over the real Lambda and S3 protocols: `cai run --lambda-endpoint`
//! executes the state machine here and invokes the handlers through the Lambda Invoke API
//! of `cargo lambda watch`, where `cai` runtime processes serve them as Lambda's
//! `bootstrap` would, reading and writing through s3s-fs. Results must equal a local run's.

use crate::common_lambda;
use crate::common_workflow;

use common_lambda::{s3_env, Emulator};
use common_workflow::{cai, Env, Out};
use serde_json::{json, Value};

/// `cai run` through the emulator, with the client's S3 pointed at s3s-fs.
fn run_on_lambda(env: &Env, emu: &Emulator, payload: &Value) -> Out {
    let path = env.payload_file(&serde_json::to_string_pretty(payload).unwrap());
    let vars = s3_env(&emu.s3);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (&k[..], &v[..])).collect();
    cai(
        &[
            "run",
            path.to_str().unwrap(),
            "--store",
            "s3",
            "--lambda-endpoint",
            &emu.lambda,
            "-q",
        ],
        &vars,
    )
}

fn start(env: &Env, infer_containers: usize) -> Option<Emulator> {
    let mut emu = Emulator::start(&env.store(), &env.dir.path().join("logs"))?;
    emu.containers(infer_containers);
    Some(emu)
}

#[test]
fn a_run_through_lambda_and_s3_equals_a_local_run() {
    let env = Env::new(5, 6);
    let Some(emu) = start(&env, 2) else { return };
    let extra = json!({"world_size": 3, "file_limit": "5"});

    env.run(&env.payload("res/local", extra.clone()), &[], None)
        .expect_code(0);
    let out = run_on_lambda(&env, &emu, &env.payload("res/lambda", extra));
    out.expect_code(0);

    let local = env.assert_every_sample_once("res/local");
    let remote = env.assert_every_sample_once("res/lambda");
    assert_eq!(remote.len(), 30);
    assert_eq!(
        local.keys().collect::<Vec<_>>(),
        remote.keys().collect::<Vec<_>>()
    );
    for (k, z) in &local {
        assert!((z - remote[k]).abs() <= 1e-5, "{k:?}: {z} vs {}", remote[k]);
    }
    let (ls, rs) = (
        env.json("res/local", "summary.json"),
        env.json("res/lambda", "summary.json"),
    );
    assert_eq!(ls["totals"]["samples"], rs["totals"]["samples"]);
    assert_eq!(ls["ranks"], rs["ranks"]);
    assert_eq!(rs["execution"]["status"], "SUCCEEDED");
    assert_eq!(rs["execution"]["state_transitions"], 3 + 5);
    // Every invocation went through Lambda: init, three ranks, summarize.
    let invocations = rs["execution"]["invocations"].as_array().unwrap();
    let handlers: Vec<&str> = invocations
        .iter()
        .map(|i| i["handler"].as_str().unwrap())
        .collect();
    assert_eq!(handlers.iter().filter(|h| **h == "infer").count(), 3);
    assert_eq!(handlers.first(), Some(&"init"));
    assert_eq!(handlers.last(), Some(&"summarize"));
    assert!(emu.log("cai-infer").contains("cai runtime ready"));
    assert!(out.stdout.contains("Succeeded"), "{}", out.stdout);
}

#[test]
fn a_function_error_reaches_retry_and_catch() {
    let env = Env::new(3, 4);
    let Some(emu) = start(&env, 1) else { return };
    // Rank 1's partition is garbage: a permanent cai.InvalidPartition, reported by the
    // emulator as HTTP 500 with Lambda's error body; not retried, caught, recorded, and
    // tolerated by the Map.
    std::fs::write(env.partition(2), b"not a partition").unwrap();
    let payload = env.payload(
        "res/bad",
        json!({"world_size": 3, "file_limit": "3", "tolerated_failure_count": 1}),
    );
    let out = run_on_lambda(&env, &emu, &payload);
    out.expect_code(3);
    // One container served all three ranks: after the first, the model is reused.
    let cached: Vec<bool> = [0, 2]
        .iter()
        .map(|r| {
            env.json("res/bad", &format!("{r}.json"))["timings"]["model_cached"]
                .as_bool()
                .unwrap()
        })
        .collect();
    assert!(cached.iter().any(|c| *c), "{cached:?}");
    let error = env.json("res/bad", "errors/1.json");
    assert_eq!(error["error"], "cai.InvalidPartition", "{error}");
    let summary = env.json("res/bad", "summary.json");
    assert_eq!(summary["ranks"]["failed"], 1, "{summary}");
    assert_eq!(summary["totals"]["samples"], 8);
    let infer_attempts = summary["execution"]["invocations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["handler"] == "infer" && i["rank"] == 1)
        .count();
    assert_eq!(infer_attempts, 1, "a permanent error is not retried");
}
