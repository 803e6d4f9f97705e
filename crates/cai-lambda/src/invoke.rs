//! Runs the workflow's invocations as Lambda functions through the Invoke API (real Lambda,
//! or an emulator such as `cargo lambda watch` via `--lambda-endpoint`): the local engine
//! executes the state machine, Lambda runs the handlers. Errors come back with the names
//! Step Functions gives them, so the definition's Retry and Catch behave as on AWS.

use std::time::{Duration, Instant};

use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::LogType;
use base64::Engine as _;
use cai_asl::TaskFailure;
use cai_local::invoker::failure;
use cai_local::{Backend, Measured, Served};
use cai_workflow::cost::billed_ms;
use cai_workflow::handlers::Handler;
use serde_json::Value;

use crate::report::ReportLine;

/// Where the functions are and what they are called.
#[derive(Debug, Clone)]
pub struct LambdaTarget {
    /// Invoke API endpoint; None: the standard AWS configuration's (AWS_ENDPOINT_URL_LAMBDA,
    /// AWS_ENDPOINT_URL, or the region's).
    pub endpoint: Option<String>,
    /// Region; None: from the environment (an emulator ignores it).
    pub region: Option<String>,
    /// Function-name stem: handler `h` is the function `<stem>-<h>`.
    pub stem: String,
}

/// Invokes `<stem>-<handler>` functions, one synchronous Invoke per Task attempt.
pub struct LambdaBackend {
    client: aws_sdk_lambda::Client,
    runtime: tokio::runtime::Runtime,
    stem: String,
}

impl LambdaBackend {
    /// A client for `target`. The SDK's own retries are off: the definition's Retry decides,
    /// and an emulator's error status would otherwise run a failing handler three times.
    pub fn connect(target: &LambdaTarget) -> Result<LambdaBackend, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1));
        if let Some(r) = &target.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        if let Some(e) = &target.endpoint {
            loader = loader.endpoint_url(e);
        }
        let config = runtime.block_on(loader.load());
        let mut builder = aws_sdk_lambda::config::Builder::from(&config)
            .timeout_config(aws_config::timeout::TimeoutConfig::disabled());
        if config.region().is_none() {
            // An emulator needs no region, but the client must sign for one.
            builder = builder.region(aws_config::Region::new("us-east-1"));
        }
        Ok(LambdaBackend {
            client: aws_sdk_lambda::Client::from_conf(builder.build()),
            runtime,
            stem: target.stem.clone(),
        })
    }

    /// The function serving `h`.
    pub fn function_name(&self, h: Handler) -> String {
        format!("{}-{}", self.stem, h.name())
    }

    async fn invoke(&self, name: &str, body: Vec<u8>) -> Result<Reply, TaskFailure> {
        let sent = self
            .client
            .invoke()
            .function_name(name)
            .payload(Blob::new(body))
            .log_type(LogType::Tail)
            .send()
            .await;
        match sent {
            Ok(out) => Ok(Reply {
                payload: out
                    .payload()
                    .map(|b| b.as_ref().to_vec())
                    .unwrap_or_default(),
                function_error: out.function_error().map(String::from),
                log_tail: out.log_result().and_then(decode_log),
            }),
            Err(SdkError::ServiceError(e)) => {
                let raw = e.raw();
                let body = raw.body().bytes().unwrap_or_default().to_vec();
                // An emulator reports a handler error as HTTP 500 with Lambda's error body.
                if raw.status().as_u16() >= 500 && is_error_body(&body) {
                    return Ok(Reply {
                        payload: body,
                        function_error: Some("Unhandled".into()),
                        log_tail: None,
                    });
                }
                let err = e.err();
                let code = err.code().unwrap_or("ServiceException");
                Err(failure(
                    &format!("Lambda.{code}"),
                    format!(
                        "invoking {name}: {code}: {} (HTTP {})",
                        err.message().unwrap_or("no message"),
                        raw.status().as_u16()
                    ),
                ))
            }
            Err(e) => Err(failure(
                "Lambda.SdkClientException",
                format!(
                    "invoking {name}: {}",
                    aws_sdk_lambda::error::DisplayErrorContext(&e)
                ),
            )),
        }
    }
}

/// What Invoke returned.
struct Reply {
    payload: Vec<u8>,
    function_error: Option<String>,
    log_tail: Option<String>,
}

fn decode_log(b64: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    String::from_utf8(bytes).ok()
}

fn is_error_body(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .is_some_and(|v| v.get("errorType").is_some())
}

/// The Step Functions view of a reply: the result, or the error named by `errorType`.
fn interpret(name: &str, reply: &Reply) -> Result<Value, TaskFailure> {
    if reply.function_error.is_some() {
        let body: Value = serde_json::from_slice(&reply.payload).unwrap_or(Value::Null);
        let error = body
            .get("errorType")
            .and_then(Value::as_str)
            .unwrap_or("Lambda.Unknown");
        return Err(failure(error, String::from_utf8_lossy(&reply.payload)));
    }
    serde_json::from_slice(&reply.payload).map_err(|e| {
        failure(
            "Lambda.Unknown",
            format!("{name} returned a response that is not JSON: {e}"),
        )
    })
}

