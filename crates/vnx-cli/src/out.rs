//! The one place that writes a command's output: stdout through
//! [`outln!`] / [`out!`] (or an [`Out`] for many lines), stderr through
//! [`errln!`].
//!
//! `println!` panics when stdout is a closed pipe (`vnx ledger show | head`)
//! or a full device (`> /dev/full`). Here a failed write is an
//! [`OutputError`] that the command returns with `?`; `main` ends quietly
//! with exit status 141 (128 + SIGPIPE, what a shell shows for a process a
//! closed pipe killed) for a closed pipe, and reports
//! `cannot write output: <reason>` with exit status 2 otherwise.

use std::fmt;
use std::io::{BufWriter, StdoutLock, Write as _};

/// Exit status after stdout turned out to be a closed pipe: 128 + SIGPIPE (13).
pub const CLOSED_PIPE_EXIT: u8 = 141;

/// Writing the command's output failed.
#[derive(Debug)]
pub struct OutputError(pub std::io::Error);

impl OutputError {
    /// Whether the reader went away (a closed pipe): not worth a message.
    pub fn is_closed_pipe(&self) -> bool {
        self.0.kind() == std::io::ErrorKind::BrokenPipe
    }
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot write output: {}", os_reason(&self.0))
    }
}

impl std::error::Error for OutputError {}

/// `No space left on device (os error 28)` → `No space left on device`.
pub fn os_reason(err: &std::io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_owned(),
        _ => text,
    }
}

/// Buffered stdout for commands that print many lines; [`Out::finish`]
/// flushes and reports what the buffer hid.
pub struct Out {
    inner: BufWriter<StdoutLock<'static>>,
}

impl Out {
    /// Locks stdout for this command.
    pub fn new() -> Out {
        Out {
            inner: BufWriter::with_capacity(64 * 1024, std::io::stdout().lock()),
        }
    }

    /// Writes formatted text.
    ///
    /// # Errors
    /// [`OutputError`] when stdout cannot be written.
    pub fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> Result<(), OutputError> {
        self.inner.write_fmt(args).map_err(OutputError)
    }

    /// Flushes what is buffered.
    ///
    /// # Errors
    /// [`OutputError`] when stdout cannot be written.
    pub fn finish(mut self) -> Result<(), OutputError> {
        self.inner.flush().map_err(OutputError)
    }
}

/// Writes `args` to stdout and flushes (so a long-running command's lines
/// are seen at once, and an error surfaces here rather than at exit).
///
/// # Errors
/// [`OutputError`] when stdout cannot be written.
pub fn print(args: fmt::Arguments<'_>) -> Result<(), OutputError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_fmt(args)
        .and_then(|()| stdout.flush())
        .map_err(OutputError)
}

/// Flushes stdout (what a command left in std's line buffer).
///
/// # Errors
/// [`OutputError`] when stdout cannot be written.
pub fn flush() -> Result<(), OutputError> {
    std::io::stdout().lock().flush().map_err(OutputError)
}

/// Writes `args` to stderr, ignoring failure: stderr is where failures
/// would be reported, and a closed stderr must not stop the command (its
/// receipt, its exit code).
pub fn eprint(args: fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// `println!` that returns `Result<(), OutputError>` instead of panicking.
#[macro_export]
macro_rules! outln {
    () => { $crate::out::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::out::print(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` that returns `Result<(), OutputError>` instead of panicking.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::out::print(format_args!($($arg)*)) };
}

/// `eprintln!` that never panics (see [`eprint`]).
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => { $crate::out::eprint(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Whether a panic payload is std's `failed printing to stdout: …` (a
/// `println!` somewhere that has not moved to this module yet), with the
/// OS reason after the colon.
pub fn print_panic_reason(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())?;
    text.strip_prefix("failed printing to stdout: ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn reasons_lose_the_os_error_number() {
        let e = std::io::Error::from_raw_os_error(28);
        assert_eq!(super::os_reason(&e), "No space left on device");
        let e = super::OutputError(std::io::Error::from_raw_os_error(32));
        assert!(e.is_closed_pipe());
        assert_eq!(e.to_string(), "cannot write output: Broken pipe");
    }

    #[test]
    fn print_panics_are_recognised() {
        let payload: Box<dyn std::any::Any + Send> =
            Box::new("failed printing to stdout: Broken pipe (os error 32)".to_owned());
        assert_eq!(
            super::print_panic_reason(payload.as_ref()),
            Some("Broken pipe (os error 32)")
        );
        let other: Box<dyn std::any::Any + Send> = Box::new("index out of bounds");
        assert_eq!(super::print_panic_reason(other.as_ref()), None);
    }
}
