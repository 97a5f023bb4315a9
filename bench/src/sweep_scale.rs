//! Item 6: the sweep's time with 1,000 and with 100,000 finished deployments in the store. The
//! store is filled with copies of a real finished deployment (each saved as Berth saves one: a
//! create, then the `Done` save), so the sweep sees history it must not walk.

use std::time::Instant;

use berth::checkpoint::Deployments;
use berth::engine::Deployment;
use berth::store::{Scheduled, StepMessage};
use serde::Serialize;

use crate::berth::Berth;
use crate::load::median;

/// The sweep's time at one store size.
#[derive(Clone, Debug, Serialize)]
pub struct SweepScale {
    pub finished: usize,
    pub sweep_s: f64,
    pub fill_s: f64,
}

/// Adds finished deployments `from..to` (copies of `template`) to Berth's store.
async fn fill(berth: &Berth, template: &Deployment, from: usize, to: usize) -> anyhow::Result<()> {
    let store = &berth.runtime.sweep.store;
    let now = berth.runtime.driver.now();
    for i in from..to {
        let mut d = template.clone();
        d.id = format!("history-{i}");
        d.created = now - 60_000;
        d.updated = now - 30_000;
        let first = Scheduled {
            message: StepMessage {
                id: d.id.clone(),
                seq: 0,
            },
            at: now + 86_400_000,
        };
        let mut pending = d.clone();
        pending.phase = berth::engine::Phase::Pending;
        pending.status = berth::engine::RuntimeStatus::Pending;
        pending.wake = Some(berth::engine::state::Wake {
            at: now + 86_400_000,
            seq: 0,
        });
        let version = store.create(&pending, &first).await?;
        store.save(&d, &version, None).await?;
    }
    Ok(())
}

/// Fills the store up to each size in `sizes` (ascending) and times `repeats` sweeps at each.
pub async fn measure(
    berth: &Berth,
    template: &Deployment,
    sizes: &[usize],
    repeats: usize,
) -> anyhow::Result<Vec<SweepScale>> {
    let mut out = Vec::new();
    let mut filled = 0;
    for &size in sizes {
        let started = Instant::now();
        fill(berth, template, filled, size).await?;
        let fill_s = started.elapsed().as_secs_f64();
        filled = size;
        let mut times = Vec::new();
        for _ in 0..repeats {
            let started = Instant::now();
            let report = berth.runtime.sweep.run_once().await;
            times.push(started.elapsed().as_secs_f64());
            if !report.errors.is_empty() {
                anyhow::bail!("the sweep reported errors: {:?}", report.errors);
            }
        }
        out.push(SweepScale {
            finished: size,
            sweep_s: median(&times),
            fill_s,
        });
    }
    Ok(out)
}
