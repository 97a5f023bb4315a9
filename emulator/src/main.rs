//! `aci-emulator`: the emulator as a standalone process. Prints its ARM endpoint (with the bearer
//! token it generated, when none was given), serves until Ctrl-C or SIGTERM, then kills its
//! containers and writes its records.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use emulator::{Config, FaultKind, Faults, ImageMap, NthFault, Token};

/// Azure Container Instances (ARM `Microsoft.ContainerInstance/containerGroups`) on local
/// processes.
#[derive(Debug, Parser)]
#[command(name = "aci-emulator", version)]
struct Args {
    /// The port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 7080)]
    port: u16,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    address: IpAddr,
    /// Where records, logs and shares (`shares/<account>/<share>/`) live.
    #[arg(long, default_value = ".aci-emulator")]
    data_dir: PathBuf,
    /// The image map (TOML): image → command and env, for containers without a command.
    #[arg(long)]
    images: Option<PathBuf>,
    /// Complete every group at once, without processes or disk writes (for benchmarks).
    #[arg(long)]
    instant: bool,
    /// Enforce ACI's default quotas (100 creates per 5 minutes, 300 per hour, 100 cores and 100
    /// groups per region).
    #[arg(long)]
    enforce_quotas: bool,
    /// Standard cores per region and subscription: answered by `locations/{loc}/usages`, and
    /// enforced with --enforce-quotas.
    #[arg(long, default_value_t = 100.0)]
    cores_per_region: f64,
    /// Container groups per region and subscription, like --cores-per-region.
    #[arg(long, default_value_t = 100)]
    groups_per_region: usize,
    /// Fraction of ARM requests answered 429 with Retry-After.
    #[arg(long, default_value_t = 0.0)]
    throttle_rate: f64,
    /// Retry-After seconds of injected 429s.
    #[arg(long, default_value_t = 1)]
    retry_after: u64,
    /// Fraction of ARM requests answered 500.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Fraction of ARM requests answered slowly.
    #[arg(long, default_value_t = 0.0)]
    slow_rate: f64,
    /// Delay of slow answers, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    slow_ms: u64,
    /// Fraction of ARM requests whose connection is closed without an answer.
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
    /// Fail the Nth eligible call: `N:throttle`, `N:error`, `N:slow` or `N:drop` (repeatable).
    #[arg(long = "fail-nth", value_name = "N:KIND")]
    fail_nth: Vec<String>,
    /// Only these HTTP methods are subject to faults (comma separated; all when absent).
    #[arg(long, value_delimiter = ',')]
    fault_methods: Vec<String>,
    /// Seed of the fault draws.
    #[arg(long)]
    fault_seed: Option<u64>,
    /// POST start within this many seconds after a stop answers 409 ContainerGroupTransitioning.
    #[arg(long, default_value_t = 0)]
    transitioning_seconds: u64,
    /// Locations out of capacity: creates there answer 409 ServiceUnavailable (comma separated).
    #[arg(long, value_delimiter = ',')]
    out_of_capacity: Vec<String>,
    /// Fraction of creates refused 409 ServiceUnavailable, in --capacity-locations.
    #[arg(long, default_value_t = 0.0)]
    capacity_rate: f64,
    /// Where --capacity-rate applies (comma separated; every location when absent).
    #[arg(long, value_delimiter = ',')]
    capacity_locations: Vec<String>,
    /// Locations without the SKU: creates there answer 409 SkuNotAvailable (comma separated).
    #[arg(long, value_delimiter = ',')]
    sku_not_available: Vec<String>,
    /// Fraction of Spot groups evicted once, drawn at their create.
    #[arg(long, default_value_t = 0.0)]
    spot_eviction_rate: f64,
    /// Evict the Nth Spot group created, from 1 (repeatable).
    #[arg(long = "spot-evict-nth", value_name = "N")]
    spot_evict_nth: Vec<u64>,
    /// Milliseconds after its create an evicted Spot group is evicted (once it runs).
    #[arg(long, default_value_t = 1000)]
    spot_evict_after_ms: u64,
    /// Milliseconds a new group stays Pending.
    #[arg(long, default_value_t = 0)]
    pending_ms: u64,
    /// Milliseconds a group stays Creating before its containers start.
    #[arg(long, default_value_t = 0)]
    creating_ms: u64,
    /// First crash-loop back-off, in milliseconds (doubles up to --restart-backoff-max-ms).
    #[arg(long, default_value_t = 1000)]
    restart_backoff_ms: u64,
    /// Longest crash-loop back-off, in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    restart_backoff_max_ms: u64,
    /// Milliseconds a deleted group shows Deleting (DELETE then answers 202).
    #[arg(long, default_value_t = 0)]
    deleting_ms: u64,
    /// Groups per list page before `nextLink`.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..))]
    page_size: u16,
    /// Do not apply CPU and memory limits through cgroups.
    #[arg(long)]
    no_cgroups: bool,
    /// With --instant, a container whose command is `sleep N` runs N seconds (no process).
    #[arg(long, requires = "instant")]
    simulate_sleeps: bool,
    /// The bearer token every request must carry (`Authorization: Bearer <token>`). Without it a
    /// random one is generated and printed on the start line.
    #[arg(long, env = "ACI_EMULATOR_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Serve without a token: anything that reaches the port, containers included, can create
    /// and delete groups.
    #[arg(long, conflicts_with = "token")]
    no_auth: bool,
}

