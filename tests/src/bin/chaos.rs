//! `chaos DEPLOYMENTS KILLS [--seed N] [--concurrency N] [--deadline SECONDS] [--azurite-restarts N]
//! [--handlers N] [--dir DIR] [--keep] [--handler PATH] [--emulator PATH] [--azurite PATH]`
//!
//! Runs Berth's chaos harness (see `berth_tests::chaos`) and prints one line:
//! `chaos: N deployments, K kills, L lost, D duplicate creates, O orphans, M missing logs,
//! Q quota holds, E evictions, F fallbacks, T notified (R redelivered),
//! S scheduled runs (X missed)`. Exits 1 when L, D, O or M is not zero, a notification did not
//! arrive as it should or a scheduled time is unaccounted for, 2 when the run itself could not be
//! carried out.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use berth_tests::chaos::cluster::{Binaries, Cluster};
use berth_tests::chaos::{Options, procs, run};

const USAGE: &str = "usage: chaos DEPLOYMENTS KILLS [--seed N] [--concurrency N] [--deadline SECONDS] \
[--azurite-restarts N] [--handlers N] [--dir DIR] [--keep] [--handler PATH] [--emulator PATH] [--azurite PATH]";

fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the chaos executable")?;
    Ok(exe.with_file_name(name))
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut positional = Vec::new();
    let mut options = Options {
        deployments: 200,
        kills: 50,
        concurrency: 24,
        azurite_restarts: 2,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
        deadline: Duration::from_secs(30 * 60),
        handlers: 2,
        dir: None,
        keep: false,
        binaries: Binaries {
            handler: sibling("handler")?,
            emulator: sibling("aci-emulator")?,
            azurite: std::env::var_os("BERTH_TEST_AZURITE_BIN")
                .or_else(|| std::env::var_os("AZURITE_BIN"))
                .map(PathBuf::from)
                .unwrap_or_default(),
        },
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .cloned()
                .with_context(|| format!("{flag}: a value is required"))
        };
        let number = |flag: &str, text: String| {
            text.parse::<u64>()
                .with_context(|| format!("{flag}: '{text}' is not a whole number"))
        };
        match arg.as_str() {
            "--seed" => options.seed = number(arg, value(arg)?)?,
            "--concurrency" => options.concurrency = number(arg, value(arg)?)? as usize,
            "--deadline" => options.deadline = Duration::from_secs(number(arg, value(arg)?)?),
            "--azurite-restarts" => options.azurite_restarts = number(arg, value(arg)?)? as usize,
            "--handlers" => options.handlers = number(arg, value(arg)?)? as usize,
            "--dir" => options.dir = Some(PathBuf::from(value(arg)?)),
            "--keep" => options.keep = true,
            "--handler" => options.binaries.handler = PathBuf::from(value(arg)?),
            "--emulator" => options.binaries.emulator = PathBuf::from(value(arg)?),
            "--azurite" => options.binaries.azurite = PathBuf::from(value(arg)?),
            "-h" | "--help" => bail!("{USAGE}"),
            flag if flag.starts_with('-') => bail!("{flag}: unknown option\n{USAGE}"),
            _ => positional.push(number("DEPLOYMENTS and KILLS", arg.clone())? as usize),
        }
    }
    match positional[..] {
        [] => {}
        [deployments] => options.deployments = deployments,
        [deployments, kills] => (options.deployments, options.kills) = (deployments, kills),
        _ => bail!("at most two numbers: DEPLOYMENTS KILLS\n{USAGE}"),
    }
    if options.handlers == 0 || options.handlers > 26 {
        bail!("--handlers: 1 to 26");
    }
    if options.binaries.azurite.as_os_str().is_empty() {
        bail!(
            "--azurite: the azurite executable is needed (or BERTH_TEST_AZURITE_BIN / AZURITE_BIN)"
        );
    }
    Ok(options)
}

async fn main_async(options: Options) -> anyhow::Result<bool> {
    let (dir, fresh) = match &options.dir {
        Some(dir) => (dir.clone(), false),
        None => {
            let dir =
                std::env::temp_dir().join(format!("berth-chaos-{}", uuid::Uuid::new_v4().simple()));
            (dir, true)
        }
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    eprintln!(
        "chaos: {} deployments, {} kills, seed {}, concurrency {}, data and logs in {}",
        options.deployments,
        options.kills,
        options.seed,
        options.concurrency,
        dir.display()
    );
    let cluster = Arc::new(Cluster::start(options.binaries.clone(), &dir, options.handlers).await?);
    let outcome = run::run(&options, cluster.clone()).await;
    procs::kill_all();
    let outcome = outcome?;
    println!("{}", outcome.line);
    if fresh && outcome.passed && !options.keep {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("chaos: data and logs kept in {}", dir.display());
    }
    Ok(outcome.passed)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("chaos: {e:#}");
            return ExitCode::from(2);
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("chaos: starting the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let _kill_children = procs::KillOnDrop;
    let result = runtime.block_on(async move {
        procs::install_handlers();
        main_async(options).await
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("chaos: the run could not be carried out: {e:#}");
            ExitCode::from(2)
        }
    }
}
