//! The parsed, validated state machine.

mod batcher;
pub(crate) mod fields;
mod parse;
mod policy;
mod reader;
mod validate;
mod writer;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::choice::Branch;
use crate::path::Path;
use crate::retry::{Catcher, Retrier};
use crate::template::Template;
use crate::DefinitionError;

pub(crate) use batcher::{Bound, ItemBatcher};
pub(crate) use reader::{InputFormat, ItemReader, MaxItems, ReaderSource};
pub(crate) use writer::ResultWriter;

/// A state machine definition that parsed and passed validation, ready for
/// [`crate::execute`]. Only the supported ASL subset ever gets this far.
#[derive(Debug, Clone)]
pub struct Definition {
    pub(crate) machine: StateMachine,
    pub(crate) timeout_seconds: Option<u64>,
}

impl Definition {
    /// Parses and validates definition text; malformed JSON is reported with its line
    /// and column.
    pub fn parse(json: &str) -> Result<Definition, DefinitionError> {
        let value: Value = serde_json::from_str(json).map_err(|e| DefinitionError::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        Definition::from_value(value)
    }

    /// Validates an already-parsed JSON definition.
    pub fn from_value(v: Value) -> Result<Definition, DefinitionError> {
        parse::definition(&v)
    }

    /// Every Task `Resource`, including those inside Map processors, sorted and
    /// deduplicated, so callers can check up front that each one can be resolved.
    pub fn task_resources(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.machine.collect_resources(&mut out);
        out.sort();
        out.dedup();
        out
    }

    /// The top-level TimeoutSeconds, if any.
    pub fn timeout_seconds(&self) -> Option<u64> {
        self.timeout_seconds
    }

    /// The top-level StartAt state's name.
    pub fn start_at(&self) -> &str {
        &self.machine.start_at
    }
}

/// One `States` scope with its StartAt.
#[derive(Debug, Clone)]
pub(crate) struct StateMachine {
    pub start_at: String,
    pub states: BTreeMap<String, State>,
}

impl StateMachine {
    fn collect_resources(&self, out: &mut Vec<String>) {
        for state in self.states.values() {
            match &state.kind {
                StateKind::Task(t) => out.push(t.resource.clone()),
                StateKind::Map(m) => m.processor.collect_resources(out),
                _ => {}
            }
        }
    }
}

/// InputPath / OutputPath: `$` by default, `null` gives `{}`.
#[derive(Debug, Clone)]
pub(crate) enum Select {
    Path(Path),
    Empty,
}

/// What follows a non-terminal, non-Choice state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Transition {
    Next(String),
    End,
    /// Choice, Succeed and Fail decide for themselves.
    Own,
}

/// A state: its common fields plus its type-specific part.
#[derive(Debug, Clone)]
pub(crate) struct State {
    pub kind: StateKind,
    pub input_path: Select,
    pub output_path: Select,
    pub transition: Transition,
}

#[derive(Debug, Clone)]
pub(crate) enum StateKind {
    Task(TaskState),
    Pass(PassState),
    Map(Box<MapState>),
    Choice(ChoiceState),
    Succeed,
    Fail(FailState),
}

/// ResultPath: `None` discards the result (ResultPath null).
pub(crate) type ResultPath = Option<Path>;

#[derive(Debug, Clone)]
pub(crate) struct TaskState {
    pub resource: String,
    pub parameters: Option<Template>,
    pub result_selector: Option<Template>,
    pub result_path: ResultPath,
    pub timeout_seconds: Option<u64>,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
}

#[derive(Debug, Clone)]
pub(crate) struct PassState {
    pub parameters: Option<Template>,
    pub result: Option<Value>,
    pub result_path: ResultPath,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MapMode {
    Inline,
    Distributed,
}

/// ProcessorConfig.ExecutionType of a distributed Map: how AWS runs (and bills) its
/// child executions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExecutionType {
    Standard,
    Express,
}

#[derive(Debug, Clone)]
pub(crate) struct MapState {
    pub items_path: Path,
    pub item_reader: Option<ItemReader>,
    pub item_batcher: Option<ItemBatcher>,
    pub result_writer: Option<ResultWriter>,
    pub item_selector: Option<Template>,
    pub processor: StateMachine,
    pub mode: MapMode,
    /// STANDARD when not given (and for inline Maps, where it has no meaning).
    pub execution_type: ExecutionType,
    pub label: Option<String>,
    /// 0 = unlimited.
    pub max_concurrency: u64,
    pub tolerated_failure_count: Option<u64>,
    pub tolerated_failure_percentage: Option<f64>,
    pub result_selector: Option<Template>,
    pub result_path: ResultPath,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
}

#[derive(Debug, Clone)]
pub(crate) struct ChoiceState {
    pub choices: Vec<Branch>,
    pub default: Option<String>,
}

/// Fail's Error or Cause: literal, or a path into the raw input (ErrorPath/CausePath).
#[derive(Debug, Clone)]
pub(crate) enum FailText {
    Literal(String),
    Path(Path),
}

#[derive(Debug, Clone)]
pub(crate) struct FailState {
    pub error: Option<FailText>,
    pub cause: Option<FailText>,
}
