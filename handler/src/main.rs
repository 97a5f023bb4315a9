//! `handler`: the Functions custom handler (when `FUNCTIONS_CUSTOMHANDLER_PORT` is set), `dev`
//! (the whole system on one machine, offline), `serve` (the standalone runtime) and `package`.
//! `dev` needs the `dev` feature (on by default), which links the ACI emulator; the Function App
//! package is built without it.

#[cfg(feature = "dev")]
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth::clock::SystemClock;
use berth::config::{Config, Defaults};
#[cfg(feature = "dev")]
use berth::crypto::SecretsKey;
use berth::runtime::Runtime;
use berth::server::Limits;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "handler",
    version,
    about = "Berth: durable container workloads on Azure Container Instances"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything on this machine: API, worker, SQLite and the ACI emulator (no Azure).
    // Parsed even without the `dev` feature, so that `handler dev` says how to get it.
    #[cfg_attr(not(feature = "dev"), command(hide = true))]
    Dev {
        #[arg(long, default_value_t = 7071)]
        port: u16,
        #[arg(long, default_value_t = 7080)]
        emulator_port: u16,
        #[arg(long, default_value = ".berth")]
        data_dir: PathBuf,
        /// Image map for the emulator (TOML: image -> command and env); default `<data-dir>/images.toml` if present.
        #[arg(long)]
        images: Option<PathBuf>,
        /// Serve the API without a key. Any local process (and, through it, any web page it
        /// relays) could then start containers: only for throw-away machines.
        #[arg(long)]
        no_auth: bool,
        /// Most connections served at once (more wait in the kernel's backlog).
        #[arg(long, default_value_t = Limits::default().max_connections)]
        max_connections: usize,
    },
    /// Run the standalone runtime with the configured backends (Azure Storage or SQLite, ARM).
    Serve {
        #[arg(long, default_value_t = 7071)]
        port: u16,
        #[arg(long, default_value = "0.0.0.0")]
        bind: String,
        /// Most connections served at once (more wait in the kernel's backlog).
        #[arg(long, default_value_t = Limits::default().max_connections)]
        max_connections: usize,
    },
    /// Run one cleanup sweep with the configured backends and print what it did (JSON).
    Sweep,
    /// Assemble a deployable function-app folder and zip.
    Package {
        /// Output folder.
        #[arg(long, default_value = "target/functionapp")]
        out: PathBuf,
        /// The handler binary to package (default: this one).
        #[arg(long)]
        binary: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    // The Functions host starts the handler without arguments: straight to it, without building
    // the command-line parser first (the time to the first readiness answer counts).
    if std::env::args_os().len() == 1
        && let Ok(port) = std::env::var("FUNCTIONS_CUSTOMHANDLER_PORT")
    {
        return finish(functions_mode(&port));
    }
    // Whatever Berth writes (keys, checkpoints, logs, the emulator's shares and secret volumes)
    // is its own: not readable by other local users.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let cli = Cli::parse();
    let result = match cli.command {
        // Without a command (and without arguments, which clap would have refused), Functions
        // mode was taken above when FUNCTIONS_CUSTOMHANDLER_PORT is set.
        None => {
            eprintln!(
                "handler: FUNCTIONS_CUSTOMHANDLER_PORT is not set; run `handler dev`, `handler serve` or `handler --help`"
            );
            return ExitCode::from(2);
        }
        Some(Command::Dev {
            port,
            emulator_port,
            data_dir,
            images,
            no_auth,
            max_connections,
        }) => {
            let limits = Limits {
                max_connections,
                ..Limits::default()
            };
            dev(port, emulator_port, &data_dir, images, no_auth, limits)
        }
        Some(Command::Serve {
            port,
            bind,
            max_connections,
        }) => {
            let limits = Limits {
                max_connections,
                ..Limits::default()
            };
            serve(port, &bind, limits)
        }
        Some(Command::Sweep) => sweep(),
        Some(Command::Package { out, binary }) => package(&out, binary),
    };
    finish(result)
}

fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("handler: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn init_logging() {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let json = std::env::var("BERTH_LOG_FORMAT").is_ok_and(|f| f == "json");
    let filter = berth::functions::logs::log_filter();
    let registry = tracing_subscriber::registry();
    let _ = if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stdout)
                    .with_filter(filter),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .try_init()
    };
}

