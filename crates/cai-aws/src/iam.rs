//! The deployment's IAM documents, as pure functions of the deployment names and the
//! [`Scope`] the user deployed for, so they can be checked field by field without AWS.
//!
//! Two roles rather than the one the issue sketches ("an IAM role trusted by
//! lambda.amazonaws.com and states.amazonaws.com"): a role trusted by both services would give
//! the functions the right to invoke each other and start executions, and the state machine
//! the right to read and write the data. Splitting them gives each service only what it uses,
//! which is the stricter reading of least privilege:
//! * the functions' role ([`lambda_policy`], trusted by `lambda.amazonaws.com`): S3 on the
//!   deployed data and result prefixes and model keys, and their own log groups;
//! * the state machine's role ([`states_policy`], trusted by `states.amazonaws.com`): invoking
//!   the four functions, and starting/tracking the Distributed Map's child executions.
//!
//! Sources: groundwork §6 (docs/aws-groundwork.md) and the AWS pages cited at each statement.

use cai_workflow::handlers::Handler;
use cai_workflow::settings::ModelLocation;
use cai_workflow::Payload;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::names::{StackNames, DEPLOYED_HANDLERS};

/// IAM policy language version every document uses.
pub const POLICY_VERSION: &str = "2012-10-17";

/// The service principal the functions' role trusts.
pub const LAMBDA_SERVICE: &str = "lambda.amazonaws.com";

/// The service principal the state machine's role trusts.
pub const STATES_SERVICE: &str = "states.amazonaws.com";

/// What the deployed functions may touch in S3. Deploy writes it into the policy and, as
/// JSON, into each function's `CAI_SCOPE`, so `cai aws run` can refuse a payload that falls
/// outside before starting an execution that would only fail with AccessDenied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// The bucket holding the partitions and the results (payload `data_bucket`).
    pub data_bucket: String,
    /// Folders of `data_bucket` the partitions may be read from; `""` is the whole bucket.
    pub data_prefixes: Vec<String>,
    /// Folders of `data_bucket` results may be written under (payload `result_path`).
    pub result_prefixes: Vec<String>,
    /// Weights files that may be read, as `bucket/key`.
    #[serde(default)]
    pub models: Vec<String>,
}

impl Scope {
    /// A checked, normalised scope: trailing `/` trimmed, duplicates and folders inside
    /// another listed folder dropped, names and keys validated. An empty `data_prefixes`
    /// means the whole data bucket; result prefixes must be non-empty folders, because
    /// writing anywhere in the data bucket could overwrite the partitions.
    pub fn new(
        data_bucket: &str,
        data_prefixes: &[String],
        result_prefixes: &[String],
        models: &[String],
    ) -> Result<Scope, String> {
        cai_workflow::keys::bucket("data_bucket", data_bucket)?;
        let data = if data_prefixes.is_empty() {
            vec![String::new()]
        } else {
            normalise_prefixes("data prefix", data_prefixes)?
        };
        let results = normalise_prefixes("result prefix", result_prefixes)?;
        if results.is_empty() || results.iter().any(|r| r.is_empty()) {
            return Err(
                "a result prefix must be a folder such as \"result\": writing anywhere \
                 in the data bucket could overwrite the partitions"
                    .into(),
            );
        }
        let mut model_list = Vec::new();
        for m in models {
            let loc = ModelLocation::parse("model", m).map_err(|e| e.to_string())?;
            if let ModelLocation::Store { .. } = loc {
                model_list.push(loc.to_string());
            }
        }
        model_list.sort();
        model_list.dedup();
        Ok(Scope {
            data_bucket: data_bucket.to_string(),
            data_prefixes: data,
            result_prefixes: results,
            models: model_list,
        })
    }

