//! Typed, error-reporting access to one JSON object of the definition (a state, a
//! retrier, a choice rule…), so every refusal names the state path and the field.

use serde_json::{Map, Value};

use crate::path::{Path, Root};
use crate::template::Template;
use crate::DefinitionError;

/// Fields that exist in the States Language but that this interpreter refuses, with
/// the reason given to the user.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("HeartbeatSeconds", "task heartbeats are not implemented"),
    (
        "HeartbeatSecondsPath",
        "task heartbeats are not implemented",
    ),
    (
        "TimeoutSecondsPath",
        "values from *Path fields are not implemented; use TimeoutSeconds",
    ),
    (
        "MaxConcurrencyPath",
        "values from *Path fields are not implemented; use MaxConcurrency",
    ),
    (
        "ToleratedFailurePercentagePath",
        "values from *Path fields are not implemented; use ToleratedFailurePercentage",
    ),
    (
        "ToleratedFailureCountPath",
        "values from *Path fields are not implemented; use ToleratedFailureCount",
    ),
    (
        "Credentials",
        "cross-account task credentials are not implemented",
    ),
    ("Arguments", "JSONata is not implemented; use Parameters"),
    (
        "Output",
        "JSONata is not implemented; use ResultSelector, ResultPath and OutputPath",
    ),
    ("Assign", "workflow variables are not implemented"),
    ("Items", "JSONata is not implemented; use ItemsPath"),
    (
        "Condition",
        "JSONata is not implemented; use Variable and a comparison operator",
    ),
    ("Branches", "Parallel states are not implemented"),
    ("Seconds", "Wait states are not implemented"),
    ("SecondsPath", "Wait states are not implemented"),
    ("Timestamp", "Wait states are not implemented"),
    ("TimestampPath", "Wait states are not implemented"),
];

