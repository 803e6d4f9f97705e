//! A run owns its result path, at the handlers' level (what two executions of one payload on
//! AWS do: each Initialize takes the lease itself, Summarize releases it), and Initialize
//! checks the weights before the Map fans out.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cai_model::weights::{seeded_weights, RawWeights};
use cai_model::AstroMaeConfig;
use cai_store::{BlockingStore, StoreConfig};
use cai_workflow::handlers::{Handler, HandlerContext};
use cai_workflow::lease::{self, Holder, LeaseError, LeaseRecord, Takeover};
use serde_json::{json, Value};

const BUCKET: &str = "cosmicai-data";
const MODEL_KEY: &str = "models/small-vitae.safetensors";

/// A local store with `files` tiny partitions and the small fixture model.
struct World {
    dir: tempfile::TempDir,
    ctx: HandlerContext,
}

impl World {
    fn new(files: usize) -> World {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let parts = root.join(BUCKET).join("parts");
        std::fs::create_dir_all(&parts).unwrap();
        for k in 0..files {
            cai_data::synth_partition(
                &parts.join(format!("{}.pt", k + 1)),
                k as u64,
                3,
                7,
                cai_data::Format::Torch,
            )
            .unwrap();
        }
        let model = root.join(BUCKET).join(MODEL_KEY);
        std::fs::create_dir_all(model.parent().unwrap()).unwrap();
        std::fs::copy(fixtures().join("small-vitae.safetensors"), &model).unwrap();
        let scratch = dir.path().join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        let store = BlockingStore::open(StoreConfig::Local { root }).unwrap();
        World {
            ctx: HandlerContext::new(store, 1, scratch),
            dir,
        }
    }

    fn results(&self, result_path: &str) -> PathBuf {
        self.dir.path().join("store").join(BUCKET).join(result_path)
    }

    fn payload(&self, result_path: &str, extra: Value) -> Value {
        let mut p = json!({
            "bucket": BUCKET,
            "batch_size": 4,
            "S3_object_name": "Anomaly Detection",
            "result_path": result_path,
            "data_bucket": BUCKET,
            "data_prefix": "parts",
            "model": format!("{BUCKET}/{MODEL_KEY}"),
        });
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    }

    /// Initialize as the generated definition calls it, for execution `execution`.
    fn init(&self, payload: &Value, execution: &str) -> Result<Value, cai_workflow::HandlerError> {
        Handler::Init.call(
            &self.ctx,
            json!({ "payload": payload, "rank_items": "s3", "execution": execution }),
        )
    }

