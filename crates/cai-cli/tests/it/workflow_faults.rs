//! `cai run` under injected faults (`CAI_FAULT`) and bad partitions: retries, the
//! never-retried errors, failure tolerance, exit codes, and `--resume` afterwards. Each ends
//! with the "every planned sample exactly once" check where the run can finish.

use crate::common_workflow;

use common_workflow::{failed_rank, infer_invocations, synth_into, Env, PREFIX};
use serde_json::{json, Value};

fn outcomes(v: &[(u64, &str)]) -> Vec<(u64, String)> {
    v.iter().map(|(a, o)| (*a, o.to_string())).collect()
}

/// The wall seconds of rank `rank`'s inference invocation on `attempt`.
fn invocation_wall(summary: &Value, rank: u64, attempt: u64) -> f64 {
    summary["execution"]["invocations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["handler"] == "infer" && i["rank"] == rank && i["attempt"] == attempt)
        .and_then(|i| i["wall_seconds"].as_f64())
        .unwrap()
}

/// Runs with a fault that strikes one rank on its first attempt only; the retry must heal it.
fn retried_fault(fault: &str, rank: u64, error: &str, extra: Value) -> (Env, Value) {
    let env = Env::new(6, 10);
    let rp = "res/fault";
    let out = env.run(&env.payload(rp, extra), &[], Some(fault));
    out.expect_code(0);
    env.assert_every_sample_once(rp);
    let summary = env.json(rp, "summary.json");
    assert_eq!(
        infer_invocations(&summary, rank),
        outcomes(&[(1, error), (2, "ok")]),
        "{}",
        summary["execution"]["invocations"]
    );
    for other in (0..6).filter(|r| *r != rank) {
        assert_eq!(infer_invocations(&summary, other), outcomes(&[(1, "ok")]));
    }
    let result = env.json(rp, &format!("{rank}.json"));
    assert_eq!(result["attempts"], 2, "{result}");
    assert_eq!(result["run_id"], summary["run_id"]);
    assert_eq!(env.json(rp, &format!("attempts/{rank}.json"))["attempt"], 2);
    assert!(!env.results(rp).join("errors").exists());
    assert_eq!(summary["execution"]["status"], "SUCCEEDED");
    // A killed attempt cannot clean its scratch folder; the next invocation removes it.
    let left: Vec<_> = std::fs::read_dir(env.scratch())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "scratch not cleaned: {left:?}");
    (env, summary)
}

#[test]
fn kill_mid_partition_is_retried() {
    retried_fault("kill@1#1", 1, "Runtime.ExitError", json!({}));
}

#[test]
fn panic_is_retried() {
    retried_fault("panic@2#1", 2, "Runtime.ExitError", json!({}));
}

#[test]
fn hang_times_out_and_is_retried() {
    let (_env, summary) = retried_fault(
        "hang@0#1",
        0,
        "States.Timeout",
        json!({"timeout_seconds": 3}),
    );
    let wall = invocation_wall(&summary, 0, 1);
    assert!(
        (3.0..10.0).contains(&wall),
        "timed-out attempt took {wall} s"
    );
}

