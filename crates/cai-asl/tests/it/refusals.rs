//! Parse-time refusals: each names the state path and the field.

use cai_asl::{Definition, DefinitionError};
use serde_json::{json, Value};

fn refuse(v: Value) -> DefinitionError {
    match Definition::from_value(v) {
        Ok(_) => panic!("definition was accepted"),
        Err(e) => e,
    }
}

fn assert_names(e: &DefinitionError, path: &str, field: &str) {
    assert_eq!(e.path(), path, "{e}");
    assert_eq!(e.field(), Some(field), "{e}");
    let text = e.to_string();
    assert!(text.contains(field), "{text}");
    if !path.is_empty() {
        assert!(text.contains(path), "{text}");
    }
}

/// The workflow shape cai generates, with a hook to break one state.
fn shape(edit: impl FnOnce(&mut Value)) -> Value {
    let mut v = json!({
        "Comment": "cai",
        "StartAt": "Initialize",
        "States": {
            "Initialize": {"Type": "Task", "Resource": "init", "Next": "Map"},
            "Map": {
                "Type": "Map",
                "ItemsPath": "$.ranks",
                "MaxConcurrency": 4,
                "ToleratedFailurePercentage": 10,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Infer",
                    "States": {"Infer": {
                        "Type": "Task", "Resource": "infer", "End": true,
                        "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "BackoffRate": 2.0, "MaxAttempts": 3}]
                    }}
                },
                "Next": "Summarize"
            },
            "Summarize": {"Type": "Task", "Resource": "summarize", "Next": "Check"},
            "Check": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": true, "Next": "Done"}], "Default": "Failed"},
            "Done": {"Type": "Succeed"},
            "Failed": {"Type": "Fail", "Error": "Bad", "Cause": "bad"}
        }
    });
    edit(&mut v);
    v
}

#[test]
fn the_generated_shape_is_accepted_and_lists_resources() {
    let d = Definition::from_value(shape(|_| {})).unwrap();
    assert_eq!(d.task_resources(), vec!["infer", "init", "summarize"]);
}

#[test]
fn unknown_field_on_each_state_type_names_path_and_field() {
    let cases: [(&str, &str); 6] = [
        ("/States/Initialize", "States.Initialize"),
        ("/States/Map", "States.Map"),
        (
            "/States/Map/ItemProcessor/States/Infer",
            "States.Map.ItemProcessor.States.Infer",
        ),
        ("/States/Check", "States.Check"),
        ("/States/Done", "States.Done"),
        ("/States/Failed", "States.Failed"),
    ];
    for (pointer, path) in cases {
        let e = refuse(shape(|v| {
            v.pointer_mut(pointer).unwrap()["Bogus"] = json!(1);
        }));
        assert!(matches!(e, DefinitionError::Invalid { .. }), "{e}");
        assert_names(&e, path, "Bogus");
    }
    let e = refuse(
        json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true, "Retry": []}}}),
    );
    assert_names(&e, "States.P", "Retry");
}

#[test]
fn unsupported_fields_are_refused_by_name() {
    for (pointer, field) in [
        ("/States/Map/ItemProcessor/States/Infer", "HeartbeatSeconds"),
        ("/States/Initialize", "TimeoutSecondsPath"),
        ("/States/Initialize", "Credentials"),
        ("/States/Initialize", "Arguments"),
        ("/States/Initialize", "Assign"),
        ("/States/Map", "MaxConcurrencyPath"),
        ("/States/Map", "ToleratedFailurePercentagePath"),
    ] {
        let e = refuse(shape(|v| {
            v.pointer_mut(pointer).unwrap()[field] = json!({});
        }));
        assert!(matches!(e, DefinitionError::Unsupported { .. }), "{e}");
        let path = pointer.trim_start_matches('/').replace('/', ".");
        assert_names(&e, &path, field);
    }
}

#[test]
fn unknown_and_unsupported_state_types() {
    let e = refuse(shape(|v| v["States"]["Done"]["Type"] = json!("Succes")));
    assert!(matches!(e, DefinitionError::Invalid { .. }));
    assert_names(&e, "States.Done", "Type");
    let e = refuse(shape(|v| {
        v["States"]["Done"] = json!({"Type": "Wait", "Seconds": 1, "End": true})
    }));
    assert!(matches!(e, DefinitionError::Unsupported { .. }));
    assert_names(&e, "States.Done", "Type");
    let e = refuse(shape(|v| v["States"]["Done"]["Type"] = json!("Parallel")));
    assert_names(&e, "States.Done", "Type");
}

