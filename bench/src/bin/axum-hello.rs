//! `axum-hello`: the smallest axum server, built like `handler` (release, same profile and axum
//! features), as the yardstick for `handler`'s start-to-readiness time and idle memory. Listens
//! on 127.0.0.1 at `FUNCTIONS_CUSTOMHANDLER_PORT`, as the Functions host tells a custom handler.

use axum::Router;
use axum::routing::get;

fn main() -> std::process::ExitCode {
    let Some(port) = std::env::var("FUNCTIONS_CUSTOMHANDLER_PORT")
        .ok()
        .and_then(|p| p.parse::<u16>().ok())
    else {
        eprintln!("axum-hello: FUNCTIONS_CUSTOMHANDLER_PORT must be a port number");
        return std::process::ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("axum-hello: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let app = Router::new().route("/", get(|| async { "hello" }));
        axum::serve(listener, app).await
    });
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("axum-hello: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
