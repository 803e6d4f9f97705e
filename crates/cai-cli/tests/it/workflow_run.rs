//! `cai run` end to end: the happy path, `cai asl` round trip through `--definition`, and
//! partition file order.

use crate::common_workflow;

use std::collections::BTreeSet;

use common_workflow::{cai, data_path_keys, Env, ORIGINAL_KEYS, PREFIX};
use serde_json::json;

#[test]
fn happy_path_predicts_every_sample_once() {
    // 6 files of 10 samples on 4 ranks: two ranks get two files, two get one.
    let env = Env::new(6, 10);
    let payload = env.payload(
        "res/happy",
        json!({"world_size": 4, "model": "seed:0", "file_limit": "6"}),
    );
    let out = env.run(&payload, &[], None);
    out.expect_code(0);
    assert!(out.stdout.contains("res/happy"), "{}", out.stdout);

    let plan = env.json("res/happy", "plan.json");
    assert_eq!(plan["world_size"], 4);
    let items = env.json("res/happy", "items.json");
    let ranks = items.as_array().unwrap();
    assert_eq!(ranks.len(), 4);
    let paths: Vec<Vec<String>> = ranks
        .iter()
        .map(|r| data_path_keys(&r["DATA_PATH"]))
        .collect();
    let f = |n: usize| format!("{PREFIX}/{n}.pt");
    assert_eq!(
        paths,
        [vec![f(1), f(2)], vec![f(3), f(4)], vec![f(5)], vec![f(6)]]
    );
    // One file is a string, several a list, as the original's DATA_PATH.
    assert!(ranks[2]["DATA_PATH"].is_string() && ranks[0]["DATA_PATH"].is_array());
    for (i, r) in ranks.iter().enumerate() {
        assert_eq!(r["RANK"], i.to_string());
        assert_eq!(r["WORLD_SIZE"], "4");
        assert_eq!(r["BATCH_SIZE"], 4);
    }

    let preds = env.assert_every_sample_once("res/happy");
    assert_eq!(preds.len(), 60);

    let summary = env.json("res/happy", "summary.json");
    assert_eq!(summary["totals"]["samples"], 60);
    assert_eq!(summary["ranks"]["planned"], 4);
    assert_eq!(summary["ranks"]["resumed"], 0);
    assert_eq!(summary["untrained"], true);
    let exec = &summary["execution"];
    assert_eq!(exec["status"], "SUCCEEDED");
    assert_eq!(exec["state_transitions"], 4 + 5, "{exec}");
    let run_id = summary["run_id"].as_str().unwrap();
    assert!(!run_id.is_empty());

    let combined = env.json("res/happy", "combined_data.json");
    let combined = combined.as_array().unwrap();
    assert_eq!(combined.len(), 4);
    for rank in 0..4u64 {
        let r = env.json("res/happy", &format!("{rank}.json"));
        for k in ORIGINAL_KEYS {
            assert!(r.get(k).is_some(), "rank {rank}: {k:?} missing: {r}");
        }
        for k in [
            "rank",
            "samples",
            "files",
            "data_path",
            "run_id",
            "predictions",
            "attempts",
        ] {
            assert_eq!(
                r[k], combined[rank as usize][k],
                "combined_data.json[{rank}].{k}"
            );
        }
        assert_eq!(r["device"], "cpu");
        assert_eq!(r["batch_size"], 4);
        assert_eq!(r["result_path"], "res/happy");
        assert_eq!(r["attempts"], 1);
        assert_eq!(r["run_id"], run_id);
        assert_eq!(r["model"], "seed:0");
        assert_eq!(r["untrained"], true);
        assert_eq!(
            r["predictions"]["key"],
            format!("res/happy/predictions/{rank}.parquet")
        );
        // Batches restart at each file: ceil(10 / 4) = 3 per file.
        let files = r["files"].as_array().unwrap().len() as u64;
        assert_eq!(r["num_batches"], 3 * files, "rank {rank}");
        assert_eq!(r["samples"], 10 * files);
        for k in ["sample_persec", "throughput_bps", "total_cpu_memory (MB)"] {
            assert!(r[k].as_f64().unwrap() > 0.0, "rank {rank}: {k} = {}", r[k]);
        }
        let inv = common_workflow::infer_invocations(&summary, rank);
        assert_eq!(inv, [(1, "ok".to_string())], "rank {rank}");
    }
    // No rank failed, so no error files; nothing is left in scratch.
    assert!(!env.results("res/happy").join("errors").exists());
    assert_eq!(
        common_workflow::walk(&env.scratch()),
        Default::default(),
        "scratch leftovers"
    );
}

