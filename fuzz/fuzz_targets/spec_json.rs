//! The spec parser on any bytes as a JSON body (`POST /api/deployments`).
#![no_main]

use berth::spec::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    berth_fuzz::spec::check_parse(body, Format::Json);
});