    /// Widens the scope to what a payload needs (its data prefix, result path and model), so
    /// `cai aws deploy --payload FILE` deploys for the runs the user means to make. The
    /// payload's data bucket must be this scope's.
    pub fn add_payload(&mut self, p: &Payload) -> Result<(), String> {
        if p.data_bucket != self.data_bucket {
            return Err(format!(
                "payload field `data_bucket` is {:?} but the deployment's data bucket is {:?} \
                 (one deployment serves one data bucket)",
                p.data_bucket, self.data_bucket
            ));
        }
        let mut data = self.data_prefixes.clone();
        data.push(p.data_prefix.clone());
        let mut results = self.result_prefixes.clone();
        results.push(p.result_path.clone());
        let mut models = self.models.clone();
        models.push(p.settings.model.to_string());
        *self = Scope::new(&self.data_bucket, &data, &results, &models)?;
        Ok(())
    }

    /// True when the whole data bucket is readable.
    pub fn whole_data_bucket(&self) -> bool {
        self.data_prefixes.iter().any(|p| p.is_empty())
    }

    /// True when partitions under `prefix` may be listed and read.
    pub fn allows_data(&self, bucket: &str, prefix: &str) -> bool {
        bucket == self.data_bucket && self.data_prefixes.iter().any(|d| within(prefix, d))
    }

    /// True when results may be written under `path`.
    pub fn allows_results(&self, bucket: &str, path: &str) -> bool {
        bucket == self.data_bucket && self.result_prefixes.iter().any(|r| within(path, r))
    }

    /// True when the weights may be read (seeded weights need no access).
    pub fn allows_model(&self, model: &ModelLocation) -> bool {
        match model {
            ModelLocation::Seed(_) => true,
            ModelLocation::Store { .. } => self.models.contains(&model.to_string()),
        }
    }

    /// Says, naming each payload field and what the deployment allows, why a payload falls
    /// outside this scope; Ok when the functions may do everything the payload asks.
    pub fn check(&self, p: &Payload) -> Result<(), String> {
        let mut why = Vec::new();
        let redeploy = "redeploy with `cai aws deploy --payload FILE` to widen the scope";
        if p.data_bucket != self.data_bucket {
            why.push(format!(
                "field `data_bucket` is {:?}, but the deployment may only use bucket {:?}",
                p.data_bucket, self.data_bucket
            ));
        } else {
            if !self.allows_data(&p.data_bucket, &p.data_prefix) {
                why.push(format!(
                    "field `data_prefix` {:?} is outside the deployed data prefixes {}",
                    p.data_prefix,
                    shown(&self.data_prefixes)
                ));
            }
            if !self.allows_results(&p.data_bucket, &p.result_path) {
                why.push(format!(
                    "field `result_path` {:?} is outside the deployed result prefixes {}",
                    p.result_path,
                    shown(&self.result_prefixes)
                ));
            }
        }
        if !self.allows_model(&p.settings.model) {
            why.push(format!(
                "{} names weights {:?} the deployment may not read (deployed models: {})",
                model_fields(p),
                p.settings.model.to_string(),
                shown(&self.models)
            ));
        }
        if why.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the payload falls outside deployment scope: {}; {redeploy}",
                why.join("; ")
            ))
        }
    }

    /// The scope as the compact JSON stored in the functions' `CAI_SCOPE`.
    pub fn to_env(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads `CAI_SCOPE` back.
    pub fn from_env(text: &str) -> Result<Scope, String> {
        serde_json::from_str(text).map_err(|e| format!("CAI_SCOPE is not a deployment scope: {e}"))
    }
}

/// Which payload field chose the weights: `model`, or `bucket` + `S3_object_name` when the
/// weights are the original's default location.
fn model_fields(p: &Payload) -> &'static str {
    let default = ModelLocation::Store {
        bucket: p.bucket.clone(),
        key: format!(
            "{}/{}",
            p.s3_object_name,
            cai_workflow::payload::DEFAULT_MODEL_TAIL
        ),
    };
    if p.settings.model == default {
        "fields `bucket` + `S3_object_name`"
    } else {
        "field `model`"
    }
}