#[test]
fn oom_is_not_retried_and_resume_recomputes_only_that_rank() {
    let env = Env::new(6, 10);
    let rp = "res/oom";
    let payload = env.payload(rp, json!({"memory_mb": 300, "tolerated_failure_count": 1}));
    let out = env.run(&payload, &[], Some("oom@3"));
    out.expect_code(3);
    assert!(out.stdout.contains("FAILED rank 3"), "{}", out.stdout);

    let first = env.json(rp, "summary.json");
    assert_eq!(first["status"], "partial", "{first}");
    assert_eq!(first["execution"]["status"], "SUCCEEDED");
    assert_eq!(first["ranks"]["failed"], 1);
    assert_eq!(first["ranks"]["succeeded"], 5);
    assert_eq!(first["totals"]["samples"], 50);
    let failed = failed_rank(&first, 3);
    assert_eq!(failed["error"], "Runtime.OutOfMemory", "{failed}");
    assert_eq!(failed["attempts"], 1, "{failed}");
    assert_eq!(failed["data_path"], format!("{PREFIX}/4.pt"));
    assert!(
        failed["cause"].as_str().unwrap().contains("300"),
        "the cause names the limit: {failed}"
    );
    assert_eq!(first["failed_ranks"].as_array().unwrap().len(), 1);
    assert_eq!(
        infer_invocations(&first, 3),
        outcomes(&[(1, "Runtime.OutOfMemory")]),
        "out of memory is never retried"
    );
    let err = env.json(rp, "errors/3.json");
    assert_eq!(err["rank"], 3);
    assert_eq!(err["error"], "Runtime.OutOfMemory");
    assert_eq!(err["run_id"], first["run_id"]);
    let res = env.results(rp);
    assert!(!res.join("3.json").exists());
    assert!(!res.join("predictions/3.parquet").exists());
    let combined = env.json(rp, "combined_data.json");
    let ranks: Vec<u64> = combined
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rank"].as_u64().unwrap())
        .collect();
    assert_eq!(ranks, [0, 1, 2, 4, 5]);

    let keep: Vec<(u64, Vec<u8>, Vec<u8>)> = [0u64, 1, 2, 4, 5]
        .iter()
        .map(|r| {
            (
                *r,
                std::fs::read(res.join(format!("{r}.json"))).unwrap(),
                std::fs::read(res.join(format!("predictions/{r}.parquet"))).unwrap(),
            )
        })
        .collect();

    let out = env.run(&payload, &["--resume"], None);
    out.expect_code(0);
    env.assert_every_sample_once(rp);
    let second = env.json(rp, "summary.json");
    assert_ne!(second["run_id"], first["run_id"]);
    assert_eq!(second["ranks"]["resumed"], 5, "{}", second["ranks"]);
    assert_eq!(second["totals"]["samples"], 60);
    for (r, json, parquet) in &keep {
        assert!(
            &std::fs::read(res.join(format!("{r}.json"))).unwrap() == json,
            "rank {r}'s result was rewritten"
        );
        assert!(
            &std::fs::read(res.join(format!("predictions/{r}.parquet"))).unwrap() == parquet,
            "rank {r}'s predictions were rewritten"
        );
        assert_eq!(
            env.json(rp, &format!("{r}.json"))["run_id"],
            first["run_id"]
        );
    }
    let r3 = env.json(rp, "3.json");
    assert_eq!(r3["run_id"], second["run_id"]);
    assert_eq!(r3["attempts"], 1);
}

/// Overwrites (or truncates) partition `n` and returns its original bytes.
fn damage(env: &Env, n: usize, truncate: bool) -> Vec<u8> {
    let path = env.partition(n);
    let original = std::fs::read(&path).unwrap();
    if truncate {
        std::fs::write(&path, &original[..original.len() / 2]).unwrap();
    } else {
        let garbage: Vec<u8> = (0..original.len())
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3])
            .collect();
        std::fs::write(&path, garbage).unwrap();
    }
    original
}

/// Regenerates partition `n` with the same synth seed and puts it back.
fn restore(env: &Env, n: usize, original: &[u8]) {
    let side = env.dir.path().join("regenerated");
    synth_into(&side, 6, 10, 7);
    let again = std::fs::read(side.join(format!("{n}.pt"))).unwrap();
    assert!(
        again == original,
        "synth is not reproducible for partition {n}"
    );
    std::fs::write(env.partition(n), again).unwrap();
}

#[test]
fn corrupt_partition_is_not_retried_and_tolerated() {
    let env = Env::new(6, 10);
    let rp = "res/corrupt";
    let payload = env.payload(rp, json!({"tolerated_failure_count": 1}));
    let original = damage(&env, 4, false);
    let out = env.run(&payload, &[], None);
    out.expect_code(3);
    let first = env.json(rp, "summary.json");
    assert_eq!(first["status"], "partial");
    assert_eq!(first["ranks"]["succeeded"], 5);
    assert_eq!(first["totals"]["samples"], 50);
    let failed = failed_rank(&first, 3);
    assert_eq!(failed["error"], "cai.InvalidPartition", "{failed}");
    assert_eq!(failed["attempts"], 1);
    let cause = failed["cause"].as_str().unwrap();
    assert!(cause.contains(&format!("{PREFIX}/4.pt")), "{cause}");
    assert_eq!(
        infer_invocations(&first, 3),
        outcomes(&[(1, "cai.InvalidPartition")])
    );
    assert!(
        out.stdout.contains(&format!("{PREFIX}/4.pt")),
        "{}",
        out.stdout
    );

    restore(&env, 4, &original);
    env.run(&payload, &["--resume"], None).expect_code(0);
    env.assert_every_sample_once(rp);
    let second = env.json(rp, "summary.json");
    assert_eq!(second["ranks"]["resumed"], 5);
    assert_eq!(second["totals"]["samples"], 60);
}