fn functions_mode(port: &str) -> anyhow::Result<()> {
    let port = berth::functions::parse_port(port).context("FUNCTIONS_CUSTOMHANDLER_PORT")?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let _ = berth::functions::logs::init_json_stdout();
    tokio_runtime()?.block_on(async move {
        let init = async {
            let config = Config::from_env(Defaults::default()).map_err(|e| e.to_string())?;
            let runtime = Runtime::build(config, Arc::new(SystemClock))
                .await
                .map_err(|e| e.to_string())?;
            // Metrics go to Application Insights when it is configured; a bad setting fails
            // the start with its reason, as a bad Berth setting does.
            if let Some(exporter) =
                berth::metrics::insights::Exporter::from_env().map_err(|e| e.to_string())?
            {
                exporter.spawn();
            }
            Ok(runtime.functions_handlers())
        };
        berth::functions::serve(port, init)
            .await
            .context("serving the custom handler")
    })
}

#[cfg(feature = "dev")]
/// The secrets key of a dev data folder, generated on first use.
fn dev_secrets_key(data_dir: &Path) -> anyhow::Result<SecretsKey> {
    let path = data_dir.join("secrets.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return SecretsKey::from_base64(&text)
            .with_context(|| format!("{} is not a valid key", path.display()));
    }
    let key = SecretsKey::generate();
    write_private(&path, &key.to_base64())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(key)
}

#[cfg(feature = "dev")]
/// The API key of a dev data folder, generated on first use (as notebook servers do).
fn dev_api_key(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("api.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let key = text.trim().to_owned();
        anyhow::ensure!(!key.is_empty(), "{} is empty", path.display());
        return Ok(key);
    }
    let mut bytes = [0u8; 24];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&path, &key).with_context(|| format!("writing {}", path.display()))?;
    Ok(key)
}

#[cfg(feature = "dev")]
/// Creates the data folder readable by its owner only (it holds keys, checkpoints and logs).
fn create_private_dir(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("creating {}", path.display()))
}

#[cfg(feature = "dev")]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(feature = "dev")]
fn dev(
    port: u16,
    emulator_port: u16,
    data_dir: &Path,
    images: Option<PathBuf>,
    no_auth: bool,
    limits: Limits,
) -> anyhow::Result<()> {
    init_logging();
    create_private_dir(data_dir)?;
    let data_dir = data_dir.canonicalize().context("data folder")?;
    let secrets_key = dev_secrets_key(&data_dir)?;
    tokio_runtime()?.block_on(async move {
        let images = images.or_else(|| Some(data_dir.join("images.toml")).filter(|p| p.exists()));
        // A token for this run only: containers share the host's network and must not drive
        // the emulator; nor may they see this data folder (keys, checkpoints).
        let arm_token = emulator::Token::generate();
        let mut emulator_config = emulator::Config {
            data_dir: data_dir.join("aci"),
            token: Some(arm_token.clone()),
            hide: vec![data_dir.clone()],
            ..emulator::Config::default()
        };
        if let Some(images) = &images {
            emulator_config.images = emulator::images::ImageMap::load(images)
                .with_context(|| format!("image map {}", images.display()))?;
        }
        let emulator = emulator::start(
            emulator_config,
            SocketAddr::from(([127, 0, 0, 1], emulator_port)),
        )
        .await
        .with_context(|| format!("starting the ACI emulator on port {emulator_port}"))?;
        let defaults = Defaults {
            sqlite_path: Some(data_dir.join("berth.db")),
            arm_endpoint: Some(emulator.base_url()),
            arm_token: berth::arm::StaticToken::new(arm_token.expose()),
            subscription: Some("00000000-0000-0000-0000-000000000000".into()),
            resource_group: Some("berth-dev".into()),
            location: Some("local".into()),
            secrets_key: Some(secrets_key),
        };
        let mut config = Config::from_env(defaults)?;
        if config.public_url.is_none() {
            config.public_url = Some(format!("http://127.0.0.1:{port}"));
        }
        config.loopback_only = true;
        // Everything in `dev` is local: its notifications may go to plain http on loopback.
        config.notify.dev = true;
        if config.api_key.is_none() && !no_auth {
            config.api_key = Some(dev_api_key(&data_dir)?);
        }
        let key = config.api_key.clone();
        let sqlite = match &config.storage {
            berth::config::Storage::Sqlite { path } => path.display().to_string(),
            berth::config::Storage::Azure => "Azure Storage (AzureWebJobsStorage)".into(),
        };
        let runtime = Runtime::build(config, Arc::new(SystemClock)).await?;
        runtime.spawn_background(Duration::from_secs(60));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("binding 127.0.0.1:{port}"))?;
        println!("Berth dev is running.");
        println!("  API:          http://127.0.0.1:{port}/api/deployments");
        match &key {
            Some(key) => {
                println!("  Dashboard:    http://127.0.0.1:{port}/?code={key}");
                println!(
                    "  API key:      {key} (header x-functions-key or ?code=; kept in {})",
                    data_dir.join("api.key").display()
                );
                println!(
                    "  try:          curl -s -H 'x-functions-key: {key}' http://127.0.0.1:{port}/api/deployments"
                );
            }
            None => {
                println!("  Dashboard:    http://127.0.0.1:{port}/");
                println!("  API key:      none (--no-auth): any local process can drive Berth");
            }
        }
        println!("  ACI emulator: {}", emulator.base_url());
        println!(
            "  data:         {} (checkpoints {sqlite}, shares {}/aci/shares/)",
            data_dir.display(),
            data_dir.display()
        );
        berth::server::serve(listener, runtime.router(), limits, shutdown_signal())
            .await
            .context("serving the API")?;
        emulator.shutdown().await;
        Ok(())
    })
}