    fn lease(&self, result_path: &str) -> Option<LeaseRecord> {
        lease::read(&self.ctx.store, BUCKET, result_path)
            .unwrap()
            .map(|r| r.unwrap())
    }
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/model")
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_second_execution_is_refused_without_touching_the_first_one() {
    let w = World::new(3);
    let rp = "res/twice";
    let payload = w.payload(rp, json!({}));
    let first = w
        .init(&payload, "arn:aws:states:us-east-1:1:execution:cai:first")
        .unwrap();
    assert_eq!(first["lease"]["release"], "summarize");
    let run_id = first["run"]["run_id"].as_str().unwrap().to_string();
    let held = w.lease(rp).expect("Initialize took the lease");
    assert_eq!(held.run_id, run_id);
    assert_eq!(held.holder, lease::HolderKind::Aws);
    assert!(!held.renews);
    assert_eq!(
        held.execution.as_deref(),
        Some("arn:aws:states:us-east-1:1:execution:cai:first")
    );
    // Three partitions on three ranks: the expiry covers three attempts of each and more.
    assert!(held.expires_unix - held.started_unix >= 3 * 900, "{held:?}");
    // What a finished earlier run left: the second Initialize must not delete it.
    std::fs::write(w.results(rp).join("summary.json"), b"{\"earlier\": true}").unwrap();
    let before = snapshot(&w.results(rp));

    let err = w
        .init(&payload, "arn:aws:states:us-east-1:1:execution:cai:second")
        .unwrap_err();
    assert_eq!(err.error_type, "cai.RunInProgress", "{err}");
    let msg = &err.error_message;
    assert!(msg.contains(&format!("in use by run {run_id}")), "{msg}");
    assert!(
        msg.contains("execution arn:aws:states:us-east-1:1:execution:cai:first"),
        "{msg}"
    );
    assert!(msg.contains(&format!("{BUCKET}/{rp}")), "{msg}");
    assert!(msg.contains("--break-lease"), "{msg}");
    assert_eq!(
        snapshot(&w.results(rp)),
        before,
        "the refused run changed files"
    );

    // A retried Initialize of the first execution carries on under its run id.
    let again = w
        .init(&payload, "arn:aws:states:us-east-1:1:execution:cai:first")
        .unwrap();
    assert_eq!(again["run"]["run_id"], run_id);

    // Summarize of the first execution releases it; then the second may run.
    let summary = Handler::Summarize.call(&w.ctx, again).unwrap();
    assert_eq!(summary["ranks"]["planned"], 3, "{summary}");
    assert!(w.lease(rp).is_none(), "Summarize released the lease");
    let second = w
        .init(&payload, "arn:aws:states:us-east-1:1:execution:cai:second")
        .unwrap();
    assert_ne!(second["run"]["run_id"], run_id);
}

#[test]
fn an_engine_lease_is_accepted_only_under_its_run_id() {
    let w = World::new(2);
    let rp = "res/engine";
    let got = lease::acquire(
        &w.ctx.store,
        BUCKET,
        rp,
        "engine-run",
        &Holder::this_process(),
        &Takeover::Never,
    )
    .unwrap();
    assert!(!got.adopted && got.took_over.is_none());
    let mut payload = w.payload(rp, json!({}));
    payload["cai_lease"] = json!({"run_id": "engine-run"});
    let out = w.init(&payload, "local-exec").unwrap();
    assert_eq!(out["run"]["run_id"], "engine-run");
    assert_eq!(out["lease"]["release"], "engine");
    let plan: Value =
        serde_json::from_slice(&std::fs::read(w.results(rp).join("plan.json")).unwrap()).unwrap();
    assert!(
        plan["payload"].get("cai_lease").is_none(),
        "{}",
        plan["payload"]
    );
    // Summarize leaves an engine's lease to the engine.
    Handler::Summarize.call(&w.ctx, out).unwrap();
    assert_eq!(w.lease(rp).unwrap().run_id, "engine-run");

    // Another engine's run id, or a console start, is refused, naming the pid.
    payload["cai_lease"] = json!({"run_id": "other-run"});
    let err = w.init(&payload, "x").unwrap_err();
    assert_eq!(err.error_type, "cai.RunInProgress");
    assert!(
        err.error_message
            .contains(&format!("pid {} on host", std::process::id())),
        "{err}"
    );
    payload.as_object_mut().unwrap().remove("cai_lease");
    assert_eq!(
        w.init(&payload, "y").unwrap_err().error_type,
        "cai.RunInProgress"
    );
    assert!(got.lease.release().unwrap());
    assert!(w.lease(rp).is_none());
}

#[test]
fn a_stale_lease_is_taken_over_only_when_asked_and_renewal_never_overwrites_a_takeover() {
    let w = World::new(2);
    let rp = "res/stale";
    // A lease that expired a minute ago.
    let mut stale = lease::acquire(
        &w.ctx.store,
        BUCKET,
        rp,
        "old-run",
        &Holder::execution(Some("old-exec".into()), Duration::from_secs(3600)),
        &Takeover::Never,
    )
    .unwrap()
    .lease;
    let mut record = w.lease(rp).unwrap();
    record.expires_unix = lease::now_unix() - 60;
    record.expires = lease::rfc3339(record.expires_unix);
    std::fs::write(
        w.results(rp).join("lease.json"),
        serde_json::to_vec_pretty(&record).unwrap(),
    )
    .unwrap();

    let payload = w.payload(rp, json!({}));
    let err = w.init(&payload, "new-exec").unwrap_err();
    assert_eq!(err.error_type, "cai.RunInProgress");
    assert!(
        err.error_message
            .contains("which is gone: its lease expired"),
        "{err}"
    );
    assert!(err.error_message.contains("--resume"), "{err}");

    let mut resume = payload.clone();
    resume["resume"] = json!(true);
    let out = w.init(&resume, "new-exec").unwrap();
    let now = w.lease(rp).unwrap();
    assert_eq!(now.took_over.as_deref(), Some("old-run"));
    assert_eq!(now.run_id, out["run"]["run_id"].as_str().unwrap());

    // The old holder comes back: its renewal and its release leave the new lease alone.
    match stale.renew() {
        Err(LeaseError::Lost {
            current: Some(c), ..
        }) => assert_eq!(c.run_id, now.run_id),
        other => panic!("renewal after a takeover: {other:?}"),
    }
    assert!(!stale.release().unwrap());
    assert_eq!(w.lease(rp).unwrap(), now);

    // A break names the run it breaks: another run id is not broken.
    let mut breaking = payload.clone();
    breaking["cai_lease"] = json!({"take_over": "not-the-holder"});
    assert_eq!(
        w.init(&breaking, "third").unwrap_err().error_type,
        "cai.RunInProgress"
    );
    breaking["cai_lease"] = json!({"take_over": now.run_id});
    w.init(&breaking, "third").unwrap();
    assert_eq!(w.lease(rp).unwrap().took_over, Some(now.run_id));
}

#[test]
fn of_two_racing_takers_one_wins() {
    let w = World::new(1);
    let rp = "res/race";
    let winners: Vec<bool> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let store = &w.ctx.store;
                s.spawn(move || {
                    lease::acquire(
                        store,
                        BUCKET,
                        rp,
                        &format!("run-{i}"),
                        &Holder::this_process(),
                        &Takeover::Never,
                    )
                    .is_ok()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(winners.iter().filter(|w| **w).count(), 1, "{winners:?}");
}

/// Writes `raw` as safetensors (F32) at `path`.
fn write_safetensors(raw: &RawWeights, path: &Path) {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = raw
        .tensors
        .iter()
        .map(|(n, t)| {
            (
                n.clone(),
                t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                t.shape.clone(),
            )
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(n, b, s)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

/// Writes `raw` as a PyTorch state dict (`torch.save(model.state_dict())` layout) at `path`.
fn write_state_dict(raw: &RawWeights, path: &Path) {
    use cai_torchfile::{DType, SaveLayout, TensorSpec, TorchWriter};
    let specs = raw
        .tensors
        .iter()
        .map(|(n, t)| TensorSpec::new(n.clone(), DType::F32, t.shape.clone()))
        .collect();
    let mut w = TorchWriter::create(path, SaveLayout::StateDict, specs, 2).unwrap();
    for t in raw.tensors.values() {
        w.write_f32(&t.data).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn bad_weights_fail_initialize_naming_the_model_once_and_writing_nothing() {
    let w = World::new(2);
    let models = w.dir.path().join("store").join(BUCKET).join("models");
    let pt = std::fs::read(fixtures().join("small-vitae.state_dict.pt")).unwrap();
    std::fs::write(models.join("truncated.pt"), &pt[..1 << 20]).unwrap();
    std::fs::write(models.join("notes.pt"), b"these are not weights\n").unwrap();
    let mut raw = cai_model::weights::load_raw(&cai_model::WeightSource::File(
        fixtures().join("small-vitae.safetensors"),
    ))
    .unwrap();
    // [1, hidden] written as [hidden, 1].
    let last = raw.tensors.get_mut("concat_block.2.weight").unwrap();
    last.shape.reverse();
    write_safetensors(&raw, &models.join("wrong-shape.safetensors"));

    for (name, want) in [
        ("truncated.pt", "zip archive"),
        ("notes.pt", "not a weight file"),
        (
            "wrong-shape.safetensors",
            "concat_block.2.weight: expected shape",
        ),
        ("absent.pt", "not found in the store"),
    ] {
        let rp = format!("res/{name}");
        let payload = w.payload(&rp, json!({"model": format!("{BUCKET}/models/{name}")}));
        let err = w.init(&payload, "exec").unwrap_err();
        assert_eq!(err.error_type, "cai.InvalidModel", "{name}: {err}");
        let msg = &err.error_message;
        assert!(
            msg.starts_with(&format!("model {BUCKET}/models/{name}: ")),
            "{msg}"
        );
        assert!(msg.contains(want), "{name}: {msg}");
        assert_eq!(
            msg.matches(name).count(),
            1,
            "{name} named more than once: {msg}"
        );
        assert!(!msg.contains(w.dir.path().to_str().unwrap()), "{msg}");
        // Nothing written, and the lease given back.
        assert_eq!(snapshot(&w.results(&rp)), Vec::new(), "{name}");
    }
}

#[test]
fn initialize_checks_a_full_size_checkpoint_in_well_under_a_second() {
    let w = World::new(1);
    let models = w.dir.path().join("store").join(BUCKET).join("models");
    let raw = seeded_weights(&AstroMaeConfig::published(), 0);
    write_safetensors(&raw, &models.join("full.safetensors"));
    write_state_dict(&raw, &models.join("full.pt"));
    for name in ["full.safetensors", "full.pt"] {
        let path = models.join(name);
        let bytes = std::fs::metadata(&path).unwrap().len();
        assert!(bytes > 60_000_000, "{name}: {bytes} bytes");
        let payload = w.payload(
            &format!("res/{name}"),
            json!({"model": format!("{BUCKET}/models/{name}")}),
        );
        let t = Instant::now();
        let out = w.init(&payload, &format!("exec-{name}")).unwrap();
        let whole = t.elapsed();
        let check = &out["model_check"];
        assert_eq!(check["parameters"], 15_902_889, "{check}");
        let seconds = check["seconds"].as_f64().unwrap();
        eprintln!(
            "{name} ({:.1} MB): weights checked in {:.1} ms; Initialize took {:.1} ms",
            bytes as f64 / 1e6,
            seconds * 1e3,
            whole.as_secs_f64() * 1e3
        );
        // Typically a few milliseconds; generous for a loaded machine.
        assert!(seconds < 1.0, "{name}: {seconds} s");
        // A full load, for comparison.
        let t = Instant::now();
        cai_model::load_model(&cai_model::WeightSource::File(path)).unwrap();
        eprintln!(
            "{name}: a full load takes {:.1} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
    }
}