#[test]
fn intrinsic_functions_and_multi_value_paths_are_refused() {
    let e = refuse(shape(|v| {
        v["States"]["Initialize"]["Parameters"] = json!({"name.$": "States.Format('r{}', $.x)"});
    }));
    assert!(matches!(e, DefinitionError::Unsupported { .. }), "{e}");
    assert_names(&e, "States.Initialize", "Parameters.name.$");
    let e = refuse(shape(|v| {
        v["States"]["Map"]["ItemSelector"] = json!({"deep": {"all.$": "$..x"}});
    }));
    assert!(matches!(e, DefinitionError::Unsupported { .. }), "{e}");
    assert_names(&e, "States.Map", "ItemSelector.deep.all.$");
    let e = refuse(shape(|v| {
        v["States"]["Initialize"]["InputPath"] = json!("$.a[*]")
    }));
    assert_names(&e, "States.Initialize", "InputPath");
    let e = refuse(shape(|v| {
        v["States"]["Initialize"]["ResultPath"] = json!("$$.x")
    }));
    assert_names(&e, "States.Initialize", "ResultPath");
    let e = refuse(shape(|v| {
        v["States"]["Initialize"]["Parameters"] = json!({"a.$": 3})
    }));
    assert_names(&e, "States.Initialize", "Parameters.a.$");
}

#[test]
fn jsonata_and_query_language() {
    let e = refuse(shape(|v| v["QueryLanguage"] = json!("JSONata")));
    assert!(matches!(e, DefinitionError::Unsupported { .. }));
    assert_names(&e, "", "QueryLanguage");
    assert!(Definition::from_value(shape(|v| v["QueryLanguage"] = json!("JSONPath"))).is_ok());
    let e = refuse(shape(|v| {
        v["States"]["Check"]["Choices"][0] = json!({"Condition": "{% true %}", "Next": "Done"})
    }));
    assert_names(&e, "States.Check", "Choices[0].Condition");
}

#[test]
fn dangling_targets_and_start_at() {
    let e = refuse(shape(|v| {
        v["States"]["Summarize"]["Next"] = json!("Nowhere")
    }));
    assert_names(&e, "States.Summarize", "Next");
    assert!(e.to_string().contains("Nowhere"));
    let e = refuse(shape(|v| {
        v["States"]["Check"]["Default"] = json!("Nowhere")
    }));
    assert_names(&e, "States.Check", "Default");
    let e = refuse(shape(|v| {
        v["States"]["Check"]["Choices"][0]["Next"] = json!("Nowhere")
    }));
    assert_names(&e, "States.Check", "Choices[0].Next");
    let e = refuse(shape(|v| v["StartAt"] = json!("Nowhere")));
    assert_names(&e, "", "StartAt");
    // A processor state may not jump to the parent's states.
    let e = refuse(shape(|v| {
        v["States"]["Map"]["ItemProcessor"]["States"]["Infer"] =
            json!({"Type": "Task", "Resource": "infer", "Next": "Summarize"});
    }));
    assert_names(&e, "States.Map.ItemProcessor.States.Infer", "Next");
    let e = refuse(shape(|v| {
        v["States"]["Initialize"]["Catch"] =
            json!([{"ErrorEquals": ["States.ALL"], "Next": "Gone"}]);
    }));
    assert_names(&e, "States.Initialize", "Catch[0].Next");
}

#[test]
fn next_and_end_rules() {
    let e = refuse(shape(|v| v["States"]["Initialize"]["End"] = json!(true)));
    assert_names(&e, "States.Initialize", "End");
    let e = refuse(shape(|v| {
        v["States"]["Initialize"]
            .as_object_mut()
            .unwrap()
            .remove("Next");
    }));
    assert_names(&e, "States.Initialize", "Next");
    let e = refuse(shape(|v| v["States"]["Done"]["Next"] = json!("Failed")));
    assert_names(&e, "States.Done", "Next");
    let e = refuse(shape(|v| v["States"]["Check"]["End"] = json!(true)));
    assert_names(&e, "States.Check", "End");
}

#[test]
fn unreachable_state_is_refused() {
    let e = refuse(shape(|v| {
        v["States"]["Orphan"] = json!({"Type": "Succeed"})
    }));
    assert!(matches!(e, DefinitionError::Unreachable { .. }));
    assert_eq!(e.path(), "States.Orphan");
}

