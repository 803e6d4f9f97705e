//! Execution ARNs and names.

use super::ExecutionError;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

/// The parts of an execution ARN, `arn:PARTITION:states:REGION:ACCOUNT:execution:SM:NAME`,
/// so `cai aws status ARN` knows the region and deployment without flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionArn {
    /// Region.
    pub region: String,
    /// Account id.
    pub account: String,
    /// State machine name (= the deployment name for cai's deployments).
    pub state_machine: String,
    /// Execution name.
    pub name: String,
}

impl ExecutionArn {
    /// Splits an execution ARN, refusing anything else (a state machine or map run ARN).
    pub fn parse(arn: &str) -> Result<ExecutionArn, ExecutionError> {
        let bad = |reason: &str| ExecutionError::Arn {
            arn: arn.to_string(),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = arn.split(':').collect();
        if parts.len() < 6 || parts[0] != "arn" || parts[2] != "states" {
            return Err(bad(
                "expected arn:aws:states:REGION:ACCOUNT:execution:STATE_MACHINE:NAME",
            ));
        }
        if parts[5] != "execution" {
            return Err(bad(&format!(
                "this is a Step Functions {:?} ARN, not an execution's",
                parts[5]
            )));
        }
        if parts.len() < 8 {
            return Err(bad(
                "expected arn:aws:states:REGION:ACCOUNT:execution:STATE_MACHINE:NAME",
            ));
        }
        let field = |i: usize, what: &str| {
            let v = parts[i];
            if v.is_empty() {
                Err(bad(&format!("the {what} is empty")))
            } else {
                Ok(v.to_string())
            }
        };
        Ok(ExecutionArn {
            region: field(3, "region")?,
            account: field(4, "account")?,
            state_machine: field(6, "state machine name")?,
            name: field(parts.len() - 1, "execution name")?,
        })
    }
}

/// A fresh execution name, `cai-<unix secs>-<4 hex>`: readable, sortable by time, and
/// unique among executions started in the same second.
pub fn new_execution_name() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("cai-{secs}-{:04x}", h.finish() & 0xffff)
}