#[test]
fn asl_definition_runs_like_the_generated_one() {
    let env = Env::new(4, 6);
    let payload = env.payload("res/generated", json!({"world_size": 3}));
    env.run(&payload, &[], None).expect_code(0);

    let pfile = env.payload_file(&payload.to_string());
    let asl = cai(&["asl", pfile.to_str().unwrap()], &[]);
    asl.expect_code(0);
    let def: serde_json::Value =
        serde_json::from_str(&asl.stdout).expect("`cai asl` prints one JSON document");
    assert_eq!(def["StartAt"], "Initialize");
    let map = &def["States"]["Inference"];
    assert_eq!(map["Type"], "Map");
    assert_eq!(
        map["ItemProcessor"]["States"]["Infer"]["TimeoutSeconds"],
        900
    );
    let retry = &map["ItemProcessor"]["States"]["Infer"]["Retry"];
    // The payload's policy comes after the permanent errors and Lambda's throttles.
    assert_eq!(retry[2]["MaxAttempts"], 2, "{retry}");
    assert_eq!(retry[2]["JitterStrategy"], "NONE", "{retry}");
    assert_eq!(
        retry[1]["ErrorEquals"][0], "Lambda.TooManyRequestsException",
        "{retry}"
    );
    assert_eq!(retry[1]["JitterStrategy"], "FULL", "{retry}");
    for e in [
        "cai.InvalidInput",
        "cai.InvalidPartition",
        "cai.InvalidModel",
        "Runtime.OutOfMemory",
    ] {
        assert!(
            retry[0]["ErrorEquals"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == e),
            "{e} is not in the never-retried list: {retry}"
        );
    }
    assert_eq!(retry[0]["MaxAttempts"], 0);

    let def_path = env.dir.path().join("definition.json");
    std::fs::write(&def_path, &asl.stdout).unwrap();
    let payload2 = env.payload("res/edited", json!({"world_size": 3}));
    let out = env.run(
        &payload2,
        &["--definition", def_path.to_str().unwrap()],
        None,
    );
    out.expect_code(0);

    let a = env.assert_every_sample_once("res/generated");
    let b = env.assert_every_sample_once("res/edited");
    assert_eq!(a.len(), 24);
    assert_eq!(a, b, "same model, same data: the same predictions");
    let (sa, sb) = (
        env.json("res/generated", "summary.json"),
        env.json("res/edited", "summary.json"),
    );
    assert_eq!(
        sa["execution"]["state_transitions"],
        sb["execution"]["state_transitions"]
    );
    assert_eq!(sb["execution"]["state_transitions"], 3 + 5);
    assert_eq!(sa["accuracy"], sb["accuracy"]);
}

#[test]
fn file_order_natural_and_lexicographic() {
    let env = Env::new(12, 2);
    let run = |rp: &str, order: Option<&str>| {
        let mut extra = json!({"file_limit": 3});
        if let Some(o) = order {
            extra["file_order"] = o.into();
        }
        env.run(&env.payload(rp, extra), &[], None).expect_code(0);
        let plan = env.json(rp, "plan.json");
        let files: Vec<String> = plan["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_string())
            .collect();
        let ranks: Vec<Vec<String>> = env
            .json(rp, "items.json")
            .as_array()
            .unwrap()
            .iter()
            .map(|r| data_path_keys(&r["DATA_PATH"]))
            .collect();
        let preds = env.assert_every_sample_once(rp);
        let predicted: BTreeSet<String> = preds.keys().map(|(f, _)| f.clone()).collect();
        (files, ranks, predicted)
    };
    let f = |n: &[u32]| -> Vec<String> { n.iter().map(|n| format!("{PREFIX}/{n}.pt")).collect() };

    let (files, ranks, predicted) = run("res/natural", None);
    assert_eq!(files, f(&[1, 2, 3]));
    assert_eq!(ranks, [f(&[1]), f(&[2]), f(&[3])]);
    assert_eq!(
        predicted,
        f(&[1, 2, 3]).into_iter().collect::<BTreeSet<String>>()
    );

    let (files, ranks, predicted) = run("res/natural-explicit", Some("natural"));
    assert_eq!(files, f(&[1, 2, 3]));
    assert_eq!(ranks, [f(&[1]), f(&[2]), f(&[3])]);
    assert_eq!(predicted.len(), 3);

    let (files, ranks, predicted) = run("res/lexicographic", Some("lexicographic"));
    assert_eq!(files, f(&[1, 10, 11]));
    assert_eq!(ranks, [f(&[1]), f(&[10]), f(&[11])]);
    assert_eq!(
        predicted,
        f(&[1, 10, 11]).into_iter().collect::<BTreeSet<String>>()
    );
    let plan = env.json("res/lexicographic", "plan.json");
    assert_eq!(plan["payload"]["file_order"], "lexicographic");
}

#[test]
fn precision_from_the_payload_or_the_flag_is_recorded_everywhere() {
    let env = Env::new(3, 4);
    let check = |rp: &str, want: &str| {
        env.assert_every_sample_once(rp);
        let summary = env.json(rp, "summary.json");
        assert_eq!(summary["precision"], want, "{rp}");
        assert_eq!(env.json(rp, "plan.json")["payload"]["precision"], want);
        for rank in 0..3 {
            assert_eq!(env.json(rp, &format!("{rank}.json"))["precision"], want);
            let file =
                std::fs::File::open(env.results(rp).join(format!("predictions/{rank}.parquet")))
                    .unwrap();
            let reader =
                parquet::file::reader::SerializedFileReader::new(file).expect("a parquet file");
            use parquet::file::reader::FileReader;
            let kv = reader
                .metadata()
                .file_metadata()
                .key_value_metadata()
                .cloned()
                .unwrap_or_default();
            assert!(
                kv.iter()
                    .any(|e| e.key == "cai.precision" && e.value.as_deref() == Some(want)),
                "{kv:?}"
            );
        }
    };
    env.run(
        &env.payload("res/int8", json!({"precision": "int8"})),
        &[],
        None,
    )
    .expect_code(0);
    check("res/int8", "int8");
    env.run(
        &env.payload("res/bf16", json!({})),
        &["--precision", "bf16"],
        None,
    )
    .expect_code(0);
    check("res/bf16", "bf16");
    env.run(&env.payload("res/fp32", json!({})), &[], None)
        .expect_code(0);
    check("res/fp32", "fp32");
    let out = env.run(
        &env.payload("res/bad", json!({"precision": "fp8"})),
        &[],
        None,
    );
    out.expect_code(2);
    assert!(out.stderr.contains("field `precision`"), "{}", out.stderr);
}
