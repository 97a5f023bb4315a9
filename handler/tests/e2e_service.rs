//! End to end: the seed service (Postgres + nginx + a worker on one Azure Files share), healed
//! after one of its groups is deleted behind Berth's back, then torn down with its data kept. The
//! scenario lives in `common/scenarios.rs`, shared with the Functions-mode suite (which stops the
//! group instead).

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use common::scenarios::{self, Disruption, SEED_IMAGES};
use common::{Backend, Harness, Options};

async fn the_seed_service_survives_a_deleted_group_and_tears_down_cleanly(backend: Backend) {
    let Some(h) = Harness::try_with(Options {
        backend,
        images: Some(emulator::ImageMap::parse(SEED_IMAGES).unwrap()),
        ..Options::default()
    })
    .await
    else {
        return;
    };
    scenarios::the_seed_service_is_healed_and_torn_down(&h, Disruption::Delete).await;
    scenarios::assert_nothing_left(&h).await;
}

on_both_backends!(the_seed_service_survives_a_deleted_group_and_tears_down_cleanly);
