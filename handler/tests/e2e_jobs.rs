//! End to end through the HTTP API, against the emulator running real processes: jobs. The
//! scenarios live in `common/scenarios.rs`, shared with the Functions-mode suite.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use common::scenarios;
use common::{Backend, Harness};

/// Declares a job scenario of `common::scenarios` on both backends, on a harness of its own that
/// is left with no group and no process.
macro_rules! job_scenario {
    ($scenario:ident) => {
        async fn $scenario(backend: Backend) {
            let Some(h) = Harness::on(backend).await else {
                return;
            };
            scenarios::$scenario(&h).await;
            scenarios::assert_nothing_left(&h).await;
        }

        on_both_backends!($scenario);
    };
}

job_scenario!(a_job_writes_its_share_and_succeeds_with_logs_saved_and_group_deleted);
job_scenario!(exit_three_is_retried_then_fails);
job_scenario!(a_timeout_kills_the_process_tree_and_ends_timed_out);
job_scenario!(completion_by_callback_succeeds_and_stops_the_container);
job_scenario!(a_foreign_or_wrong_token_is_refused);
job_scenario!(the_same_spec_twice_is_one_deployment_and_a_different_one_conflicts);
job_scenario!(bad_specs_get_400_naming_the_field);
job_scenario!(the_example_pipeline_runs_its_stages_in_order_and_passes_outputs_on);
job_scenario!(an_instances_callback_token_opens_that_instance_alone);

/// A container gets a W3C `TRACEPARENT` naming its deployment's trace, so its own telemetry joins
/// the handler's records of that deployment (`trace.id` on every step).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_gets_its_deployments_traceparent() {
    let h = Harness::start().await;
    let id = h
        .start_deployment(&common::job(
            "traced-1",
            "printf %s \"$TRACEPARENT\" > /mnt/share/traceparent",
        ))
        .await;
    let done = h.wait_done(&id).await;
    assert_eq!(done["runtimeStatus"], "Succeeded", "{done}");
    let group = done["groups"][0]["aciName"].as_str().unwrap();
    let seen = std::fs::read_to_string(h.share("teststore", "data").join("traceparent")).unwrap();
    assert_eq!(seen, berth::trace::traceparent(&id, group));
    assert!(seen.starts_with(&format!("00-{}-", berth::trace::trace_id(&id))));
}
