//! Unit tests of deploy's pure parts.

use super::roles::*;
use super::*;

fn spec() -> DeploySpec {
    DeploySpec {
        names: StackNames::new("cai").unwrap(),
        scope: Scope::new("cosmicai-data", &["100MB".into()], &["result".into()], &[]).unwrap(),
        zip: vec![1, 2, 3],
        memory_mb: 2048,
        timeout_seconds: 900,
        ephemeral_mb: 2048,
        architecture: Architecture::X86_64,
        settings: DeploySpec::default_settings(900, 2048, Architecture::X86_64),
    }
}

#[test]
fn sha256_matches_known_digests() {
    assert_eq!(
        code_sha256(b""),
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    );
    assert_eq!(
        code_sha256(b"abc"),
        "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
    );
    // Two blocks (56..64 bytes of padding spill over).
    assert_eq!(
        code_sha256(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
        "JI1qYdIGOLjlwCaTDD5gOaM85Flk/yFn9uzt1BnbBsE="
    );
}

#[test]
fn iam_documents_are_url_decoded_before_comparing() {
    let doc = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Sid": "a b"}]});
    let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Sid%22%3A%22a%20b%22%7D%5D%7D";
    assert_eq!(policy_json(encoded), doc);
    assert_eq!(policy_json(&doc.to_string()), doc);
    assert_eq!(percent_decode("100%"), "100%");
}

#[test]
fn environment_names_handler_store_and_scope() {
    let s = spec();
    let env = s.environment(Handler::Infer);
    assert_eq!(env[ENV_HANDLER], "infer");
    assert_eq!(env[ENV_STORE], "s3");
    assert_eq!(Scope::from_env(&env[ENV_SCOPE]).unwrap(), s.scope);
    s.validate().unwrap();
}

#[test]
fn validate_refuses_lambda_limits() {
    let mut s = spec();
    s.ephemeral_mb = 100;
    assert!(s.validate().unwrap_err().to_string().contains("ephemeral"));
    let mut s = spec();
    s.memory_mb = 20_000;
    assert!(s.validate().unwrap_err().to_string().contains("memory"));
    let mut s = spec();
    let many: Vec<String> = (0..300).map(|i| format!("prefix-number-{i}")).collect();
    s.scope = Scope::new("cosmicai-data", &many, &["result".into()], &[]).unwrap();
    assert!(s.validate().unwrap_err().to_string().contains("4 KB"));
}

#[test]
fn changes_print_as_one_line() {
    let c = Change::new("role cai-lambda", Action::Created, "");
    assert_eq!(c.to_string(), "created  role cai-lambda");
    let c = Change::new(
        "function cai-infer",
        Action::Updated,
        "memory 2048 -> 3008 MB",
    );
    assert_eq!(
        c.to_string(),
        "updated  function cai-infer (memory 2048 -> 3008 MB)"
    );
    let c = Change::new("state machine cai", Action::Unchanged, "");
    assert_eq!(c.to_string(), "unchanged state machine cai");
}