/// `dev` in a binary built without the feature (as the Function App package is): says how to get
/// one that has it.
#[cfg(not(feature = "dev"))]
fn dev(
    _port: u16,
    _emulator_port: u16,
    _data_dir: &Path,
    _images: Option<PathBuf>,
    _no_auth: bool,
    _limits: Limits,
) -> anyhow::Result<()> {
    anyhow::bail!(
        "`handler dev` is not in this binary: it was built without the `dev` feature, which links \
         the ACI emulator (the Function App package leaves it out). Build one with it: \
         `cargo build --release -p handler` (default features), or run `bin/handler dev`"
    )
}

fn serve(port: u16, bind: &str, limits: Limits) -> anyhow::Result<()> {
    init_logging();
    let config = Config::from_env(Defaults::default())?;
    if config.api_key.is_none() {
        anyhow::bail!(
            "BERTH_API_KEY: required by `handler serve` (callers send it as x-functions-key)"
        );
    }
    if config.public_url.is_none() {
        anyhow::bail!(
            "BERTH_PUBLIC_URL: required by `handler serve` (the base URL containers call back to; \
             never taken from a request's Host or X-Forwarded-* headers)"
        );
    }
    tokio_runtime()?.block_on(async move {
        let runtime = Runtime::build(config, Arc::new(SystemClock)).await?;
        runtime.spawn_background(Duration::from_secs(300));
        let listener = tokio::net::TcpListener::bind((bind, port))
            .await
            .with_context(|| format!("binding {bind}:{port}"))?;
        tracing::info!(port, "handler serve listening");
        berth::server::serve(listener, runtime.router(), limits, shutdown_signal())
            .await
            .context("serving the API")
    })
}

fn sweep() -> anyhow::Result<()> {
    init_logging();
    let config = Config::from_env(Defaults::default())?;
    tokio_runtime()?.block_on(async move {
        let runtime = Runtime::build(config, Arc::new(SystemClock)).await?;
        let report = runtime.sweep.run_once().await;
        println!("{}", serde_json::to_string(&report)?);
        if report.errors.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("the sweep met {} error(s)", report.errors.len())
        }
    })
}

async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

fn package(out: &Path, binary: Option<PathBuf>) -> anyhow::Result<()> {
    let binary = match binary {
        Some(b) => b,
        None => std::env::current_exe().context("finding this binary")?,
    };
    let zip = berth::functions::package::package(out, &binary)?;
    println!("function app: {} (zip: {})", out.display(), zip.display());
    Ok(())
}
