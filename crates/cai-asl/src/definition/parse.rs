//! Turning definition JSON into [`StateMachine`]s, state by state, refusing anything
//! outside the supported subset.

use std::collections::BTreeMap;

use serde_json::Value;

use super::fields::Fields;
use super::{
    batcher, policy, reader, validate, writer, ChoiceState, Definition, ExecutionType, FailState,
    FailText, MapMode, MapState, PassState, ResultPath, Select, State, StateKind, StateMachine,
    TaskState, Transition,
};
use crate::choice::parse_branch;
use crate::path::Path;
use crate::DefinitionError;

const COMMON: &[&str] = &["Type", "Comment", "QueryLanguage"];
const FLOW: &[&str] = &["Next", "End", "InputPath", "OutputPath"];

pub(super) fn definition(v: &Value) -> Result<Definition, DefinitionError> {
    let f = Fields::new("", "", v)?;
    f.check_allowed(
        "a state machine definition",
        &[
            "StartAt",
            "States",
            "Comment",
            "Version",
            "TimeoutSeconds",
            "QueryLanguage",
        ],
    )?;
    if let Some(version) = f.str("Version")? {
        if version != "1.0" {
            return Err(f.invalid("Version", "must be \"1.0\""));
        }
    }
    f.str("Comment")?;
    let timeout_seconds = f.uint("TimeoutSeconds", 1)?;
    let machine = machine(&f, "")?;
    Ok(Definition {
        machine,
        timeout_seconds,
    })
}

/// Parses the StartAt/States pair held by `f`; `prefix` is prepended to state paths.
fn machine(f: &Fields<'_>, prefix: &str) -> Result<StateMachine, DefinitionError> {
    let start_at = f.req_str("StartAt")?.to_string();
    let Some(obj) = f
        .get("States")
        .and_then(Value::as_object)
        .filter(|o| !o.is_empty())
    else {
        return Err(f.invalid("States", "is required and must be a non-empty object"));
    };
    let mut states = BTreeMap::new();
    for (name, v) in obj {
        let path = format!("{prefix}States.{name}");
        if name.is_empty() || name.chars().count() > 80 {
            return Err(DefinitionError::Invalid {
                path,
                field: "(name)".into(),
                message: "state names must be 1 to 80 characters".into(),
            });
        }
        states.insert(name.clone(), state(&path, v)?);
    }
    let machine = StateMachine { start_at, states };
    validate::scope(f, prefix, &machine)?;
    Ok(machine)
}

