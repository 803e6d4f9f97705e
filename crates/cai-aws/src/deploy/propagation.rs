//! A role created a moment ago is not yet assumable everywhere: IAM is eventually
//! consistent, so Lambda and Step Functions refuse it for a few seconds. Requests that name
//! a new role are sent again, with backoff, until it propagates or IAM_PROPAGATION passes.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};

use super::{aws_error, DeployError, IAM_PROPAGATION};

/// Sends `send()`'s request, again after 0.5 s, 1 s, 2 s ... (at most 8 s apart) while it
/// fails only because the role has not propagated yet; any other error names `label` and
/// `operation`.
pub(super) async fn send_while_role_propagates<T, E, R, F, Fut>(
    label: &str,
    operation: &'static str,
    mut send: F,
) -> Result<T, DeployError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, R>>>,
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: fmt::Debug,
{
    let started = Instant::now();
    let mut delay = Duration::from_millis(500);
    loop {
        match send().await {
            Ok(out) => return Ok(out),
            Err(e) if propagating(&e) && started.elapsed() < IAM_PROPAGATION => {
                tracing::debug!("{label}: role not assumable yet, retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(8));
            }
            Err(e) => return Err(aws_error(label, operation, &e)),
        }
    }
}

/// True for the errors a just-created role gives until IAM has propagated it: Lambda's
/// "The role defined for the function cannot be assumed by Lambda" and Step Functions'
/// "... is not authorized to assume the provided role".
pub(super) fn propagating<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    let SdkError::ServiceError(s) = e else {
        return false;
    };
    let code = s.err().code().unwrap_or_default();
    let message = s.err().message().unwrap_or_default().to_ascii_lowercase();
    let about_role = message.contains("role") || message.contains("assume");
    match code {
        "AccessDeniedException" | "AccessDenied" => true,
        "InvalidParameterValueException" | "InvalidArn" => about_role,
        _ => false,
    }
}
