//! The Functions host's invocation payloads (`POST /{function}` bodies): envelope, queue message,
//! timer tick and HTTP request, on any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    berth_fuzz::payload::check_invocation(body);
});
