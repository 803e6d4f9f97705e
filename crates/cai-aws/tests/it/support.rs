//! Test access to the moto server that `scripts/stand-ins.sh start` runs on 127.0.0.1.
//! Each test uses its own region: moto keeps canned Lambda responses in one queue per
//! account and region, so tests in different regions cannot consume each other's.
#![allow(dead_code)]

use aws_config::{BehaviorVersion, Region};
use aws_sdk_sts::config::Credentials;
use cai_aws::context::AwsContext;

/// The moto endpoint, or None (with a note) when the stand-ins are not running. Under CI
/// a missing stand-in is a failure, never a silent skip.
pub fn moto_endpoint() -> Option<String> {
    match std::env::var("CAI_TEST_MOTO_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CAI_TEST_MOTO_ENDPOINT is not set: run the tests through ./scripts/test.sh, which starts moto")
        }
        _ => {
            eprintln!("skipped: CAI_TEST_MOTO_ENDPOINT is not set (./scripts/test.sh starts moto)");
            None
        }
    }
}

/// A context whose every service (IAM, STS, Lambda, Step Functions, Logs, S3) is moto, in
/// `region`, with moto's fixed test credentials.
pub async fn moto_context(region: &str) -> Option<AwsContext> {
    let endpoint = moto_endpoint()?;
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .load()
        .await;
    Some(
        AwsContext::from_config(config)
            .await
            .expect("moto answers sts:GetCallerIdentity"),
    )
}

/// Queues canned results for the next Lambda invocations in `region` (moto runs no code).
pub fn queue_lambda_results(region: &str, results: &[serde_json::Value]) {
    let endpoint = moto_endpoint().expect("moto");
    let body = serde_json::json!({
        "results": results.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        "region": region,
    });
    let out = std::process::Command::new("curl")
        .args([
            "-sf",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
        ])
        .arg(body.to_string())
        .arg(format!("{endpoint}/moto-api/static/lambda-simple/response"))
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "queueing canned Lambda results: {out:?}"
    );
}

/// Puts an object into moto's S3 (creating the bucket first if needed), as Initialize puts
/// the Map's items there.
pub fn put_s3_object(bucket: &str, key: &str, body: &str) {
    let endpoint = moto_endpoint().expect("moto");
    let put = |url: String, data: Option<&str>| {
        let mut cmd = std::process::Command::new("curl");
        cmd.args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "PUT",
            "-H",
        ]);
        // Signed-looking, so moto attributes the request to its default account.
        cmd.arg("Authorization: AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0");
        if let Some(d) = data {
            // Not curl's default form type, which moto would parse as a form.
            cmd.args([
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                "@-",
            ]);
            cmd.stdin(std::process::Stdio::piped());
            let mut child = cmd
                .arg(&url)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("curl");
            use std::io::Write;
            child.stdin.take().unwrap().write_all(d.as_bytes()).unwrap();
            let out = child.wait_with_output().expect("curl");
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        let out = cmd.arg(&url).output().expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    put(format!("{endpoint}/{bucket}"), None);
    let code = put(format!("{endpoint}/{bucket}/{key}"), Some(body));
    assert_eq!(code, "200", "PUT s3://{bucket}/{key} on moto");
}
