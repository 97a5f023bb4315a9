//! The Functions HTTP dispatch: which API route an invocation of each HTTP function reaches, for
//! any URL and route values (`payload::check_http_route`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    berth_fuzz::payload::check_http_route(data);
});
