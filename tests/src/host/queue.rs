//! Queue delivery as the queue trigger does it: what happens to a message after an invocation.

use std::time::Duration;

use super::QueueSettings;

/// What the host does with a message after invoking the function with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Success: the message is deleted.
    Delete,
    /// Failure with deliveries left: visible again after `visibilityTimeout`.
    RetryAfter(Duration),
    /// Failure on the last allowed delivery, or received past it: copied to `<queue>-poison`
    /// and deleted.
    Poison,
}

/// The queue processor's rule (`QueueProcessor`): poison once `DequeueCount >= maxDequeueCount`
/// and the invocation failed.
pub fn disposition(settings: &QueueSettings, dequeue_count: u32, succeeded: bool) -> Disposition {
    if succeeded {
        Disposition::Delete
    } else if dequeue_count >= settings.max_dequeue_count {
        Disposition::Poison
    } else {
        Disposition::RetryAfter(settings.visibility_timeout)
    }
}

/// Whether a message is poisoned on receipt without invoking (`DequeueCount > maxDequeueCount`).
pub fn poison_on_receipt(settings: &QueueSettings, dequeue_count: u32) -> bool {
    dequeue_count > settings.max_dequeue_count
}

/// The poison queue's name, or `None` when the queue has none (it already ends in `-poison`, or
/// the longer name would exceed the 63 characters a queue name may have).
pub fn poison_queue_name(queue: &str) -> Option<String> {
    let name = format!("{queue}-poison");
    (!queue.ends_with("-poison") && name.len() <= 63).then_some(name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn settings() -> QueueSettings {
        QueueSettings {
            max_dequeue_count: 3,
            visibility_timeout: Duration::from_secs(2),
            batch_size: 8,
            message_encoding: "base64".into(),
        }
    }

    #[test]
    fn retries_then_poisons() {
        let s = settings();
        assert_eq!(disposition(&s, 1, true), Disposition::Delete);
        assert_eq!(disposition(&s, 3, true), Disposition::Delete);
        assert_eq!(
            disposition(&s, 1, false),
            Disposition::RetryAfter(Duration::from_secs(2))
        );
        assert_eq!(
            disposition(&s, 2, false),
            Disposition::RetryAfter(Duration::from_secs(2))
        );
        assert_eq!(disposition(&s, 3, false), Disposition::Poison);
        assert!(!poison_on_receipt(&s, 3));
        assert!(poison_on_receipt(&s, 4));
        assert_eq!(
            poison_queue_name("berth-steps").as_deref(),
            Some("berth-steps-poison")
        );
        assert_eq!(poison_queue_name("x-poison"), None);
        assert_eq!(poison_queue_name(&"q".repeat(60)), None);
    }
}