fn allowed(extra: &[&'static str], flow: bool) -> Vec<&'static str> {
    let mut v = COMMON.to_vec();
    if flow {
        v.extend_from_slice(FLOW);
    }
    v.extend_from_slice(extra);
    v
}

fn state(path: &str, v: &Value) -> Result<State, DefinitionError> {
    let f = Fields::new(path, "", v)?;
    let ty = f.req_str("Type")?;
    let (what, fields): (&str, Vec<&str>) = match ty {
        "Task" => (
            "a Task state",
            allowed(
                &[
                    "Parameters",
                    "ResultSelector",
                    "ResultPath",
                    "Retry",
                    "Catch",
                    "Resource",
                    "TimeoutSeconds",
                ],
                true,
            ),
        ),
        "Pass" => (
            "a Pass state",
            allowed(&["Parameters", "Result", "ResultPath"], true),
        ),
        "Map" => (
            "a Map state",
            allowed(
                &[
                    "ItemsPath",
                    "ItemReader",
                    "ItemBatcher",
                    "ResultWriter",
                    "ItemSelector",
                    "Parameters",
                    "ItemProcessor",
                    "Iterator",
                    "MaxConcurrency",
                    "ToleratedFailurePercentage",
                    "ToleratedFailureCount",
                    "Label",
                    "ResultSelector",
                    "ResultPath",
                    "Retry",
                    "Catch",
                ],
                true,
            ),
        ),
        "Choice" => (
            "a Choice state",
            allowed(&["InputPath", "OutputPath", "Choices", "Default"], false),
        ),
        "Succeed" => (
            "a Succeed state",
            allowed(&["InputPath", "OutputPath"], false),
        ),
        "Fail" => (
            "a Fail state",
            allowed(&["Error", "Cause", "ErrorPath", "CausePath"], false),
        ),
        "Wait" | "Parallel" => {
            return Err(f.unsupported("Type", format!("{ty} states are not implemented")))
        }
        other => return Err(f.invalid("Type", format!("`{other}` is not a state type"))),
    };
    f.check_allowed(what, &fields)?;
    f.str("Comment")?;
    let kind = match ty {
        "Task" => StateKind::Task(task(&f)?),
        "Pass" => StateKind::Pass(PassState {
            parameters: f.template("Parameters", true)?,
            result: f.get("Result").cloned(),
            result_path: result_path(&f)?,
        }),
        "Map" => StateKind::Map(Box::new(map(&f)?)),
        "Choice" => StateKind::Choice(choice(&f)?),
        "Succeed" => StateKind::Succeed,
        _ => StateKind::Fail(FailState {
            error: fail_text(&f, "Error", "ErrorPath")?,
            cause: fail_text(&f, "Cause", "CausePath")?,
        }),
    };
    let transition = match kind {
        StateKind::Choice(_) | StateKind::Succeed | StateKind::Fail(_) => Transition::Own,
        _ => transition(&f)?,
    };
    Ok(State {
        kind,
        input_path: select(&f, "InputPath")?,
        output_path: select(&f, "OutputPath")?,
        transition,
    })
}

fn root() -> Path {
    Path::parse("$").expect("`$` is a path")
}

fn select(f: &Fields<'_>, field: &str) -> Result<Select, DefinitionError> {
    match f.get(field) {
        None => Ok(Select::Path(root())),
        Some(Value::Null) => Ok(Select::Empty),
        Some(Value::String(text)) => f.path_str(field, text, false).map(Select::Path),
        Some(_) => Err(f.invalid(field, "must be a path string or null")),
    }
}

pub(super) fn result_path(f: &Fields<'_>) -> Result<ResultPath, DefinitionError> {
    match f.get("ResultPath") {
        None => Ok(Some(root())),
        Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => f.path_str("ResultPath", text, false).map(Some),
        Some(_) => Err(f.invalid("ResultPath", "must be a path string or null")),
    }
}

fn transition(f: &Fields<'_>) -> Result<Transition, DefinitionError> {
    let next = f.str("Next")?;
    let end = f.bool("End")?;
    match (next, end) {
        (Some(_), Some(true)) => Err(f.invalid("End", "cannot be combined with Next")),
        (Some(next), _) => Ok(Transition::Next(next.to_string())),
        (None, Some(true)) => Ok(Transition::End),
        (None, Some(false)) => Err(f.invalid("End", "must be true when there is no Next")),
        (None, None) => Err(f.invalid("Next", "is required (or \"End\": true)")),
    }
}

fn task(f: &Fields<'_>) -> Result<TaskState, DefinitionError> {
    let resource = f.req_str("Resource")?;
    if resource.is_empty() {
        return Err(f.invalid("Resource", "must not be empty"));
    }
    Ok(TaskState {
        resource: resource.to_string(),
        parameters: f.template("Parameters", true)?,
        result_selector: f.template("ResultSelector", true)?,
        result_path: result_path(f)?,
        timeout_seconds: f.uint("TimeoutSeconds", 1)?,
        retry: policy::retriers(f)?,
        catch: policy::catchers(f)?,
    })
}

fn map(f: &Fields<'_>) -> Result<MapState, DefinitionError> {
    let item_selector = match (f.has("ItemSelector"), f.has("Parameters")) {
        (true, true) => {
            return Err(f.invalid(
                "Parameters",
                "cannot be combined with ItemSelector (Parameters is its legacy name on Map)",
            ))
        }
        (true, false) => f.template("ItemSelector", true)?,
        (false, true) => f.template("Parameters", true)?,
        (false, false) => None,
    };
    let (field, processor) = match (f.get("ItemProcessor"), f.get("Iterator")) {
        (Some(_), Some(_)) => {
            return Err(f.invalid(
                "Iterator",
                "cannot be combined with ItemProcessor (Iterator is its legacy name)",
            ))
        }
        (Some(p), None) => ("ItemProcessor", p),
        (None, Some(p)) => ("Iterator", p),
        (None, None) => return Err(f.invalid("ItemProcessor", "is required")),
    };
    let pf = Fields::new(f.path(), field, processor)?;
    let (mode, execution_type) = if field == "ItemProcessor" {
        pf.check_allowed(
            "a Map's ItemProcessor",
            &["StartAt", "States", "Comment", "ProcessorConfig"],
        )?;
        processor_mode(&pf)?
    } else {
        pf.check_allowed("a Map's Iterator", &["StartAt", "States", "Comment"])?;
        (MapMode::Inline, ExecutionType::Standard)
    };
    let machine = machine(&pf, &format!("{}.{field}.", f.path()))?;
    let tolerated_failure_count = f.uint("ToleratedFailureCount", 0)?;
    let tolerated_failure_percentage = f.number("ToleratedFailurePercentage", 0.0, 100.0)?;
    if mode == MapMode::Inline {
        for field in [
            "ToleratedFailureCount",
            "ToleratedFailurePercentage",
            "ItemReader",
            "ItemBatcher",
            "ResultWriter",
        ] {
            if f.has(field) {
                return Err(f.invalid(field, "only applies to a DISTRIBUTED Map"));
            }
        }
    }
    let item_reader = match f.has("ItemReader") {
        true => Some(reader::item_reader(f)?),
        false => None,
    };
    if item_reader.is_some() && f.has("ItemsPath") {
        return Err(f.invalid(
            "ItemsPath",
            "cannot be combined with ItemReader: ItemsPath only selects items from the state input",
        ));
    }
    Ok(MapState {
        items_path: f.opt_path("ItemsPath", true)?.unwrap_or_else(root),
        item_reader,
        item_batcher: match f.has("ItemBatcher") {
            true => Some(batcher::item_batcher(f)?),
            false => None,
        },
        result_writer: match f.has("ResultWriter") {
            true => Some(writer::result_writer(f)?),
            false => None,
        },
        item_selector,
        processor: machine,
        mode,
        execution_type,
        label: f.str("Label")?.map(str::to_string),
        max_concurrency: f.uint("MaxConcurrency", 0)?.unwrap_or(0),
        tolerated_failure_count,
        tolerated_failure_percentage,
        result_selector: f.template("ResultSelector", true)?,
        result_path: result_path(f)?,
        retry: policy::retriers(f)?,
        catch: policy::catchers(f)?,
    })
}

fn processor_mode(pf: &Fields<'_>) -> Result<(MapMode, ExecutionType), DefinitionError> {
    let Some(config) = pf.get("ProcessorConfig") else {
        return Ok((MapMode::Inline, ExecutionType::Standard));
    };
    let cf = Fields::new(pf.path(), &pf.name("ProcessorConfig"), config)?;
    cf.check_allowed("a ProcessorConfig", &["Mode", "ExecutionType"])?;
    let mode = match cf.str("Mode")? {
        None | Some("INLINE") => MapMode::Inline,
        Some("DISTRIBUTED") => MapMode::Distributed,
        Some(_) => return Err(cf.invalid("Mode", "must be \"INLINE\" or \"DISTRIBUTED\"")),
    };
    let execution_type = match cf.str("ExecutionType")? {
        None => ExecutionType::Standard,
        Some(_) if mode == MapMode::Inline => {
            return Err(cf.invalid("ExecutionType", "only applies to a DISTRIBUTED Map"))
        }
        Some("STANDARD") => ExecutionType::Standard,
        Some("EXPRESS") => ExecutionType::Express,
        Some(_) => return Err(cf.invalid("ExecutionType", "must be \"STANDARD\" or \"EXPRESS\"")),
    };
    Ok((mode, execution_type))
}

fn choice(f: &Fields<'_>) -> Result<ChoiceState, DefinitionError> {
    let Some(rules) = f
        .get("Choices")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    else {
        return Err(f.invalid("Choices", "is required and must be a non-empty array"));
    };
    Ok(ChoiceState {
        choices: rules
            .iter()
            .enumerate()
            .map(|(i, v)| parse_branch(f.path(), i, v))
            .collect::<Result<_, _>>()?,
        default: f.str("Default")?.map(str::to_string),
    })
}

fn fail_text(
    f: &Fields<'_>,
    literal: &str,
    path: &str,
) -> Result<Option<FailText>, DefinitionError> {
    match (f.str(literal)?, f.str(path)?) {
        (Some(_), Some(_)) => Err(f.invalid(path, format!("cannot be combined with {literal}"))),
        (Some(text), None) => Ok(Some(FailText::Literal(text.to_string()))),
        (None, Some(text)) => {
            if text.starts_with("States.") {
                return Err(f.unsupported(path, format!("`{text}` is an intrinsic function")));
            }
            Ok(Some(FailText::Path(f.path_str(path, text, true)?)))
        }
        (None, None) => Ok(None),
    }
}
