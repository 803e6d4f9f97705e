//! The context object (`$$`): facts about the execution and the current state that
//! paths may read.

use std::cell::OnceCell;

use serde_json::{json, Value};

/// Facts about one execution (the parent, or a distributed Map's child).
#[derive(Debug, Clone)]
pub(crate) struct ExecInfo {
    pub id: String,
    pub name: String,
    pub input: Value,
    pub start_time: String,
    pub state_machine_id: String,
    pub state_machine_name: String,
}

/// Facts about the state being run, from which `$$` is built.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StateCtx<'a> {
    pub exec: &'a ExecInfo,
    pub state_name: &'a str,
    pub entered_time: &'a str,
    pub retry_count: u32,
    /// `$$.Map.Item` while evaluating a Map's ItemSelector.
    pub item: Option<(usize, &'a Value)>,
}

impl StateCtx<'_> {
    fn to_value(self) -> Value {
        let mut ctx = json!({
            "Execution": {
                "Id": self.exec.id,
                "Input": self.exec.input,
                "Name": self.exec.name,
                "StartTime": self.exec.start_time,
                "RedriveCount": 0,
            },
            "State": {
                "EnteredTime": self.entered_time,
                "Name": self.state_name,
                "RetryCount": self.retry_count,
            },
            "StateMachine": {
                "Id": self.exec.state_machine_id,
                "Name": self.exec.state_machine_name,
            },
        });
        if let Some((index, value)) = self.item {
            ctx["Map"] = json!({"Item": {"Index": index, "Value": value}});
        }
        ctx
    }
}

/// The `$$` document, built only if some path actually reads it (it embeds the whole
/// execution input, which can be large).
pub(crate) struct LazyContext<'a> {
    state: StateCtx<'a>,
    doc: OnceCell<Value>,
}

impl<'a> LazyContext<'a> {
    pub(crate) fn new(state: StateCtx<'a>) -> Self {
        LazyContext {
            state,
            doc: OnceCell::new(),
        }
    }

    pub(crate) fn value(&self) -> &Value {
        self.doc.get_or_init(|| self.state.to_value())
    }
}
