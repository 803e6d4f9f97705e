//! Every AWS resource name a deployment uses, derived from one deployment name, so deploy,
//! run and destroy agree on them and destroy can never touch anything else.

use cai_workflow::definition::Functions;
use cai_workflow::handlers::Handler;

/// The default deployment name; it is also the local engine's function-name stem, so the
/// definition `cai asl` prints names the functions a default deploy creates.
pub const DEFAULT_NAME: &str = cai_workflow::definition::DEFAULT_STACK;

/// Tag key put on everything deploy creates; destroy removes only what carries it.
pub const STACK_TAG: &str = "cai:stack";

/// The handlers deployed as Lambda functions, in workflow order.
pub const DEPLOYED_HANDLERS: [Handler; 4] = Handler::ALL;

/// Longest deployment name: role names are `<name>-lambda`/`<name>-states` (IAM allows 64)
/// and function names `<name>-summarize` (Lambda allows 64).
pub const MAX_NAME_LEN: usize = 40;

/// The names of one deployment's resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackNames {
    name: String,
}

impl StackNames {
    /// Checks a deployment name: 1-40 of `A-Z a-z 0-9 -`, starting with a letter, so every
    /// derived IAM, Lambda and Step Functions name is valid.
    pub fn new(name: &str) -> Result<StackNames, String> {
        let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        let starts = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
        if name.is_empty() || name.len() > MAX_NAME_LEN || !ok_chars || !starts {
            return Err(format!(
                "--name {name:?}: expected 1-{MAX_NAME_LEN} letters, digits or '-', starting with a letter"
            ));
        }
        Ok(StackNames { name: name.into() })
    }

    /// The deployment name itself.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A handler's function name, `<name>-<handler>`.
    pub fn function(&self, h: Handler) -> String {
        format!("{}-{}", self.name, h.name())
    }

    /// A handler's function ARN.
    pub fn function_arn(&self, region: &str, account: &str, h: Handler) -> String {
        format!(
            "arn:aws:lambda:{region}:{account}:function:{}",
            self.function(h)
        )
    }

    /// The functions as the definition generator names them.
    pub fn functions(&self, region: &str, account: &str) -> Functions {
        Functions {
            arn_prefix: format!("arn:aws:lambda:{region}:{account}:function:"),
            stack: self.name.clone(),
        }
    }

    /// The role the functions run as.
    pub fn lambda_role(&self) -> String {
        format!("{}-lambda", self.name)
    }

    /// The role the state machine runs as.
    pub fn states_role(&self) -> String {
        format!("{}-states", self.name)
    }

    /// The inline policy name on each role.
    pub fn policy(&self) -> String {
        format!("{}-least-privilege", self.name)
    }

    /// The state machine's name.
    pub fn state_machine(&self) -> String {
        self.name.clone()
    }

    /// The state machine's ARN.
    pub fn state_machine_arn(&self, region: &str, account: &str) -> String {
        format!(
            "arn:aws:states:{region}:{account}:stateMachine:{}",
            self.name
        )
    }

    /// A function's CloudWatch log group.
    pub fn log_group(&self, h: Handler) -> String {
        format!("/aws/lambda/{}", self.function(h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_derive_from_the_deployment_name() {
        let n = StackNames::new("cai").unwrap();
        assert_eq!(n.function(Handler::Infer), "cai-infer");
        assert_eq!(n.lambda_role(), "cai-lambda");
        assert_eq!(n.states_role(), "cai-states");
        assert_eq!(
            n.function_arn("us-east-1", "123456789012", Handler::Summarize),
            "arn:aws:lambda:us-east-1:123456789012:function:cai-summarize"
        );
        assert_eq!(
            n.functions("us-east-1", "123456789012").arn(Handler::Init),
            n.function_arn("us-east-1", "123456789012", Handler::Init)
        );
        assert_eq!(n.log_group(Handler::Init), "/aws/lambda/cai-init");
    }

    #[test]
    fn bad_names_are_refused_with_the_flag() {
        for bad in ["", "1cai", "cai_x", "cai/x", &"a".repeat(41)] {
            let e = StackNames::new(bad).unwrap_err();
            assert!(e.starts_with("--name"), "{e}");
        }
        assert!(StackNames::new(&"a".repeat(40)).is_ok());
    }
}
