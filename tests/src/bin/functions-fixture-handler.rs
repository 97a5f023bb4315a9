//! TEST FIXTURE, not Berth: a custom handler serving `berth::functions` with the trivial handlers
//! of `berth_tests::host::fixture`, so the Functions-host simulator can run a real process before
//! (and independently of) the engine. `FIXTURE_INIT_DELAY_MS` holds back initialisation, to show
//! that readiness does not wait for it.

use std::time::Duration;

use berth::functions::parse_port;

fn main() -> anyhow::Result<()> {
    // The scripted `panic` step is expected: one line, not a backtrace, in the test output.
    std::panic::set_hook(Box::new(|info| eprintln!("fixture handler: {info}")));
    let port = parse_port(&std::env::var(berth::functions::PORT_VARIABLE)?)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        berth::functions::logs::init_json_stdout()?;
        let delay = std::env::var("FIXTURE_INIT_DELAY_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        berth::functions::serve(port, async move {
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            Ok(berth_tests::host::fixture::handlers())
        })
        .await?;
        Ok(())
    })
}
