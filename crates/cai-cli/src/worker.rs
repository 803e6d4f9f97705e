//! `cai worker`: a warm worker for the local engine. Serves invocation after invocation of
//! the workflow's handlers, one JSON request per line on stdin and one JSON response per
//! line on its response pipe (see `cai_local::worker::protocol`), keeping the handler context
//! (store clients, the loaded model) between them as a warm Lambda container does. Exits at
//! the end of stdin. A panic or crash ends the worker; the engine reports that invocation as
//! `Runtime.ExitError` and starts a new worker for the next one. Not for people; hidden.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::FromRawFd;
use std::process::ExitCode;

use cai_local::worker::protocol::{Request, Response, MAX_LINE_BYTES};
use cai_workflow::handlers::{Handler, HandlerContext};
use cai_workflow::HandlerError;

/// Serves requests from stdin until it closes.
pub fn run() -> ExitCode {
    crate::common::exit_with_parent();
    let mut responses = match response_pipe() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cai worker: cannot set up its response pipe: {e}");
            return ExitCode::from(2);
        }
    };
    // The context every invocation shares, or why there is none (then every invocation
    // answers that error, as a handler would).
    let context = crate::handler::context_from_env();
    let mut stdin = BufReader::new(std::io::stdin().lock());
    loop {
        let mut line = String::new();
        match (&mut stdin)
            .take(MAX_LINE_BYTES as u64)
            .read_line(&mut line)
        {
            Ok(0) => return ExitCode::SUCCESS,
            Ok(_) => {}
            Err(e) => {
                eprintln!("error: cai worker: reading a request: {e}");
                return ExitCode::from(2);
            }
        }
        let response = match serve(&context, &line) {
            Ok(v) => Response::Ok(v),
            Err(e) => {
                eprintln!("{}: {}", e.error_type, e.error_message);
                Response::Error(serde_json::to_value(&e).unwrap_or_default())
            }
        };
        let mut text = serde_json::to_vec(&response).unwrap_or_default();
        text.push(b'\n');
        if responses
            .write_all(&text)
            .and_then(|()| responses.flush())
            .is_err()
        {
            return ExitCode::from(2);
        }
    }
}

/// Keeps the original stdout for responses and points fd 1 at stderr, so nothing a library
/// prints can ever be mistaken for a response.
fn response_pipe() -> std::io::Result<File> {
    // SAFETY: dup and dup2 on the process's own standard descriptors; the new descriptor is
    // owned by the returned File alone.
    unsafe {
        let fd = libc::dup(1);
        if fd < 0 || libc::dup2(2, 1) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(File::from_raw_fd(fd))
    }
}

fn serve(
    context: &Result<HandlerContext, HandlerError>,
    line: &str,
) -> Result<serde_json::Value, HandlerError> {
    let request: Request = serde_json::from_str(line.trim_end())
        .map_err(|e| HandlerError::input(format!("the request is not one: {e}")))?;
    let handler = Handler::from_name(&request.handler).ok_or_else(|| {
        HandlerError::input(format!(
            "unknown handler {:?}: expected init, infer, failure or summarize",
            request.handler
        ))
    })?;
    let ctx = context.as_ref().map_err(Clone::clone)?;
    handler.call(ctx, request.event)
}
