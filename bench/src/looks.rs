//! Detection under the ARM read budget: 1,000 live `completion: exit` jobs whose containers run
//! for a stated mix of times (the emulator's `--instant --simulate-sleeps`: a `sleep N` container
//! runs N seconds without a process), at the default budget of 20 reads/s. Measured per job: the
//! delay from its container's exit (the emulator's finish time, as Berth read it) to its `Done`
//! checkpoint (the `updated` time of that save). Once with learned looks (`BERTH_LOOKS=learned`,
//! the repeated specs' run times known from earlier runs), once with round-robin looks
//! (`BERTH_LOOKS=round-robin`), each on a fresh emulator and a fresh SQLite store.
//!
//! The mix ([`Mix`]): 70 % of the jobs repeat 7 group specs (`sleep 60` to `sleep 150`, 15 s
//! apart, equally many each), whose run times the store knows from 5 earlier runs each (recorded
//! through `RunTimes` before the run, as those runs would have left them); 30 % are specs never
//! seen (`sleep` 60 s to 150 s, each its own), which learned looks find by the default back-off.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use berth::clock::SystemClock;
use berth::engine::{LookPlan, Millis, StartOptions, policy, start};
use berth::spec::{Format, parse};
use berth::store::RunTimes;
use berth::store::sqlite::SqliteStore;
use futures::StreamExt;
use serde::Serialize;
use serde_json::json;

use crate::berth::{Berth, Storage, settings};
use crate::load::quantile;
use crate::procs::Emulator;
use crate::report::num;

/// The jobs of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Mix {
    pub jobs: usize,
    /// Run times of the repeated specs, seconds; the jobs cycle through them.
    pub repeated_s: Vec<f64>,
    /// Share of the jobs that repeat a known spec.
    pub repeated_share: f64,
    /// Earlier runs recorded for each repeated spec before the run.
    pub known_runs: usize,
    /// New specs' run times are spread evenly over this range, seconds.
    pub new_range_s: (f64, f64),
    /// The ARM read budget, reads per second.
    pub reads_per_second: f64,
}

impl Mix {
    /// The stated mix at `jobs` jobs and `reads_per_second`.
    pub fn stated(jobs: usize, reads_per_second: f64) -> Mix {
        Mix {
            jobs,
            repeated_s: (0..7).map(|i| 60.0 + 15.0 * f64::from(i)).collect(),
            repeated_share: 0.7,
            known_runs: 5,
            new_range_s: (60.0, 150.0),
            reads_per_second,
        }
    }

    /// Job `i`'s run time in seconds, and whether its spec is a repeated one.
    fn job(&self, i: usize) -> (f64, bool) {
        let repeated = (self.jobs as f64 * self.repeated_share).round() as usize;
        if i < repeated {
            (self.repeated_s[i % self.repeated_s.len()], true)
        } else {
            let new = (self.jobs - repeated).max(1) as f64;
            let (from, to) = self.new_range_s;
            // Distinct (0.3 s apart at 1,000 jobs), so every new job is a spec of its own.
            let at = from + (to - from) * (i - repeated) as f64 / new;
            ((at * 1000.0).round() / 1000.0, false)
        }
    }
}

/// One job's spec: a one-container group that runs `seconds`, completed by its exit.
fn spec(id: &str, seconds: f64) -> serde_json::Value {
    json!({
        "id": id,
        "completion": "exit",
        "captureLogs": false,
        "groups": [{ "name": "work", "properties": { "containers": [{ "name": "main", "properties": {
            "image": "busybox", "command": ["sleep", format!("{seconds}")],
            "resources": { "requests": { "cpu": 0.5, "memoryInGB": 0.5 } } } }] } }]
    })
}

/// What one run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Detection {
    pub looks: String,
    pub jobs: usize,
    pub p50_s: f64,
    pub p95_s: f64,
    pub max_s: f64,
    /// p50 of the jobs of repeated specs and of new specs.
    pub repeated_p50_s: f64,
    pub new_p50_s: f64,
    /// ARM group reads (creates' looks included) per job.
    pub reads_per_job: f64,
    pub wall_s: f64,
    /// Each job's looks, for finding where detection time goes.
    pub traces: Vec<JobTrace>,
}

/// One job's looks, in milliseconds after its create (as Berth recorded it).
#[derive(Clone, Debug, Serialize)]
pub struct JobTrace {
    pub id: String,
    pub repeated: bool,
    pub run_s: f64,
    /// The exit window of its look plan (from, to, gap), when it had an estimate.
    pub window: Option<(Millis, Millis, Millis)>,
    /// Its container's exit, and its `Done` save.
    pub exit: Millis,
    pub done: Millis,
    /// The reads of its group (each look that read it), and when each save meant to look next
    /// (a look deferred or yielded shows as a later `next_look` without a read).
    pub reads: Vec<Millis>,
    pub next_looks: Vec<Millis>,
}

impl Detection {
    /// Its row in the item's table.
    pub fn cells(&self) -> Vec<String> {
        let mut cells = vec![self.looks.clone()];
        for value in [
            self.p50_s,
            self.p95_s,
            self.max_s,
            self.repeated_p50_s,
            self.new_p50_s,
            self.reads_per_job,
        ] {
            cells.push(num(value, 1));
        }
        cells.push(num(self.wall_s, 0));
        cells
    }
}

/// The two runs and their ratio.
#[derive(Clone, Debug, Serialize)]
pub struct Looks {
    pub mix: Mix,
    pub learned: Detection,
    pub round_robin: Detection,
    /// `learned.p50_s / round_robin.p50_s`.
    pub p50_vs_round_robin: f64,
}

