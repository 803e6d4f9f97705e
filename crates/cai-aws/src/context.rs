//! The AWS configuration every command shares: credentials, region, profile and endpoints
//! from the standard environment and config files (so `AWS_ENDPOINT_URL` and
//! `AWS_ENDPOINT_URL_<SERVICE>` point cai at local stand-ins), plus the account id.

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Errors loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// No region in flags, environment or config files.
    #[error("no AWS region: pass --region, or set AWS_REGION or a region in ~/.aws/config")]
    NoRegion,
    /// STS GetCallerIdentity failed (usually: no or bad credentials).
    #[error("cannot identify the AWS account (sts:GetCallerIdentity): {0}")]
    Identity(String),
}

/// Configuration, region and account for one command.
#[derive(Clone, Debug)]
pub struct AwsContext {
    /// The loaded SDK configuration.
    pub config: SdkConfig,
    /// The region in force.
    pub region: String,
    /// The caller's account id.
    pub account: String,
}

impl AwsContext {
    /// Loads the standard configuration (with `region` overriding it) and asks STS for the
    /// account id.
    pub async fn load(region: Option<&str>) -> Result<AwsContext, ContextError> {
        Self::from_config(load_config(region).await).await
    }

    /// Uses a configuration built elsewhere (tests pointing at a stand-in) and asks STS for
    /// the account id.
    pub async fn from_config(config: SdkConfig) -> Result<AwsContext, ContextError> {
        let region = config
            .region()
            .map(|r| r.to_string())
            .ok_or(ContextError::NoRegion)?;
        let who = aws_sdk_sts::Client::new(&config)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| ContextError::Identity(error_text(&e)))?;
        let account = who
            .account()
            .map(String::from)
            .ok_or_else(|| ContextError::Identity("no account in the reply".into()))?;
        Ok(AwsContext {
            config,
            region,
            account,
        })
    }

    /// A Lambda client.
    pub fn lambda(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::new(&self.config)
    }

    /// A Step Functions client.
    pub fn sfn(&self) -> aws_sdk_sfn::Client {
        aws_sdk_sfn::Client::new(&self.config)
    }

    /// An IAM client.
    pub fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.config)
    }

    /// A CloudWatch Logs client.
    pub fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        aws_sdk_cloudwatchlogs::Client::new(&self.config)
    }
}

/// The standard configuration, with `region` overriding the environment's.
pub async fn load_config(region: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_string()));
    }
    loader.load().await
}

/// An SDK error as one line with its service code and message (the SDK's Display says only
/// "service error").
pub fn error_text<E, R>(e: &aws_sdk_sts::error::SdkError<E, R>) -> String
where
    E: std::error::Error + aws_sdk_sts::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_sts::error::{DisplayErrorContext, ProvideErrorMetadata};
    match (e.code(), e.message()) {
        (Some(code), Some(msg)) => format!("{code}: {msg}"),
        (Some(code), None) => code.to_string(),
        _ => format!("{}", DisplayErrorContext(e)),
    }
}
