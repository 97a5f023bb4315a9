//! `berth-bench`: runs Berth's benchmarks, prints a table and writes `target/bench/results.json`.
//! `bench/run.sh` builds what it needs and runs it; `--quick` is the under-two-minutes run.

use std::path::PathBuf;

use clap::Parser;

use bench::suite::{Plan, Suite};

#[derive(Parser, Debug)]
#[command(
    name = "berth-bench",
    about = "Berth's benchmarks (see bench/README.md)"
)]
struct Args {
    /// The short run (under two minutes): fewer jobs, one duroxide configuration, smaller sweep.
    #[arg(long)]
    quick: bool,
    /// Where the results go.
    #[arg(long, default_value = "target/bench/results.json")]
    out: PathBuf,
    /// The `duroxide-bench` binary (bench/duroxide); the comparison is skipped without it.
    #[arg(long, env = "BERTH_BENCH_DUROXIDE")]
    duroxide: Option<PathBuf>,
    /// Azurite's connection string (`UseDevelopmentStorage=true`); Azurite runs are skipped without it.
    #[arg(long, env = "BERTH_BENCH_AZURITE")]
    azurite: Option<String>,
    /// Only these items (comma separated: throughput, duroxide, floor, cost, footprint, live,
    /// sweep, fanout, looks). `looks` (several minutes of real run times) runs only when named here.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Jobs of the detection runs (`looks`); the stated measure is at 1,000.
    #[arg(long, default_value_t = 1_000)]
    looks_jobs: usize,
    /// ARM reads per second of the detection runs; the stated measure is at the default, 20.
    #[arg(long, default_value_t = 20.0)]
    looks_reads_per_second: f64,
    /// `handler` as the Function App package build makes it (bench/run.sh builds it with
    /// infra/hooks/package.sh); `packaged_binary_mb` is not measured without it.
    #[arg(long, env = "BERTH_BENCH_PACKAGED")]
    packaged: Option<PathBuf>,
    /// Measured runs per configuration (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut plan = if args.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    plan.repeats = args.repeats.max(1);
    plan.duroxide = args.duroxide;
    plan.azurite = args.azurite;
    plan.packaged = args.packaged;
    plan.only = args.only;
    plan.looks_jobs = args.looks_jobs.max(1);
    plan.looks_reads_per_second = args.looks_reads_per_second;
    let results = Suite::run(plan).await?;
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&results)? + "\n")?;
    println!("\nresults: {}", args.out.display());
    Ok(())
}
