//! `handler`: the Functions custom handler and the standalone runtime.

fn main() {
    eprintln!("handler: not built yet");
    std::process::exit(2);
}
