//! The `cai` binary as a Lambda custom runtime (`provided.al2023`, executable `bootstrap`):
//! the `lambda_runtime` crate speaks the Runtime API, and each event goes to the same
//! handler functions the local engine runs. One process is one Lambda container, so the
//! store client and the model (see `cai_workflow::handlers::warm`) outlive an invocation and
//! warm invocations skip the model download and build.

use std::sync::Arc;
use std::time::Instant;

use cai_store::{BlockingStore, StoreConfig, STORE_ENV_VAR};
use cai_workflow::definition::handler_of_resource;
use cai_workflow::error::kind;
use cai_workflow::handlers::{Handler, HandlerContext};
use cai_workflow::HandlerError;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

/// Names the handler a function serves (`init`, `infer`, `failure`, `summarize`); set by
/// `cai aws deploy`. Without it the function name's suffix (`<name>-infer`) decides.
pub const HANDLER_ENV: &str = "CAI_HANDLER";

/// Set by Lambda (and its emulators) in every runtime process.
pub const RUNTIME_API_ENV: &str = "AWS_LAMBDA_RUNTIME_API";

/// True when this process was started by Lambda (or an emulator) as a runtime.
pub fn in_lambda() -> bool {
    std::env::var_os(RUNTIME_API_ENV).is_some()
}

/// The handler to serve, from `CAI_HANDLER` or else the function name.
pub fn choose_handler(
    handler_var: Option<&str>,
    function_name: Option<&str>,
) -> Result<Handler, String> {
    if let Some(h) = handler_var.filter(|h| !h.is_empty()) {
        return Handler::from_name(h).ok_or_else(|| {
            format!("{HANDLER_ENV}={h:?}: expected init, infer, failure or summarize")
        });
    }
    function_name
        .and_then(handler_of_resource)
        .ok_or_else(|| {
            format!(
                "set {HANDLER_ENV} (init, infer, failure or summarize), or name the function <name>-<handler>; function name is {:?}",
                function_name.unwrap_or("")
            )
        })
}

/// Where the runtime's handlers keep data: `CAI_STORE`, defaulting to S3 (a Lambda has no
/// useful local folder).
pub fn store_config() -> Result<StoreConfig, String> {
    match std::env::var(STORE_ENV_VAR) {
        Ok(s) if !s.is_empty() => s.parse().map_err(|e| format!("{STORE_ENV_VAR}={s:?}: {e}")),
        _ => Ok(StoreConfig::S3Buckets),
    }
}

/// A handler error in the shape Lambda reports (`errorType`, `errorMessage`), so Step
/// Functions' Retry and Catch see cai's error names.
#[derive(Debug)]
struct Failure(HandlerError);

impl From<Failure> for Diagnostic {
    fn from(f: Failure) -> Diagnostic {
        Diagnostic {
            error_type: f.0.error_type,
            error_message: f.0.error_message,
        }
    }
}

/// Memory Lambda allocates one vCPU's worth of CPU for.
pub const MB_PER_VCPU: u64 = 1_769;

/// Inference threads for a function of `memory_mb`: the vCPUs that memory buys (one per
/// 1,769 MB, rounded to the nearest, up to 6 at 10,240 MB), never more than the cores the
/// sandbox shows. More threads than vCPUs would only share the same CPU time; fewer would
/// leave paid-for vCPUs idle.
pub fn threads_for_memory(memory_mb: Option<u64>, cores: usize) -> usize {
    let vcpus = match memory_mb {
        Some(m) => (((m + MB_PER_VCPU / 2) / MB_PER_VCPU) as usize).clamp(1, 6),
        None => cores,
    };
    vcpus.min(cores.max(1))
}

/// Serves invocations until the Runtime API goes away. `started` is when the process
/// started, for the cold-start line in the log.
pub fn serve(started: Instant) -> Result<(), String> {
    let handler = choose_handler(
        std::env::var(HANDLER_ENV).ok().as_deref(),
        std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok().as_deref(),
    )?;
    let store = BlockingStore::open(store_config()?).map_err(|e| format!("store: {e}"))?;
    let threads = std::env::var("CAI_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| {
            let memory = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").ok();
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            threads_for_memory(memory.as_deref().and_then(|m| m.parse().ok()), cores)
        });
    let ctx = Arc::new(HandlerContext::new(store, threads, std::env::temp_dir()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    tracing::info!(
        handler = handler.name(),
        threads,
        "cai runtime ready {:.1} ms after process start",
        started.elapsed().as_secs_f64() * 1000.0
    );
    runtime
        .block_on(lambda_runtime::run(service_fn(
            move |ev: LambdaEvent<Value>| {
                let ctx = ctx.clone();
                async move { call(handler, ctx, ev.payload).await.map_err(Failure) }
            },
        )))
        .map_err(|e| format!("lambda runtime: {e}"))
}

/// Runs one invocation on a plain thread: the handlers do blocking I/O and compute, and
/// their blocking store refuses to run inside a tokio context (which `spawn_blocking`
/// threads carry).
async fn call(
    handler: Handler,
    ctx: Arc<HandlerContext>,
    event: Value,
) -> Result<Value, HandlerError> {
    let t = Instant::now();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("cai-{}", handler.name()))
        .spawn(move || {
            let _ = tx.send(handler.call(&ctx, event));
        })
        .map_err(|e| HandlerError::new(kind::INTERNAL, format!("starting the handler: {e}")))?;
    let out = rx
        .await
        .map_err(|_| HandlerError::new(kind::INTERNAL, "the handler panicked (see the log)"))?;
    tracing::info!(
        handler = handler.name(),
        ok = out.is_ok(),
        "invocation took {:.1} ms, peak RSS {:.0} MiB",
        t.elapsed().as_secs_f64() * 1000.0,
        cai_workflow::usage::self_usage().peak_rss_mb
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_follow_the_vcpus_memory_buys() {
        assert_eq!(threads_for_memory(Some(128), 2), 1);
        assert_eq!(threads_for_memory(Some(1_769), 6), 1);
        assert_eq!(threads_for_memory(Some(1_770), 6), 1);
        assert_eq!(threads_for_memory(Some(2_700), 6), 2);
        assert_eq!(threads_for_memory(Some(3_538), 6), 2);
        assert_eq!(threads_for_memory(Some(10_240), 6), 6);
        assert_eq!(threads_for_memory(Some(10_240), 2), 2);
        assert_eq!(threads_for_memory(None, 3), 3);
    }

    #[test]
    fn handler_comes_from_the_variable_then_the_function_name() {
        assert_eq!(
            choose_handler(Some("infer"), Some("x-init")),
            Ok(Handler::Infer)
        );
        assert_eq!(
            choose_handler(None, Some("cai-summarize")),
            Ok(Handler::Summarize)
        );
        assert_eq!(
            choose_handler(Some(""), Some("prod-failure")),
            Ok(Handler::Failure)
        );
        let e = choose_handler(Some("train"), None).unwrap_err();
        assert!(e.contains("CAI_HANDLER=\"train\""), "{e}");
        let e = choose_handler(None, Some("cai")).unwrap_err();
        assert!(e.contains("\"cai\""), "{e}");
    }
}