/// Runs both and compares.
pub async fn measure(mix: Mix) -> anyhow::Result<Looks> {
    let learned = run(&mix, "learned").await?;
    let round_robin = run(&mix, "round-robin").await?;
    Ok(Looks {
        p50_vs_round_robin: learned.p50_s / round_robin.p50_s,
        mix,
        learned,
        round_robin,
    })
}

/// One run with `BERTH_LOOKS=looks`.
async fn run(mix: &Mix, looks: &str) -> anyhow::Result<Detection> {
    // Cores enough for every job at once (0.5 each): at the emulator's default quota (100 cores,
    // as ACI's) Berth's admission would hold all but 200 of them as `Pending`.
    let cores = (mix.jobs as f64).max(100.0).to_string();
    let emulator = Emulator::start(&[
        "--instant",
        "--simulate-sleeps",
        "--cores-per-region",
        &cores,
        "--groups-per-region",
        &cores,
    ])
    .await?;
    let dir = tempfile::tempdir()?;
    let storage = Storage::Sqlite(dir.path().to_owned());
    let extra = [
        ("BERTH_LOOKS", looks.to_owned()),
        (
            "BERTH_ARM_READS_PER_SECOND",
            mix.reads_per_second.to_string(),
        ),
    ];
    let berth = Berth::start(settings(&storage, &emulator.endpoint, "", &extra)).await?;
    if looks == "learned" {
        seed(mix, &dir.path().join("berth.db")).await?;
    }
    let driver = berth.runtime.driver.clone();
    berth.watched.trace();
    let started = Instant::now();
    let reads_before = berth.arm_reads();
    let submits = futures::stream::iter(0..mix.jobs).map(|i| {
        let (driver, watched) = (driver.clone(), berth.watched.clone());
        async move {
            let id = format!("looks-{i}");
            let (seconds, repeated) = mix.job(i);
            let text = spec(&id, seconds).to_string();
            let parsed = parse(text.as_bytes(), Format::Json, || unreachable!())
                .map_err(|e| anyhow::anyhow!("spec {id}: {e:?}"))?;
            let done = watched.done(&id);
            let id_seconds = (id.clone(), seconds);
            driver
                .submit(parsed, "http://127.0.0.1:9".into())
                .await
                .with_context(|| format!("submit {id}"))?;
            anyhow::Ok((done, repeated, id_seconds))
        }
    });
    let waiting: Vec<_> = submits.buffer_unordered(32).collect().await;
    let limit = Duration::from_secs_f64(mix.new_range_s.1.max(150.0) + 900.0);
    let mut delays = Vec::new();
    let mut by_kind = (Vec::new(), Vec::new());
    let mut traces = Vec::new();
    for waiter in waiting {
        let (done, repeated, (id, run_s)) = waiter?;
        let (_, d) = tokio::time::timeout(limit, done)
            .await
            .context("a job did not finish in time")?
            .context("the store was dropped")?;
        let finish: Option<Millis> = d
            .instances
            .iter()
            .filter_map(|i| i.observed.as_ref())
            .flat_map(|o| o.containers.iter().filter_map(|c| c.finish))
            .max();
        let Some(finish) = finish else {
            bail!("{} ended without an exit seen: {:?}", d.id, d.outcome);
        };
        let delay = (d.updated - finish) as f64 / 1000.0;
        let inst = d.instances.first().context("a job without an instance")?;
        let created = inst.created.unwrap_or(0);
        let saves = berth.watched.saves(&id);
        let mut reads: Vec<Millis> = saves
            .iter()
            .filter_map(|s| s.observed_at)
            .map(|at| at - created)
            .collect();
        reads.dedup();
        let mut next_looks: Vec<Millis> = saves
            .iter()
            .filter_map(|s| s.next_look)
            .map(|at| at - created)
            .collect();
        next_looks.dedup();
        traces.push(JobTrace {
            id,
            repeated,
            run_s,
            window: match inst.look_plan {
                Some(LookPlan::Expect(estimate)) => Some(policy::exit_window(&estimate)),
                _ => None,
            },
            exit: finish - created,
            done: d.updated - created,
            reads,
            next_looks,
        });
        delays.push(delay);
        if repeated {
            by_kind.0.push(delay);
        } else {
            by_kind.1.push(delay);
        }
    }
    let wall_s = started.elapsed().as_secs_f64();
    let reads = berth.arm_reads() - reads_before;
    for v in [&mut delays, &mut by_kind.0, &mut by_kind.1] {
        v.sort_by(f64::total_cmp);
    }
    Ok(Detection {
        looks: looks.to_owned(),
        jobs: mix.jobs,
        p50_s: quantile(&delays, 0.5),
        p95_s: quantile(&delays, 0.95),
        max_s: delays.last().copied().unwrap_or(f64::NAN),
        repeated_p50_s: quantile(&by_kind.0, 0.5),
        new_p50_s: quantile(&by_kind.1, 0.5),
        reads_per_job: reads as f64 / mix.jobs as f64,
        wall_s,
        traces,
    })
}

/// Records the repeated specs' earlier runs in the store Berth uses.
async fn seed(mix: &Mix, db: &std::path::Path) -> anyhow::Result<()> {
    let store = SqliteStore::open(db, Arc::new(SystemClock))?;
    for seconds in &mix.repeated_s {
        let text = spec("seed", *seconds).to_string();
        let parsed = parse(text.as_bytes(), Format::Json, || unreachable!())
            .map_err(|e| anyhow::anyhow!("seed spec: {e:?}"))?;
        let d = start(parsed, None, String::new(), StartOptions::new(""), 0).next;
        let digest = berth::driver::group_digest(&d, 0);
        for _ in 0..mix.known_runs {
            store
                .record_run(&digest, (seconds * 1000.0) as Millis)
                .await?;
        }
    }
    Ok(())
}