impl Backend for LambdaBackend {
    fn serve(
        &self,
        handler: Handler,
        input: &Value,
        timeout: Option<Duration>,
        _threads: usize,
    ) -> Served {
        let name = self.function_name(handler);
        let body = match serde_json::to_vec(input) {
            Ok(b) => b,
            Err(e) => return Served::unstarted(failure("States.Runtime", e.to_string())),
        };
        let t = Instant::now();
        let reply = self.runtime.block_on(async {
            match timeout {
                Some(limit) => tokio::time::timeout(limit, self.invoke(&name, body))
                    .await
                    .unwrap_or_else(|_| {
                        Err(failure(
                            "States.Timeout",
                            format!(
                                "{name} did not answer within TimeoutSeconds ({} s)",
                                limit.as_secs()
                            ),
                        ))
                    }),
                None => self.invoke(&name, body).await,
            }
        });
        let wall = t.elapsed().as_secs_f64();
        match reply {
            Err(f) => {
                let ran = f.error == "States.Timeout";
                Served {
                    result: Err(f),
                    cost: ran.then(|| measured(wall, None)),
                    worker: None,
                    cold: None,
                }
            }
            Ok(reply) => {
                let report = reply.log_tail.as_deref().and_then(ReportLine::find_in);
                Served {
                    result: interpret(&name, &reply),
                    cost: Some(measured(wall, report.as_ref())),
                    worker: None,
                    // Lambda reports an Init Duration only for a new container's first call.
                    cold: report.as_ref().map(|r| r.init_ms.is_some()),
                }
            }
        }
    }
}

/// The cost Lambda reported in the REPORT line, or (an emulator sends none) the wall time
/// seen here, rounded up to the millisecond, with memory unknown (0).
fn measured(wall_seconds: f64, report: Option<&ReportLine>) -> Measured {
    match report {
        Some(r) => Measured {
            wall_seconds: (r.duration_ms + r.init_ms.unwrap_or(0.0)) / 1000.0,
            billed_ms: r.billed_ms,
            cpu_seconds: 0.0,
            peak_rss_mb: r.max_memory_used_mb as f64,
        },
        None => Measured {
            wall_seconds,
            billed_ms: billed_ms(wall_seconds),
            cpu_seconds: 0.0,
            peak_rss_mb: 0.0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(payload: &str, function_error: Option<&str>) -> Reply {
        Reply {
            payload: payload.as_bytes().to_vec(),
            function_error: function_error.map(String::from),
            log_tail: None,
        }
    }

    #[test]
    fn a_function_error_becomes_the_step_functions_error() {
        let body = r#"{"errorType":"cai.InvalidPartition","errorMessage":"b/k: bad"}"#;
        let f = interpret("cai-infer", &reply(body, Some("Unhandled"))).unwrap_err();
        assert_eq!(f.error, "cai.InvalidPartition");
        assert_eq!(f.cause, body);
        let f = interpret("cai-infer", &reply("oops", Some("Unhandled"))).unwrap_err();
        assert_eq!(f.error, "Lambda.Unknown");
    }

    #[test]
    fn a_result_is_json_or_an_unknown_error() {
        assert_eq!(
            interpret("cai-init", &reply(r#"{"a":1}"#, None)).unwrap(),
            serde_json::json!({"a": 1})
        );
        let f = interpret("cai-init", &reply("not json", None)).unwrap_err();
        assert_eq!(f.error, "Lambda.Unknown");
        assert!(f.cause.contains("cai-init"), "{}", f.cause);
    }

    #[test]
    fn cost_comes_from_the_report_line_when_there_is_one() {
        let line = ReportLine::parse("REPORT RequestId: r\tDuration: 1000.5 ms\tBilled Duration: 1201 ms\tMemory Size: 2048 MB\tMax Memory Used: 130 MB\tInit Duration: 200.0 ms").unwrap();
        let m = measured(9.0, Some(&line));
        assert_eq!(m.billed_ms, 1201);
        assert_eq!(m.peak_rss_mb, 130.0);
        assert!((m.wall_seconds - 1.2005).abs() < 1e-9);
        let m = measured(0.0123, None);
        assert_eq!(m.billed_ms, 13);
        assert_eq!(m.peak_rss_mb, 0.0);
    }

    #[test]
    fn error_bodies_are_recognised() {
        assert!(is_error_body(br#"{"errorType":"x","errorMessage":"y"}"#));
        assert!(!is_error_body(br#"{"message":"Internal"}"#));
        assert!(!is_error_body(b"<html>"));
    }
}