/// One JSON object of the definition plus where it sits.
pub(crate) struct Fields<'a> {
    path: &'a str,
    prefix: String,
    obj: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    /// `name` is the object's own field name inside the state (e.g. `Retry[0]`), empty
    /// for the state object itself.
    pub(crate) fn new(path: &'a str, name: &str, v: &'a Value) -> Result<Self, DefinitionError> {
        let Some(obj) = v.as_object() else {
            return Err(DefinitionError::Invalid {
                path: path.to_string(),
                field: if name.is_empty() {
                    "(state)".into()
                } else {
                    name.to_string()
                },
                message: "must be a JSON object".into(),
            });
        };
        Ok(Fields {
            path,
            prefix: if name.is_empty() {
                String::new()
            } else {
                format!("{name}.")
            },
            obj,
        })
    }

    pub(crate) fn path(&self) -> &'a str {
        self.path
    }

    /// The full field name (with this object's prefix) for errors.
    pub(crate) fn name(&self, f: &str) -> String {
        format!("{}{f}", self.prefix)
    }

    pub(crate) fn invalid(&self, f: &str, message: impl Into<String>) -> DefinitionError {
        DefinitionError::Invalid {
            path: self.path.to_string(),
            field: self.name(f),
            message: message.into(),
        }
    }

    pub(crate) fn unsupported(&self, f: &str, message: impl Into<String>) -> DefinitionError {
        DefinitionError::Unsupported {
            path: self.path.to_string(),
            field: self.name(f),
            message: message.into(),
        }
    }

    /// Refuses any field outside `allowed`; `what` completes "is not a field of …".
    /// Also checks `QueryLanguage` when allowed.
    pub(crate) fn check_allowed(
        &self,
        what: &str,
        allowed: &[&str],
    ) -> Result<(), DefinitionError> {
        for key in self.obj.keys() {
            if allowed.contains(&key.as_str()) {
                continue;
            }
            if let Some((_, why)) = UNSUPPORTED.iter().find(|(f, _)| f == key) {
                return Err(self.unsupported(key, *why));
            }
            return Err(self.invalid(key, format!("is not a field of {what}")));
        }
        if let Some(v) = self.get("QueryLanguage") {
            match v.as_str() {
                Some("JSONPath") => {}
                Some("JSONata") => {
                    return Err(self.unsupported("QueryLanguage", "only JSONPath is implemented"))
                }
                _ => {
                    return Err(self.invalid("QueryLanguage", "must be \"JSONPath\" or \"JSONata\""))
                }
            }
        }
        Ok(())
    }

    /// The raw object, for callers that must look at every key.
    pub(crate) fn get_object(&self) -> &'a Map<String, Value> {
        self.obj
    }

    pub(crate) fn has(&self, f: &str) -> bool {
        self.obj.contains_key(f)
    }

    pub(crate) fn get(&self, f: &str) -> Option<&'a Value> {
        self.obj.get(f)
    }

    pub(crate) fn str(&self, f: &str) -> Result<Option<&'a str>, DefinitionError> {
        match self.get(f) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.invalid(f, "must be a string")),
        }
    }

    pub(crate) fn req_str(&self, f: &str) -> Result<&'a str, DefinitionError> {
        self.str(f)?.ok_or_else(|| self.invalid(f, "is required"))
    }

    pub(crate) fn bool(&self, f: &str) -> Result<Option<bool>, DefinitionError> {
        match self.get(f) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.invalid(f, "must be true or false")),
        }
    }

    /// A non-negative integer no smaller than `min`.
    pub(crate) fn uint(&self, f: &str, min: u64) -> Result<Option<u64>, DefinitionError> {
        match self.get(f) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n >= min => Ok(Some(n)),
                _ => Err(self.invalid(f, format!("must be an integer >= {min}"))),
            },
        }
    }

    /// Any JSON number inside `min..=max`.
    pub(crate) fn number(
        &self,
        f: &str,
        min: f64,
        max: f64,
    ) -> Result<Option<f64>, DefinitionError> {
        match self.get(f) {
            None => Ok(None),
            Some(v) => match v.as_f64() {
                Some(n) if n >= min && n <= max => Ok(Some(n)),
                _ if max.is_finite() => {
                    Err(self.invalid(f, format!("must be a number from {min} to {max}")))
                }
                _ => Err(self.invalid(f, format!("must be a number >= {min}"))),
            },
        }
    }

    /// A reference path string; `$$` paths only when `allow_context`.
    pub(crate) fn path_str(
        &self,
        f: &str,
        text: &str,
        allow_context: bool,
    ) -> Result<Path, DefinitionError> {
        let path = Path::parse(text).map_err(|m| {
            if m.contains("does not support") {
                self.unsupported(f, m)
            } else {
                self.invalid(f, m)
            }
        })?;
        if path.root() == Root::Context && !allow_context {
            return Err(self.invalid(f, "cannot read the context object (`$$`)"));
        }
        Ok(path)
    }

    /// A required-or-optional path field whose value must be a string.
    pub(crate) fn opt_path(
        &self,
        f: &str,
        allow_context: bool,
    ) -> Result<Option<Path>, DefinitionError> {
        match self.str(f)? {
            None => Ok(None),
            Some(text) => self.path_str(f, text, allow_context).map(Some),
        }
    }

    /// A payload template field (Parameters, ItemSelector, ResultSelector).
    pub(crate) fn template(
        &self,
        f: &str,
        must_be_object: bool,
    ) -> Result<Option<Template>, DefinitionError> {
        let Some(v) = self.get(f) else {
            return Ok(None);
        };
        if must_be_object && !v.is_object() {
            return Err(self.invalid(f, "must be a JSON object"));
        }
        Template::compile(v, &self.name(f)).map(Some).map_err(|e| {
            let path = self.path.to_string();
            if e.unsupported {
                DefinitionError::Unsupported {
                    path,
                    field: e.field,
                    message: e.message,
                }
            } else {
                DefinitionError::Invalid {
                    path,
                    field: e.field,
                    message: e.message,
                }
            }
        })
    }
}
