//! Taking a spec's secrets out and putting them back, for every JSON spec that parses.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    berth_fuzz::spec::check_secrets(body);
});
