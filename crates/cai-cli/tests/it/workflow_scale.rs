//! The workflow past what fits in a state: rank items read from `items.json` by the Map's
//! ItemReader, Map results written by its ResultWriter, warm workers serving thousands of
//! invocations, Lambda-style throttling absorbed by the definition's retries, the 256 KiB
//! state limit enforced as Step Functions enforces it, and bounded payload counts.

use crate::common_workflow;

use common_workflow::{cai, Env};
use serde_json::{json, Value};

/// The invocation records of `handler` in a summary's execution record.
fn invocations<'a>(summary: &'a Value, handler: &str) -> Vec<&'a Value> {
    summary["execution"]["invocations"]
        .as_array()
        .expect("summary.execution.invocations")
        .iter()
        .filter(|i| i["handler"] == handler)
        .collect()
}

#[test]
fn two_thousand_ranks_go_through_the_item_reader_each_sample_once() {
    let ranks = 2_000u64;
    let env = Env::new(ranks as usize, 1);
    let rp = "res/scale";
    let out = env.run(&env.payload(rp, json!({"batch_size": 1})), &[], None);
    out.expect_code(0);
    env.assert_every_sample_once(rp);

    let summary = env.json(rp, "summary.json");
    assert_eq!(summary["ranks"]["succeeded"], ranks);
    assert_eq!(
        summary["execution"]["state_transitions"],
        ranks + 5,
        "{}",
        summary["execution"]["state_transitions"]
    );
    assert!(
        out.stdout.contains(&format!("{ranks}/{ranks}")),
        "the report says N of N ranks: {}",
        out.stdout
    );

    // The Map's results went to the store through the ResultWriter (a folder per map run
    // under the result path), not into the state.
    let runs: Vec<_> = std::fs::read_dir(env.results(rp))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("manifest.json").exists())
        .collect();
    assert_eq!(runs.len(), 1, "one map run folder: {runs:?}");
    let manifest = common_workflow::read_json(&runs[0].join("manifest.json"));
    assert_eq!(manifest["DestinationBucket"], common_workflow::BUCKET);
    let succeeded = common_workflow::read_json(&runs[0].join("SUCCEEDED_0.json"));
    assert_eq!(succeeded.as_array().map(Vec::len), Some(ranks as usize));
    assert!(manifest["ResultFiles"]["FAILED"]
        .as_array()
        .unwrap()
        .is_empty());

    // Warm workers: one cold start per worker, every other invocation warm.
    let infer = invocations(&summary, "infer");
    assert_eq!(infer.len(), ranks as usize);
    let cold = infer.iter().filter(|i| i["cold"] == true).count();
    let warm = infer.iter().filter(|i| i["cold"] == false).count();
    assert!(cold <= 2, "at most one cold start per slot, got {cold}");
    assert_eq!(
        cold + warm,
        ranks as usize,
        "cold or warm recorded for each"
    );
    let workers: std::collections::BTreeSet<u64> = infer
        .iter()
        .map(|i| i["worker"].as_u64().expect("worker recorded"))
        .collect();
    assert!(workers.len() <= 2, "{workers:?}");
    assert!(infer
        .iter()
        .all(|i| i["started_seconds"].as_f64().is_some()));
}

/// The definition `cai asl` prints, turned back into the older inline shape: Initialize gets
/// the bare payload and the Map reads the rank payloads from its output's `body`.
fn inline_definition(env: &Env) -> std::path::PathBuf {
    let out = cai(&["asl"], &[]);
    out.expect_code(0);
    let mut def: Value = serde_json::from_str(&out.stdout).expect("cai asl prints JSON");
    let states = def["States"].as_object_mut().unwrap();
    states["Initialize"]
        .as_object_mut()
        .unwrap()
        .remove("Parameters");
    let map = states["Inference"].as_object_mut().unwrap();
    map.remove("ItemReader");
    map.remove("ResultWriter");
    map.insert("ItemsPath".into(), "$.body".into());
    let path = env.dir.path().join("inline-definition.json");
    std::fs::write(&path, serde_json::to_string_pretty(&def).unwrap()).unwrap();
    path
}

#[test]
fn a_definition_of_the_older_inline_shape_still_runs() {
    let env = Env::new(5, 3);
    let def = inline_definition(&env);
    let rp = "res/inline";
    env.run(
        &env.payload(rp, json!({})),
        &["--definition", def.to_str().unwrap()],
        None,
    )
    .expect_code(0);
    env.assert_every_sample_once(rp);
}

#[test]
fn an_inline_state_over_256_kib_fails_as_on_step_functions() {
    let env = Env::new(4, 2);
    let def = inline_definition(&env);
    let rp = "res/too-big";
    // 1,000 rank payloads inline are ~330 KB: over Step Functions' 256 KiB state limit.
    let out = env.run(
        &env.payload(rp, json!({"world_size": 1000})),
        &["--definition", def.to_str().unwrap()],
        None,
    );
    out.expect_code(1);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("States.DataLimitExceeded"), "{all}");
    assert!(!env.results(rp).join("0.json").exists(), "no rank ran");

    // The generated definition reads the same 1,000 ranks from items.json and succeeds.
    let rp = "res/items";
    env.run(&env.payload(rp, json!({"world_size": 1000})), &[], None)
        .expect_code(0);
    env.assert_every_sample_once(rp);
    let summary = env.json(rp, "summary.json");
    assert_eq!(summary["ranks"]["planned"], 1000);
    assert_eq!(summary["ranks"]["empty"], 996);
}

#[test]
fn throttled_invocations_are_retried_and_every_sample_counted_once() {
    let env = Env::new(6, 5);
    let rp = "res/throttled";
    // Two slots but a quota of one invocation at a time: the second is answered as Lambda
    // answers an account over its concurrency, and the definition's retries absorb it.
    let out = env.run(&env.payload(rp, json!({})), &[], Some("quota:1"));
    out.expect_code(0);
    env.assert_every_sample_once(rp);
    let summary = env.json(rp, "summary.json");
    let transitions = summary["execution"]["state_transitions"].as_u64().unwrap();
    assert!(
        transitions > 6 + 5,
        "retries are transitions: {transitions}"
    );
    assert!(out.stdout.contains("throttled"), "{}", out.stdout);
    // A throttled call never ran: only successful invocations are recorded.
    assert!(invocations(&summary, "infer")
        .iter()
        .all(|i| i["outcome"] == "ok"));
}

#[test]
fn payload_counts_are_bounded_and_named() {
    let env = Env::new(1, 1);
    for (field, value) in [
        ("world_size", json!(1_000_000_000u64)),
        ("file_limit", json!("99999999999")),
        ("tolerated_failure_count", json!(1_000_000)),
        ("batch_size", json!(1 << 20)),
    ] {
        let out = env.run(
            &env.payload("res/bounds", json!({ field: value })),
            &[],
            None,
        );
        out.expect_code(2);
        assert!(
            out.stderr.contains(&format!("field `{field}`")) && out.stderr.contains(" to "),
            "{field}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("alloc"), "{}", out.stderr);
    }
}
