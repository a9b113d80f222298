//! Fuzz target `bgp_message`: see `chatpulse::fuzzing::bgp_message`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| chatpulse::fuzzing::bgp_message(data));