/// The token to require, and how the start line mentions it.
fn token(args: &Args) -> anyhow::Result<(Option<Token>, String)> {
    if args.no_auth {
        return Ok((None, "no authentication (--no-auth)".into()));
    }
    match &args.token {
        Some(text) => {
            let token = Token::new(text.as_str()).context(
                "--token (or ACI_EMULATOR_TOKEN) must be non-empty and printable on one line",
            )?;
            Ok((Some(token), "bearer token as given".into()))
        }
        None => {
            let token = Token::generate();
            let shown = format!("bearer token {}", token.expose());
            Ok((Some(token), shown))
        }
    }
}

fn faults(args: &Args) -> anyhow::Result<Faults> {
    let mut nth = Vec::new();
    for text in &args.fail_nth {
        let (call, kind) = text
            .split_once(':')
            .with_context(|| format!("--fail-nth '{text}' must look like 3:error"))?;
        let call: u64 = call
            .parse()
            .with_context(|| format!("--fail-nth '{text}': '{call}' is not a number"))?;
        let Some(fault) = FaultKind::parse(kind) else {
            bail!("--fail-nth '{text}': '{kind}' is not throttle, error, slow or drop");
        };
        nth.push(NthFault { call, fault });
    }
    Ok(Faults {
        throttle_rate: args.throttle_rate,
        retry_after_seconds: args.retry_after,
        error_rate: args.error_rate,
        slow_rate: args.slow_rate,
        slow_ms: args.slow_ms,
        drop_rate: args.drop_rate,
        nth,
        methods: args.fault_methods.clone(),
        seed: args.fault_seed,
        transitioning_seconds: args.transitioning_seconds,
        out_of_capacity: args.out_of_capacity.clone(),
        capacity_rate: args.capacity_rate,
        capacity_locations: args.capacity_locations.clone(),
        sku_not_available: args.sku_not_available.clone(),
        spot_eviction_rate: args.spot_eviction_rate,
        spot_evict_nth: args.spot_evict_nth.clone(),
        spot_evict_after_ms: args.spot_evict_after_ms,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let images = match &args.images {
        Some(path) => ImageMap::load(path)?,
        None => ImageMap::default(),
    };
    let faults = faults(&args)?;
    let (token, token_note) = token(&args)?;
    faults
        .validate()
        .map_err(|message| anyhow::anyhow!("invalid fault flags: {message}"))?;
    let mut config = Config {
        data_dir: args.data_dir.clone(),
        images,
        instant: args.instant,
        faults,
        enforce_quotas: args.enforce_quotas,
        cgroups: !args.no_cgroups,
        simulate_sleeps: args.simulate_sleeps,
        page_size: usize::from(args.page_size),
        token,
        ..Config::default()
    };
    if !(args.cores_per_region.is_finite() && args.cores_per_region >= 0.0) {
        bail!("--cores-per-region must be a number of cores, 0 or more");
    }
    config.quotas.cores_per_region = args.cores_per_region;
    config.quotas.groups_per_region = args.groups_per_region;
    config.timings.pending = Duration::from_millis(args.pending_ms);
    config.timings.creating = Duration::from_millis(args.creating_ms);
    config.timings.restart_backoff = Duration::from_millis(args.restart_backoff_ms);
    config.timings.restart_backoff_max = Duration::from_millis(args.restart_backoff_max_ms);
    config.timings.deleting = Duration::from_millis(args.deleting_ms);

    let running = emulator::start(config, SocketAddr::new(args.address, args.port))
        .await
        .context("cannot start the ACI emulator")?;
    let url = format!("http://{}", running.addr());
    println!("aci-emulator: ARM endpoint {url} ({token_note})");
    if args.instant {
        println!("aci-emulator: instant mode (no processes, nothing written to disk)");
    } else {
        println!(
            "aci-emulator: data in {}, Azure Files shares in {}",
            args.data_dir.display(),
            args.data_dir.join("shares").display()
        );
    }

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    println!("aci-emulator: stopping");
    running.shutdown().await;
    Ok(())
}