#[test]
fn retry_and_catch_validation() {
    let retry = |r: Value| shape(move |v| v["States"]["Initialize"]["Retry"] = r);
    for (r, field) in [
        (json!([{"ErrorEquals": []}]), "Retry[0].ErrorEquals"),
        (json!([{"IntervalSeconds": 1}]), "Retry[0].ErrorEquals"),
        (
            json!([{"ErrorEquals": ["States.ALL", "X"]}]),
            "Retry[0].ErrorEquals",
        ),
        (
            json!([{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["X"]}]),
            "Retry[0].ErrorEquals",
        ),
        (
            json!([{"ErrorEquals": ["States.Timout"]}]),
            "Retry[0].ErrorEquals",
        ),
        (
            json!([{"ErrorEquals": ["X"], "MaxAttempts": -1}]),
            "Retry[0].MaxAttempts",
        ),
        (
            json!([{"ErrorEquals": ["X"], "IntervalSeconds": 0}]),
            "Retry[0].IntervalSeconds",
        ),
        (
            json!([{"ErrorEquals": ["X"], "BackoffRate": 0.5}]),
            "Retry[0].BackoffRate",
        ),
        (
            json!([{"ErrorEquals": ["X"], "MaxDelaySeconds": 0}]),
            "Retry[0].MaxDelaySeconds",
        ),
        (
            json!([{"ErrorEquals": ["X"], "JitterStrategy": "HALF"}]),
            "Retry[0].JitterStrategy",
        ),
        (
            json!([{"ErrorEquals": ["X"], "Bogus": 1}]),
            "Retry[0].Bogus",
        ),
    ] {
        let e = refuse(retry(r.clone()));
        assert_names(&e, "States.Initialize", field);
    }
    let ok = retry(json!([
        {"ErrorEquals": ["X"], "MaxAttempts": 0},
        {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "BackoffRate": 1.0, "MaxDelaySeconds": 5, "JitterStrategy": "FULL"}
    ]));
    assert!(Definition::from_value(ok).is_ok());
    let e = refuse(shape(|v| {
        v["States"]["Initialize"]["Catch"] = json!([{"ErrorEquals": ["X"]}])
    }));
    assert_names(&e, "States.Initialize", "Catch[0].Next");
    let e = refuse(shape(|v| {
        v["States"]["Initialize"]["Catch"] = json!([{"Next": "Done"}])
    }));
    assert_names(&e, "States.Initialize", "Catch[0].ErrorEquals");
}

#[test]
fn map_numeric_ranges_and_modes() {
    let map = |field: &str, value: Value| {
        let field = field.to_string();
        shape(move |v| v["States"]["Map"][field] = value)
    };
    let e = refuse(map("ToleratedFailurePercentage", json!(100.5)));
    assert_names(&e, "States.Map", "ToleratedFailurePercentage");
    let e = refuse(map("ToleratedFailureCount", json!(-1)));
    assert_names(&e, "States.Map", "ToleratedFailureCount");
    let e = refuse(map("MaxConcurrency", json!(-1)));
    assert_names(&e, "States.Map", "MaxConcurrency");
    assert!(Definition::from_value(map("ToleratedFailurePercentage", json!(12.5))).is_ok());
    assert!(Definition::from_value(map("MaxConcurrency", json!(0))).is_ok());
    let e = refuse(shape(|v| {
        v["States"]["Map"]["ItemProcessor"]["ProcessorConfig"]["Mode"] = json!("PARALLEL")
    }));
    assert_names(&e, "States.Map", "ItemProcessor.ProcessorConfig.Mode");
    let e = refuse(shape(|v| {
        v["States"]["Map"]["ItemProcessor"]["ProcessorConfig"]["ExecutionType"] = json!("FAST")
    }));
    assert_names(
        &e,
        "States.Map",
        "ItemProcessor.ProcessorConfig.ExecutionType",
    );
    // Tolerated failures only exist for distributed maps.
    let e = refuse(shape(|v| {
        v["States"]["Map"]["ItemProcessor"]["ProcessorConfig"] = json!({"Mode": "INLINE"})
    }));
    assert_names(&e, "States.Map", "ToleratedFailurePercentage");
    let e = refuse(shape(|v| {
        v["States"]["Map"]["ItemSelector"] = json!({});
        v["States"]["Map"]["Parameters"] = json!({});
    }));
    assert_names(&e, "States.Map", "Parameters");
    let e = refuse(shape(|v| {
        let p = v["States"]["Map"]["ItemProcessor"].clone();
        v["States"]["Map"]["Iterator"] = p;
    }));
    assert_names(&e, "States.Map", "Iterator");
    let e = refuse(shape(|v| {
        v["States"]["Map"]["ItemProcessor"]["StartAt"] = json!("Nope")
    }));
    assert_names(&e, "States.Map", "ItemProcessor.StartAt");
}

