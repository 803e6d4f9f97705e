//! Progress events, so the CLI can show what a long execution is doing.

use std::time::Duration;

use crate::TaskFailure;

/// Something that happened during an execution. Events come from several threads when
/// Maps run items concurrently.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A state was entered (one state transition).
    StateEntered {
        /// State name.
        state: &'a str,
        /// Innermost enclosing Map item, if any.
        map_item_index: Option<usize>,
    },
    /// A Map state resolved its items and is about to run them.
    MapStarted {
        /// Map state name.
        state: &'a str,
        /// Number of iterations or child executions (batches when the Map has an
        /// ItemBatcher); the `index` of the item events below counts these.
        items: usize,
    },
    /// A Map item (an iteration, or a child execution when distributed) started.
    MapItemStarted {
        /// Item index.
        index: usize,
    },
    /// A Map item finished successfully.
    MapItemSucceeded {
        /// Item index.
        index: usize,
    },
    /// A Map item failed.
    MapItemFailed {
        /// Item index.
        index: usize,
        /// Why it failed.
        error: &'a TaskFailure,
    },
    /// A Task (or Map) state failed and will be retried after `delay`.
    TaskRetrying {
        /// State name.
        state: &'a str,
        /// Innermost enclosing Map item, if any.
        map_item_index: Option<usize>,
        /// The error being retried.
        error: &'a TaskFailure,
        /// Which retry this is for the state entry: 1 for the first.
        attempt: u32,
        /// How long the interpreter waits before retrying.
        delay: Duration,
    },
    /// A Catch handled a failure and the execution moves on to `next`.
    Caught {
        /// State name.
        state: &'a str,
        /// Innermost enclosing Map item, if any.
        map_item_index: Option<usize>,
        /// The caught error.
        error: &'a TaskFailure,
        /// The catcher's Next state.
        next: &'a str,
    },
}

/// Receives [`Event`]s; must be cheap and thread-safe because Task threads call it.
pub trait Observer: Send + Sync {
    /// Called once per event, on whatever thread produced it.
    fn event(&self, e: &Event<'_>);
}

/// An observer that ignores everything, for callers that only want the result.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopObserver;

impl Observer for NoopObserver {
    fn event(&self, _e: &Event<'_>) {}
}