/// A list for messages: `["a", "b"]`, with the whole bucket shown as such.
fn shown(items: &[String]) -> String {
    if items.is_empty() {
        return "(none)".into();
    }
    let parts: Vec<String> = items
        .iter()
        .map(|i| {
            if i.is_empty() {
                "(the whole bucket)".to_string()
            } else {
                format!("{i:?}")
            }
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Folder-wise prefix test: `100MB/a` is within `100MB`, `100MBx/a` is not; every key is
/// within `""`.
pub fn within(path: &str, folder: &str) -> bool {
    let path = path.trim_end_matches('/');
    let folder = folder.trim_end_matches('/');
    folder.is_empty()
        || path == folder
        || (path.starts_with(folder) && path[folder.len()..].starts_with('/'))
}

/// Trims, validates, sorts and dedupes folder prefixes, dropping those inside another.
fn normalise_prefixes(what: &str, prefixes: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for p in prefixes {
        let p = p.trim_end_matches('/').to_string();
        cai_workflow::keys::prefix(what, &p)?;
        out.push(p);
    }
    out.sort();
    out.dedup();
    let all = out.clone();
    out.retain(|p| !all.iter().any(|q| q != p && within(p, q)));
    Ok(out)
}

/// A trust policy letting one AWS service assume the role, with extra conditions.
fn trust(service: &str, condition: Option<Value>) -> Value {
    let mut statement = json!({
        "Effect": "Allow",
        "Principal": { "Service": service },
        "Action": "sts:AssumeRole"
    });
    if let Some(c) = condition {
        statement["Condition"] = c;
    }
    json!({ "Version": POLICY_VERSION, "Statement": [statement] })
}

/// The functions' role trust policy: only Lambda may assume it.
pub fn lambda_trust_policy() -> Value {
    trust(LAMBDA_SERVICE, None)
}

/// The state machine's role trust policy: only Step Functions, acting for this account, may
/// assume it (`aws:SourceAccount`, the confused-deputy guard of
/// <https://docs.aws.amazon.com/step-functions/latest/dg/procedure-create-iam-role.html>).
pub fn states_trust_policy(account: &str) -> Value {
    trust(
        STATES_SERVICE,
        Some(json!({ "StringEquals": { "aws:SourceAccount": account } })),
    )
}

/// `arn:aws:s3:::bucket[/key]`.
fn s3_arn(bucket: &str, key: Option<&str>) -> String {
    match key {
        Some(k) => format!("arn:aws:s3:::{bucket}/{k}"),
        None => format!("arn:aws:s3:::{bucket}"),
    }
}

/// Objects under a folder (`""`: the whole bucket).
fn folder_objects(bucket: &str, folder: &str) -> String {
    if folder.is_empty() {
        s3_arn(bucket, Some("*"))
    } else {
        s3_arn(bucket, Some(&format!("{folder}/*")))
    }
}

/// A function's log group ARN; `streams` adds `:*` (its streams, for Create/PutLogEvents).
fn log_group_arn(
    names: &StackNames,
    region: &str,
    account: &str,
    h: Handler,
    streams: bool,
) -> String {
    let base = format!(
        "arn:aws:logs:{region}:{account}:log-group:{}",
        names.log_group(h)
    );
    if streams {
        format!("{base}:*")
    } else {
        base
    }
}

/// The functions' inline policy: exactly the S3 objects the scope names and their own logs.
///
/// S3 shapes follow <https://docs.aws.amazon.com/AmazonS3/latest/userguide/example-policies-s3.html>:
/// `s3:ListBucket` is a bucket action limited with `s3:prefix` to the deployed folders, in both
/// the `p/` and `p/*` forms (object_store lists with `prefix=p/`); the condition is left out
/// only when the whole data bucket was deployed. Logs follow AWSLambdaBasicExecutionRole,
/// narrowed to the four functions' groups.
pub fn lambda_policy(scope: &Scope, names: &StackNames, region: &str, account: &str) -> Value {
    let bucket = &scope.data_bucket;
    let mut statements = Vec::new();

    let mut list = json!({
        "Sid": "ListOwnPrefixes",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": s3_arn(bucket, None)
    });
    if !scope.whole_data_bucket() {
        let prefixes: Vec<String> = scope
            .data_prefixes
            .iter()
            .chain(&scope.result_prefixes)
            .flat_map(|p| [format!("{p}/"), format!("{p}/*")])
            .collect();
        list["Condition"] = json!({ "StringLike": { "s3:prefix": prefixes } });
    }
    statements.push(list);

    let data: Vec<String> = scope
        .data_prefixes
        .iter()
        .map(|p| folder_objects(bucket, p))
        .collect();
    statements.push(json!({
        "Sid": "ReadPartitions",
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": data
    }));

    if !scope.models.is_empty() {
        let models: Vec<String> = scope
            .models
            .iter()
            .map(|m| format!("arn:aws:s3:::{m}"))
            .collect();
        statements.push(json!({
            "Sid": "ReadModels",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": models
        }));
    }

    let results: Vec<String> = scope
        .result_prefixes
        .iter()
        .map(|p| folder_objects(bucket, p))
        .collect();
    statements.push(json!({
        "Sid": "WriteResults",
        "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
        "Resource": results
    }));

    let streams: Vec<String> = DEPLOYED_HANDLERS
        .iter()
        .map(|&h| log_group_arn(names, region, account, h, true))
        .collect();
    statements.push(json!({
        "Sid": "WriteLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": streams
    }));
    // Lambda creates the group on first use; both ARN forms, since CloudWatch Logs has
    // authorised CreateLogGroup against either (still only these four groups).
    let groups: Vec<String> = DEPLOYED_HANDLERS
        .iter()
        .flat_map(|&h| {
            [
                log_group_arn(names, region, account, h, false),
                log_group_arn(names, region, account, h, true),
            ]
        })
        .collect();
    statements.push(json!({
        "Sid": "CreateLogGroups",
        "Effect": "Allow",
        "Action": "logs:CreateLogGroup",
        "Resource": groups
    }));

    json!({ "Version": POLICY_VERSION, "Statement": statements })
}

/// The state machine's inline policy.
///
/// * Invoking the four functions, plain and qualified (`:*`), as Step Functions' generated
///   templates do (<https://docs.aws.amazon.com/step-functions/latest/dg/connect-lambda.html>).
/// * What a Distributed Map needs from its role, per
///   <https://docs.aws.amazon.com/step-functions/latest/dg/iam-policies-eg-dist-map.html>:
///   `states:StartExecution` on the state machine itself (the child workflows), and
///   `states:DescribeExecution`/`states:StopExecution` on its executions (the page shows both
///   `execution:NAME/*`, the map run's children, and `execution:NAME:*`).
///   `states:DescribeMapRun`, `ListMapRuns`, `UpdateMapRun` and `RedriveExecution` are not
///   listed there for the role: they are operator actions (console, `cai aws status`), made
///   with the operator's credentials.
/// * The Map's ItemReader and ResultWriter, per
///   <https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html> and
///   `input-output-resultwriter.html`: `s3:GetObject` on exactly the items objects Initialize
///   writes (`<result_path>/items.json` under each result prefix), and `s3:PutObject` (with the
///   multipart actions a large result file needs) on exactly the files the ResultWriter writes
///   (`<result_path>/<map run id>/manifest.json`, `SUCCEEDED_n.json`, `FAILED_n.json`,
///   `PENDING_n.json`). Nothing else of the data bucket.
pub fn states_policy(scope: &Scope, names: &StackNames, region: &str, account: &str) -> Value {
    let functions: Vec<String> = DEPLOYED_HANDLERS
        .iter()
        .flat_map(|&h| {
            let arn = names.function_arn(region, account, h);
            [arn.clone(), format!("{arn}:*")]
        })
        .collect();
    let sm = names.state_machine();
    let map_result_files: Vec<String> = [
        "manifest.json",
        "SUCCEEDED_*.json",
        "FAILED_*.json",
        "PENDING_*.json",
    ]
    .iter()
    .flat_map(|f| result_objects(scope, &format!("*/{f}")))
    .collect();
    json!({
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "InvokeHandlers",
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": functions
            },
            {
                "Sid": "StartMapRunChildren",
                "Effect": "Allow",
                "Action": "states:StartExecution",
                "Resource": names.state_machine_arn(region, account)
            },
            {
                "Sid": "TrackMapRunChildren",
                "Effect": "Allow",
                "Action": ["states:DescribeExecution", "states:StopExecution"],
                "Resource": [
                    format!("arn:aws:states:{region}:{account}:execution:{sm}/*"),
                    format!("arn:aws:states:{region}:{account}:execution:{sm}:*")
                ]
            },
            {
                "Sid": "ReadMapItems",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": result_objects(scope, "items.json")
            },
            {
                "Sid": "WriteMapResults",
                "Effect": "Allow",
                "Action": [
                    "s3:PutObject",
                    "s3:GetObject",
                    "s3:ListMultipartUploadParts",
                    "s3:AbortMultipartUpload"
                ],
                "Resource": map_result_files

            }
        ]
    })
}

/// `tail` (an object name or `folder/*`) directly under each result prefix or under any
/// result path inside one, e.g. `res/items.json` and `res/*/items.json`.
fn result_objects(scope: &Scope, tail: &str) -> Vec<String> {
    scope
        .result_prefixes
        .iter()
        .flat_map(|p| {
            [
                s3_arn(&scope.data_bucket, Some(&format!("{p}/{tail}"))),
                s3_arn(&scope.data_bucket, Some(&format!("{p}/*/{tail}"))),
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = "us-east-2";
    const A: &str = "111122223333";

    fn names() -> StackNames {
        StackNames::new("cai").unwrap()
    }

    fn scope() -> Scope {
        Scope::new(
            "cosmicai-data",
            &["100MB".into(), "100MB/sub/".into(), "1GB/".into()],
            &["result".into()],
            &["models-b/Anomaly Detection/w.pt".into(), "seed:3".into()],
        )
        .unwrap()
    }

    fn payload(fields: Value) -> Payload {
        let mut base = json!({
            "bucket": "models-b",
            "S3_object_name": "Anomaly Detection",
            "batch_size": 512,
            "result_path": "result/run1",
            "data_bucket": "cosmicai-data",
            "data_prefix": "100MB",
            "model": "models-b/Anomaly Detection/w.pt"
        });
        for (k, v) in fields.as_object().unwrap() {
            if v.is_null() {
                base.as_object_mut().unwrap().remove(k);
            } else {
                base[k] = v.clone();
            }
        }
        Payload::from_value(&base).unwrap()
    }

    fn statement<'a>(policy: &'a Value, sid: &str) -> &'a Value {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == sid)
            .unwrap_or_else(|| panic!("no statement {sid}"))
    }

    /// Every Action and Resource string of a policy.
    fn strings(policy: &Value, field: &str) -> Vec<String> {
        let mut out = Vec::new();
        for s in policy["Statement"].as_array().unwrap() {
            match &s[field] {
                Value::String(v) => out.push(v.clone()),
                Value::Array(vs) => out.extend(vs.iter().map(|v| v.as_str().unwrap().to_string())),
                Value::Null => {}
                other => panic!("unexpected {field}: {other}"),
            }
        }
        out
    }

    fn assert_no_wildcards(policy: &Value) {
        for a in strings(policy, "Action") {
            assert!(!a.contains('*'), "wildcard action {a}");
        }
        for r in strings(policy, "Resource") {
            assert_ne!(r, "*", "resource *");
            assert!(
                !r.contains(":*:") && !r.starts_with("arn:aws:logs:*"),
                "{r}"
            );
        }
        for s in policy["Statement"].as_array().unwrap() {
            assert_eq!(s["Effect"], "Allow");
            assert!(s.get("NotAction").is_none() && s.get("NotResource").is_none());
        }
    }

    #[test]
    fn scope_normalises_prefixes_and_models() {
        let s = scope();
        assert_eq!(s.data_prefixes, vec!["100MB", "1GB"]);
        assert_eq!(s.result_prefixes, vec!["result"]);
        assert_eq!(s.models, vec!["models-b/Anomaly Detection/w.pt"]);
        let whole = Scope::new("cosmicai-data", &[], &["r".into()], &[]).unwrap();
        assert_eq!(whole.data_prefixes, vec![""]);
        assert!(whole.whole_data_bucket());
        assert!(Scope::new("cosmicai-data", &[], &[], &[]).is_err());
        assert!(Scope::new("cosmicai-data", &[], &["".into()], &[]).is_err());
        assert!(Scope::new("Bad_Bucket", &[], &["r".into()], &[]).is_err());
        assert_eq!(Scope::from_env(&s.to_env()).unwrap(), s);
    }

    #[test]
    fn prefixes_match_folder_wise() {
        assert!(within("100MB", "100MB"));
        assert!(within("100MB/", "100MB"));
        assert!(within("100MB/a/b", "100MB/"));
        assert!(!within("100MBx", "100MB"));
        assert!(!within("100MBx/a", "100MB"));
        assert!(!within("100", "100MB"));
        assert!(within("anything", ""));
    }

    #[test]
    fn check_accepts_payloads_inside_the_scope() {
        let s = scope();
        s.check(&payload(json!({}))).unwrap();
        s.check(&payload(
            json!({"data_prefix": "1GB/part", "result_path": "result"}),
        ))
        .unwrap();
        s.check(&payload(json!({"model": "seed:7"}))).unwrap();
        let default_model = Scope::new(
            "cosmicai-data",
            &["100MB".into()],
            &["result".into()],
            &[format!(
                "models-b/Anomaly Detection/{}",
                cai_workflow::payload::DEFAULT_MODEL_TAIL
            )],
        )
        .unwrap();
        default_model
            .check(&payload(json!({"model": null})))
            .unwrap();
    }

    #[test]
    fn check_refuses_naming_the_field_and_the_scope() {
        let s = scope();
        let e = s
            .check(&payload(json!({"data_prefix": "100MBx"})))
            .unwrap_err();
        assert!(e.contains("`data_prefix` \"100MBx\""), "{e}");
        assert!(e.contains("[\"100MB\", \"1GB\"]"), "{e}");
        let e = s
            .check(&payload(json!({"result_path": "results/x"})))
            .unwrap_err();
        assert!(e.contains("`result_path` \"results/x\""), "{e}");
        assert!(e.contains("[\"result\"]"), "{e}");
        let e = s
            .check(&payload(json!({"data_bucket": "other-bucket"})))
            .unwrap_err();
        assert!(e.contains("`data_bucket` is \"other-bucket\""), "{e}");
        assert!(e.contains("\"cosmicai-data\""), "{e}");
        let e = s
            .check(&payload(json!({"model": "models-b/other.pt"})))
            .unwrap_err();
        assert!(e.contains("field `model`"), "{e}");
        assert!(e.contains("models-b/other.pt"), "{e}");
        let e = s.check(&payload(json!({"model": null}))).unwrap_err();
        assert!(e.contains("`bucket` + `S3_object_name`"), "{e}");
        let both = s
            .check(&payload(json!({"data_prefix": "x", "result_path": "y"})))
            .unwrap_err();
        assert!(
            both.contains("data_prefix") && both.contains("result_path"),
            "{both}"
        );
    }

    #[test]
    fn add_payload_widens_the_scope() {
        let mut s =
            Scope::new("cosmicai-data", &["100MB".into()], &["result".into()], &[]).unwrap();
        let p = payload(json!({"data_prefix": "1GB", "result_path": "out/run"}));
        s.add_payload(&p).unwrap();
        s.check(&p).unwrap();
        assert_eq!(s.data_prefixes, vec!["100MB", "1GB"]);
        assert_eq!(s.result_prefixes, vec!["out/run", "result"]);
        let other = payload(json!({"data_bucket": "other-bucket"}));
        assert!(s.add_payload(&other).unwrap_err().contains("data_bucket"));
    }

    #[test]
    fn trust_policies_name_one_service_each() {
        let l = lambda_trust_policy();
        assert_eq!(l["Version"], POLICY_VERSION);
        let st = &l["Statement"].as_array().unwrap()[0];
        assert_eq!(st["Effect"], "Allow");
        assert_eq!(st["Principal"], json!({"Service": "lambda.amazonaws.com"}));
        assert_eq!(st["Action"], "sts:AssumeRole");
        assert!(st.get("Condition").is_none());
        assert_eq!(l["Statement"].as_array().unwrap().len(), 1);

        let s = states_trust_policy(A);
        let st = &s["Statement"].as_array().unwrap()[0];
        assert_eq!(st["Effect"], "Allow");
        assert_eq!(st["Principal"], json!({"Service": "states.amazonaws.com"}));
        assert_eq!(st["Action"], "sts:AssumeRole");
        assert_eq!(
            st["Condition"],
            json!({"StringEquals": {"aws:SourceAccount": A}})
        );
    }

    #[test]
    fn lambda_policy_is_exactly_the_scope() {
        let p = lambda_policy(&scope(), &names(), R, A);
        assert_eq!(p["Version"], POLICY_VERSION);
        assert_no_wildcards(&p);
        let sids: Vec<&str> = p["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sid"].as_str().unwrap())
            .collect();
        assert_eq!(
            sids,
            [
                "ListOwnPrefixes",
                "ReadPartitions",
                "ReadModels",
                "WriteResults",
                "WriteLogs",
                "CreateLogGroups"
            ]
        );

        let list = statement(&p, "ListOwnPrefixes");
        assert_eq!(list["Effect"], "Allow");
        assert_eq!(list["Action"], "s3:ListBucket");
        assert_eq!(list["Resource"], "arn:aws:s3:::cosmicai-data");
        assert_eq!(
            list["Condition"],
            json!({"StringLike": {"s3:prefix": ["100MB/", "100MB/*", "1GB/", "1GB/*", "result/", "result/*"]}})
        );

        let read = statement(&p, "ReadPartitions");
        assert_eq!(read["Action"], "s3:GetObject");
        assert_eq!(
            read["Resource"],
            json!([
                "arn:aws:s3:::cosmicai-data/100MB/*",
                "arn:aws:s3:::cosmicai-data/1GB/*"
            ])
        );
        assert!(read.get("Condition").is_none());

        let models = statement(&p, "ReadModels");
        assert_eq!(models["Action"], "s3:GetObject");
        assert_eq!(
            models["Resource"],
            json!(["arn:aws:s3:::models-b/Anomaly Detection/w.pt"])
        );
        assert!(models.get("Condition").is_none());

        let write = statement(&p, "WriteResults");
        assert_eq!(
            write["Action"],
            json!([
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload"
            ])
        );
        assert_eq!(
            write["Resource"],
            json!(["arn:aws:s3:::cosmicai-data/result/*"])
        );
        assert!(write.get("Condition").is_none());

        let logs = statement(&p, "WriteLogs");
        assert_eq!(
            logs["Action"],
            json!(["logs:CreateLogStream", "logs:PutLogEvents"])
        );
        assert_eq!(
            logs["Resource"],
            json!([
                "arn:aws:logs:us-east-2:111122223333:log-group:/aws/lambda/cai-init:*",
                "arn:aws:logs:us-east-2:111122223333:log-group:/aws/lambda/cai-infer:*",
                "arn:aws:logs:us-east-2:111122223333:log-group:/aws/lambda/cai-failure:*",
                "arn:aws:logs:us-east-2:111122223333:log-group:/aws/lambda/cai-summarize:*"
            ])
        );
        let groups = statement(&p, "CreateLogGroups");
        assert_eq!(groups["Action"], "logs:CreateLogGroup");
        let g = groups["Resource"].as_array().unwrap();
        assert_eq!(g.len(), 8);
        assert_eq!(
            g[0],
            "arn:aws:logs:us-east-2:111122223333:log-group:/aws/lambda/cai-init"
        );
        assert_eq!(
            g[1],
            "arn:aws:logs:us-east-2:111122223333:log-group:/aws/lambda/cai-init:*"
        );
        assert!(groups.get("Condition").is_none() && logs.get("Condition").is_none());
    }

    #[test]
    fn lambda_policy_for_the_whole_bucket_and_no_models() {
        let s = Scope::new("cosmicai-data", &[], &["result".into()], &["seed:1".into()]).unwrap();
        let p = lambda_policy(&s, &names(), R, A);
        assert_no_wildcards(&p);
        let list = statement(&p, "ListOwnPrefixes");
        assert!(
            list.get("Condition").is_none(),
            "whole bucket: no prefix condition"
        );
        assert_eq!(
            statement(&p, "ReadPartitions")["Resource"],
            json!(["arn:aws:s3:::cosmicai-data/*"])
        );
        assert!(p["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["Sid"] != "ReadModels"));
    }

    #[test]
    fn states_policy_invokes_the_functions_and_runs_the_map() {
        let p = states_policy(&scope(), &names(), R, A);
        assert_eq!(p["Version"], POLICY_VERSION);
        assert_no_wildcards(&p);
        assert_eq!(p["Statement"].as_array().unwrap().len(), 5);

        let invoke = statement(&p, "InvokeHandlers");
        assert_eq!(invoke["Effect"], "Allow");
        assert_eq!(invoke["Action"], "lambda:InvokeFunction");
        let f = "arn:aws:lambda:us-east-2:111122223333:function:";
        assert_eq!(
            invoke["Resource"],
            json!([
                format!("{f}cai-init"),
                format!("{f}cai-init:*"),
                format!("{f}cai-infer"),
                format!("{f}cai-infer:*"),
                format!("{f}cai-failure"),
                format!("{f}cai-failure:*"),
                format!("{f}cai-summarize"),
                format!("{f}cai-summarize:*")
            ])
        );
        assert!(invoke.get("Condition").is_none());

        let start = statement(&p, "StartMapRunChildren");
        assert_eq!(start["Action"], "states:StartExecution");
        assert_eq!(
            start["Resource"],
            "arn:aws:states:us-east-2:111122223333:stateMachine:cai"
        );
        assert!(start.get("Condition").is_none());

        let track = statement(&p, "TrackMapRunChildren");
        assert_eq!(
            track["Action"],
            json!(["states:DescribeExecution", "states:StopExecution"])
        );
        assert_eq!(
            track["Resource"],
            json!([
                "arn:aws:states:us-east-2:111122223333:execution:cai/*",
                "arn:aws:states:us-east-2:111122223333:execution:cai:*"
            ])
        );
        assert!(track.get("Condition").is_none());

        let s = scope();
        let items = statement(&p, "ReadMapItems");
        assert_eq!(items["Action"], "s3:GetObject");
        let want: Vec<String> = s
            .result_prefixes
            .iter()
            .flat_map(|r| {
                [
                    format!("arn:aws:s3:::{}/{r}/items.json", s.data_bucket),
                    format!("arn:aws:s3:::{}/{r}/*/items.json", s.data_bucket),
                ]
            })
            .collect();
        assert_eq!(items["Resource"], json!(want));
        let results = statement(&p, "WriteMapResults");
        assert!(results["Action"]
            .as_array()
            .unwrap()
            .contains(&json!("s3:PutObject")));
        for r in results["Resource"].as_array().unwrap() {
            let r = r.as_str().unwrap();
            assert!(
                [
                    "/manifest.json",
                    "/SUCCEEDED_*.json",
                    "/FAILED_*.json",
                    "/PENDING_*.json"
                ]
                .iter()
                .any(|f| r.ends_with(f)),
                "{r}"
            );
            assert!(
                s.result_prefixes
                    .iter()
                    .any(|p| r.contains(&format!(":::{}/{p}/", s.data_bucket))),
                "{r}"
            );
        }
    }
}
