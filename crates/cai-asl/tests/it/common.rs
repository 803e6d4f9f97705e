//! Shared fakes: an invoker mapping resources to closures, a recording sleeper and a
//! recording observer.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cai_asl::{
    execute, Definition, Event, ExecOptions, Execution, Observer, TaskCall, TaskFailure,
    TaskInvoker,
};
use serde_json::Value;

type Handler = Box<dyn Fn(&TaskCall<'_>) -> Result<Value, TaskFailure> + Send + Sync>;

/// What a fake Task saw.
#[derive(Debug, Clone)]
pub struct Call {
    pub resource: String,
    pub state: String,
    pub input: Value,
    pub retry_count: u32,
    pub item: Option<usize>,
    pub timeout: Option<Duration>,
}

/// Maps resources to closures and records every call.
#[derive(Default)]
pub struct FakeInvoker {
    handlers: HashMap<String, Handler>,
    pub calls: Mutex<Vec<Call>>,
}

impl FakeInvoker {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn on(
        mut self,
        resource: &str,
        f: impl Fn(&TaskCall<'_>) -> Result<Value, TaskFailure> + Send + Sync + 'static,
    ) -> Self {
        self.handlers.insert(resource.to_string(), Box::new(f));
        self
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

impl TaskInvoker for FakeInvoker {
    fn invoke(&self, call: TaskCall<'_>) -> Result<Value, TaskFailure> {
        self.calls.lock().unwrap().push(Call {
            resource: call.resource.to_string(),
            state: call.state_name.to_string(),
            input: call.input.clone(),
            retry_count: call.retry_count,
            item: call.map_item_index,
            timeout: call.timeout,
        });
        match self.handlers.get(call.resource) {
            Some(h) => h(&call),
            None => Err(TaskFailure::new("NoHandler", call.resource)),
        }
    }
}

/// Records events as short strings.
#[derive(Default)]
pub struct Recorder {
    pub events: Mutex<Vec<String>>,
}

impl Observer for Recorder {
    fn event(&self, e: &Event<'_>) {
        let s = match e {
            Event::StateEntered {
                state,
                map_item_index,
            } => format!("enter {state} {map_item_index:?}"),
            Event::MapStarted { state, items } => format!("map {state} {items}"),
            Event::MapItemStarted { index } => format!("item-start {index}"),
            Event::MapItemSucceeded { index } => format!("item-ok {index}"),
            Event::MapItemFailed { index, error } => format!("item-fail {index} {}", error.error),
            Event::TaskRetrying {
                state,
                error,
                attempt,
                delay,
                ..
            } => {
                format!("retry {state} {} #{attempt} {delay:?}", error.error)
            }
            Event::Caught {
                state, error, next, ..
            } => format!("caught {state} {} -> {next}", error.error),
            _ => "other".to_string(),
        };
        self.events.lock().unwrap().push(s);
    }
}

/// Options whose sleeper records delays instead of sleeping.
pub fn recording_opts(seed: u64) -> (ExecOptions, Arc<Mutex<Vec<Duration>>>) {
    let delays = Arc::new(Mutex::new(Vec::new()));
    let d = delays.clone();
    let opts = ExecOptions {
        sleeper: Arc::new(move |delay| d.lock().unwrap().push(delay)),
        jitter_seed: seed,
        ..ExecOptions::default()
    };
    (opts, delays)
}

pub fn def(json: Value) -> Definition {
    Definition::from_value(json).unwrap_or_else(|e| panic!("definition refused: {e}"))
}

/// Runs with a recording sleeper and no observer.
pub fn run(json: Value, input: Value, invoker: &FakeInvoker) -> Execution {
    let (opts, _) = recording_opts(0);
    execute(&def(json), input, invoker, &cai_asl::NoopObserver, &opts)
}

pub fn output(e: &Execution) -> Value {
    assert!(e.error.is_none(), "execution failed: {:?}", e.error);
    e.output.clone().expect("output")
}

pub fn error(e: &Execution) -> TaskFailure {
    assert!(e.output.is_none(), "execution succeeded: {:?}", e.output);
    e.error.clone().expect("error")
}

pub fn ok(
    v: Value,
) -> impl Fn(&TaskCall<'_>) -> Result<Value, TaskFailure> + Send + Sync + 'static {
    move |_| Ok(v.clone())
}

pub fn echo() -> impl Fn(&TaskCall<'_>) -> Result<Value, TaskFailure> + Send + Sync + 'static {
    |c| Ok(c.input.clone())
}

pub fn fail(
    error: &'static str,
) -> impl Fn(&TaskCall<'_>) -> Result<Value, TaskFailure> + Send + Sync + 'static {
    move |_| Err(TaskFailure::new(error, "boom"))
}

/// A one-Task machine around the given Task fields.
pub fn one_task(task: Value) -> Value {
    let mut t = serde_json::json!({"Type": "Task", "Resource": "r", "End": true});
    for (k, v) in task.as_object().unwrap() {
        t[k] = v.clone();
    }
    serde_json::json!({"StartAt": "T", "States": {"T": t}})
}

/// Runs with the given options and no observer.
pub fn run_opts(json: Value, input: Value, invoker: &FakeInvoker, opts: &ExecOptions) -> Execution {
    execute(&def(json), input, invoker, &cai_asl::NoopObserver, opts)
}

/// Options with a recording sleeper and the given S3 stand-in.
pub fn s3_opts(s3: &Arc<cai_asl::MemoryS3>) -> ExecOptions {
    let (mut opts, _) = recording_opts(0);
    opts.s3 = Some(s3.clone());
    opts
}

/// A machine whose only state is a DISTRIBUTED Map (ExecutionType STANDARD) running the
/// Task `work` per item, with `map_fields` merged into the Map state.
pub fn distributed_map(map_fields: Value) -> Value {
    let mut m = serde_json::json!({
        "Type": "Map",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Work",
            "States": {"Work": {"Type": "Task", "Resource": "work", "End": true}}
        },
        "End": true
    });
    for (k, v) in map_fields.as_object().unwrap() {
        m[k] = v.clone();
    }
    serde_json::json!({"StartAt": "Map", "States": {"Map": m}})
}

/// The definition error for `json`, which must be refused.
pub fn refused(json: Value) -> cai_asl::DefinitionError {
    match Definition::from_value(json) {
        Ok(_) => panic!("definition was accepted"),
        Err(e) => e,
    }
}

/// Asserts the error names `field` of state `path` and is (un)supported as expected.
pub fn assert_refusal(e: &cai_asl::DefinitionError, path: &str, field: &str, unsupported: bool) {
    assert_eq!(e.path(), path, "{e}");
    assert_eq!(e.field(), Some(field), "{e}");
    assert_eq!(
        matches!(e, cai_asl::DefinitionError::Unsupported { .. }),
        unsupported,
        "{e}"
    );
    assert!(e.to_string().contains(field), "{e}");
}