#[test]
fn corrupt_partition_without_tolerance_fails_the_execution() {
    let env = Env::new(6, 10);
    let rp = "res/corrupt-strict";
    let payload = env.payload(rp, json!({}));
    let original = damage(&env, 2, true);
    let out = env.run(&payload, &[], None);
    out.expect_code(1);
    assert!(out.stdout.contains("execution failed"), "{}", out.stdout);

    let first = env.json(rp, "summary.json");
    assert!(
        first["status"] == "partial" || first["status"] == "failed",
        "{}",
        first["status"]
    );
    assert_eq!(first["execution"]["status"], "FAILED");
    assert_eq!(
        first["map_error"]["Error"], "States.ExceedToleratedFailureThreshold",
        "{}",
        first["map_error"]
    );
    let failed = failed_rank(&first, 1);
    assert_eq!(failed["error"], "cai.InvalidPartition", "{failed}");
    assert_eq!(failed["attempts"], 1);
    assert!(
        failed["cause"]
            .as_str()
            .unwrap()
            .contains(&format!("{PREFIX}/2.pt")),
        "{failed}"
    );
    assert_eq!(
        infer_invocations(&first, 1),
        outcomes(&[(1, "cai.InvalidPartition")])
    );
    let succeeded = first["ranks"]["succeeded"].as_u64().unwrap();

    restore(&env, 2, &original);
    env.run(&payload, &["--resume"], None).expect_code(0);
    env.assert_every_sample_once(rp);
    let second = env.json(rp, "summary.json");
    assert_eq!(second["ranks"]["resumed"], succeeded, "{}", second["ranks"]);
    assert_eq!(second["totals"]["samples"], 60);
    assert!(second.get("map_error").is_none_or(Value::is_null));
}

#[test]
fn failures_beyond_tolerance_fail_the_execution_and_name_each_rank() {
    let env = Env::new(6, 10);
    let rp = "res/beyond";
    let payload = env.payload(
        rp,
        json!({
            "tolerated_failure_count": 1,
            "retry": {"max_attempts": 1, "interval_seconds": 1, "jitter": "NONE"},
        }),
    );
    let out = env.run(&payload, &[], Some("error@0,error@1"));
    out.expect_code(1);
    for r in [0, 1] {
        assert!(
            out.stdout.contains(&format!("FAILED rank {r} ")),
            "{}",
            out.stdout
        );
    }
    let s = env.json(rp, "summary.json");
    assert_eq!(s["execution"]["status"], "FAILED");
    assert_eq!(s["execution"]["error"], "cai.TooManyRanksFailed");
    assert_eq!(
        s["map_error"]["Error"],
        "States.ExceedToleratedFailureThreshold"
    );
    assert_ne!(s["status"], "succeeded");
    for r in [0, 1] {
        let f = failed_rank(&s, r);
        assert_eq!(f["error"], "cai.InjectedFault", "{f}");
        assert_eq!(f["attempts"], 2, "{f}");
        assert!(f["cause"].as_str().unwrap().contains("injected"), "{f}");
        assert_eq!(
            infer_invocations(&s, r),
            outcomes(&[(1, "cai.InjectedFault"), (2, "cai.InjectedFault")])
        );
        let e = env.json(rp, &format!("errors/{r}.json"));
        assert_eq!(e["run_id"], s["run_id"]);
    }
    // Whatever else ran is counted once and the failed ranks have no results.
    let ok = s["ranks"]["succeeded"].as_u64().unwrap();
    assert_eq!(s["totals"]["samples"], ok * 10);
    assert_eq!(
        s["ranks"]["failed"].as_u64().unwrap() + ok,
        6,
        "{}",
        s["ranks"]
    );
}
