//! `aci-emulator`: the emulator as a standalone process.

fn main() {
    eprintln!("aci-emulator: not built yet");
    std::process::exit(2);
}
