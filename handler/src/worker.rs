//! The step worker of `dev` and `serve`: receives step messages and runs them, many at once.
//! (In Functions, the host's queue trigger does this part.)

use std::sync::Arc;

use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::driver::{Driver, StepOutcome};
use crate::engine::{Millis, policy};
use crate::store::{Delivery, Scheduled, StepMessage, Steps};

/// Runs steps for ever, at most `concurrency` at a time; a received message stays hidden from
/// other workers for `lease_ms` while its step runs.
pub async fn run(driver: Driver, steps: Arc<dyn Steps>, concurrency: usize, lease_ms: Millis) {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    loop {
        let free = permits.available_permits();
        if free == 0 {
            // Wait for a step to finish before asking the queue for more.
            drop(permits.clone().acquire_owned().await);
            continue;
        }
        let deliveries = match steps.receive(free.min(32), lease_ms).await {
            Ok(deliveries) => deliveries,
            Err(e) => {
                tracing::warn!(error = %e, "receiving steps failed");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        if deliveries.is_empty() {
            steps.wait(policy::WORKER_IDLE_WAIT_MS).await;
            continue;
        }
        for delivery in deliveries {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let (driver, steps) = (driver.clone(), steps.clone());
            tokio::spawn(async move {
                handle(&driver, steps.as_ref(), delivery).await;
                drop(permit);
            });
        }
    }
}

/// Runs one delivery's step and completes the message when the step is done.
pub async fn handle(driver: &Driver, steps: &dyn Steps, delivery: Delivery) {
    let Some(message) = delivery.message.clone() else {
        // Left in the queue: after a few deliveries it goes to the poison table.
        tracing::warn!(step.text = %delivery.text.chars().take(200).collect::<String>(), "unreadable step message");
        return;
    };
    let span = step_span(&message, delivery.dequeue_count);
    run_step(driver, steps, &delivery, message)
        .instrument(span)
        .await;
}

/// The span of one step, in every mode: its records carry the deployment's id and trace id.
pub fn step_span(message: &StepMessage, dequeue_count: u32) -> tracing::Span {
    tracing::info_span!("step", deployment.id = %message.id, trace.id = %crate::trace::trace_id(&message.id), step.seq = message.seq, step.dequeue_count = dequeue_count)
}

/// Runs a step message's step and completes, reschedules or leaves its delivery.
async fn run_step(driver: &Driver, steps: &dyn Steps, delivery: &Delivery, message: StepMessage) {
    match crate::metrics::timed_step(driver.step(&message)).await {
        Ok(StepOutcome::Early { at }) => {
            if steps.send(&Scheduled { message, at }).await.is_ok() {
                let _ = steps.complete(delivery).await;
            }
        }
        Ok(outcome) => {
            if outcome == StepOutcome::Stale {
                tracing::debug!("stale step message dropped");
            }
            if let Err(e) = steps.complete(delivery).await {
                tracing::warn!(error = %e, "completing a step message failed; it will be delivered again");
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, transient = e.is_transient(), "step failed; the message will be delivered again")
        }
    }
}