#[test]
fn timeouts_and_top_level() {
    let e = refuse(shape(|v| {
        v["States"]["Initialize"]["TimeoutSeconds"] = json!(0)
    }));
    assert_names(&e, "States.Initialize", "TimeoutSeconds");
    let e = refuse(shape(|v| v["TimeoutSeconds"] = json!("10")));
    assert_names(&e, "", "TimeoutSeconds");
    let e = refuse(shape(|v| v["Version"] = json!("2.0")));
    assert_names(&e, "", "Version");
    let e = refuse(shape(|v| v["Extra"] = json!(1)));
    assert_names(&e, "", "Extra");
}

#[test]
fn choice_rule_validation() {
    let rule = |r: Value| shape(move |v| v["States"]["Check"]["Choices"][0] = r);
    for (r, field) in [
        (
            json!({"Variable": "$.x", "StringEquals": 1, "Next": "Done"}),
            "Choices[0].StringEquals",
        ),
        (
            json!({"Variable": "$.x", "NumericEquals": "1", "Next": "Done"}),
            "Choices[0].NumericEquals",
        ),
        (
            json!({"Variable": "$.x", "TimestampEquals": "yesterday", "Next": "Done"}),
            "Choices[0].TimestampEquals",
        ),
        (
            json!({"Variable": "$.x", "IsNull": "yes", "Next": "Done"}),
            "Choices[0].IsNull",
        ),
        (
            json!({"Variable": "$.x", "StringEqualsPath": "x", "Next": "Done"}),
            "Choices[0].StringEqualsPath",
        ),
        (
            json!({"StringEquals": "a", "Next": "Done"}),
            "Choices[0].Variable",
        ),
        (
            json!({"Variable": "$.x", "StringEquals": "a"}),
            "Choices[0].Next",
        ),
        (json!({"And": [], "Next": "Done"}), "Choices[0].And"),
        (
            json!({"Not": {"Variable": "$.x", "IsNull": true, "Next": "Done"}, "Next": "Done"}),
            "Choices[0].Not.Next",
        ),
        (
            json!({"Or": [{"Variable": "$.x", "Foo": 1}], "Next": "Done"}),
            "Choices[0].Or[0].Foo",
        ),
    ] {
        let e = refuse(rule(r.clone()));
        assert_names(&e, "States.Check", field);
    }
    // Two operators: whichever comes second (key order) is named.
    let e = refuse(rule(
        json!({"Variable": "$.x", "StringEquals": "a", "IsNull": true, "Next": "Done"}),
    ));
    assert_eq!(e.path(), "States.Check");
    assert!(
        matches!(
            e.field(),
            Some("Choices[0].StringEquals" | "Choices[0].IsNull")
        ),
        "{e}"
    );
    let e = refuse(shape(|v| v["States"]["Check"]["Choices"] = json!([])));
    assert_names(&e, "States.Check", "Choices");
}

#[test]
fn malformed_json_reports_line_and_column() {
    let text = "{\n  \"StartAt\": \"A\",\n  \"States\": {,}\n}";
    match Definition::parse(text) {
        Err(DefinitionError::Json { line, column, .. }) => {
            assert_eq!(line, 3);
            assert_eq!(column, 14);
        }
        other => panic!("expected a JSON error, got {other:?}"),
    }
    let e = Definition::parse(text).unwrap_err().to_string();
    assert!(e.contains("line 3, column 14"), "{e}");
}

#[test]
fn fail_state_fields() {
    let e = refuse(shape(|v| v["States"]["Failed"]["ErrorPath"] = json!("$.e")));
    assert_names(&e, "States.Failed", "ErrorPath");
    let e = refuse(shape(|v| v["States"]["Failed"]["InputPath"] = json!("$")));
    assert_names(&e, "States.Failed", "InputPath");
}
