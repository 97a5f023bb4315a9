//! Per-invocation log capture, for the `Logs` of the host response.
//!
//! The Functions host writes each string in a response's `Logs` to the function's logger
//! (Application Insights, at Information level) and also reads the handler's stdout. Berth does
//! both: [`init_json_stdout`] writes JSON lines to stdout, and [`CaptureLayer`] copies every event
//! at `INFO` or above that happens while an invocation future runs inside [`capture`] into that
//! invocation's buffer. The buffer is task-local, so events from tasks the invocation spawns are
//! not captured (they still reach stdout).

use std::fmt::Write as _;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

tokio::task_local! {
    static BUFFER: Arc<Mutex<Vec<String>>>;
}

/// Most lines kept per invocation; later ones are counted, not kept.
pub const MAX_CAPTURED_LINES: usize = 500;

/// A `tracing` layer that copies events into the running invocation's `Logs`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CaptureLayer;

impl<S: Subscriber> Layer<S> for CaptureLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if *event.metadata().level() > Level::INFO {
            return;
        }
        let _ = BUFFER.try_with(|buffer| {
            let Ok(mut lines) = buffer.lock() else {
                return;
            };
            if lines.len() < MAX_CAPTURED_LINES {
                lines.push(format_event(event));
            }
        });
    }
}

/// Formats an event as one line: `WARN berth::engine: message key=value …`.
fn format_event(event: &Event<'_>) -> String {
    struct Fields {
        message: String,
        rest: String,
    }
    impl Visit for Fields {
        fn record_str(&mut self, field: &Field, value: &str) {
            if field.name() == "message" {
                self.message.push_str(value);
            } else {
                let _ = write!(self.rest, " {}={value}", field.name());
            }
        }
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                let _ = write!(self.message, "{value:?}");
            } else {
                let _ = write!(self.rest, " {}={value:?}", field.name());
            }
        }
    }
    let mut fields = Fields {
        message: String::new(),
        rest: String::new(),
    };
    event.record(&mut fields);
    let meta = event.metadata();
    format!(
        "{} {}: {}{}",
        meta.level(),
        meta.target(),
        fields.message,
        fields.rest
    )
}

/// Runs `future` with a fresh capture buffer and returns its output with the captured lines.
pub async fn capture<F: Future>(future: F) -> (F::Output, Vec<String>) {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let output = BUFFER.scope(buffer.clone(), future).await;
    let lines = buffer
        .lock()
        .map(|mut lines| std::mem::take(&mut *lines))
        .unwrap_or_default();
    (output, lines)
}

/// What `RUST_LOG` asks to be logged: `target=level` directives, comma-separated, and a bare
/// level for the rest (`info`, `berth=debug,warn`); `info` when unset or not understood. (No
/// span or field filters: `EnvFilter`'s regular expressions would cost the package half a MB.)
pub fn log_filter() -> tracing_subscriber::filter::Targets {
    std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse().ok())
        .unwrap_or_else(|| {
            tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO)
        })
}

/// Installs the process's subscriber: JSON lines on stdout (filtered by `RUST_LOG`, default
/// `info`) plus [`CaptureLayer`]. Call once, early in `main`; a second call returns an error.
pub fn init_json_stdout() -> Result<(), tracing_subscriber::util::TryInitError> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = log_filter();
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_writer(std::io::stdout)
                .with_filter(filter),
        )
        .with(CaptureLayer)
        .try_init()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt as _;

    #[tokio::test]
    async fn events_inside_capture_are_returned_and_others_are_not() {
        let subscriber = tracing_subscriber::registry().with(CaptureLayer);
        let _guard = tracing::subscriber::set_default(subscriber);
        tracing::info!("before");
        let (value, lines) = capture(async {
            tracing::info!(deployment.id = "d-1", "step ran");
            tracing::debug!("too fine to keep");
            tracing::warn!(attempt = 2, "slow");
            7
        })
        .await;
        tracing::info!("after");
        assert_eq!(value, 7);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("INFO "), "{}", lines[0]);
        assert!(
            lines[0].contains("step ran deployment.id=d-1"),
            "{}",
            lines[0]
        );
        assert!(lines[1].starts_with("WARN ") && lines[1].contains("slow attempt=2"));
    }

    #[tokio::test]
    async fn concurrent_invocations_keep_their_own_lines() {
        let subscriber = tracing_subscriber::registry().with(CaptureLayer);
        let _guard = tracing::subscriber::set_default(subscriber);
        let a = capture(async {
            tracing::info!("a1");
            tokio::task::yield_now().await;
            tracing::info!("a2");
        });
        let b = capture(async {
            tracing::info!("b1");
            tokio::task::yield_now().await;
            tracing::info!("b2");
        });
        let ((_, la), (_, lb)) = tokio::join!(a, b);
        assert!(la.iter().all(|l| l.contains(": a")), "{la:?}");
        assert!(lb.iter().all(|l| l.contains(": b")), "{lb:?}");
        assert_eq!((la.len(), lb.len()), (2, 2));
    }
}
