//! Fuzz target `dns_reply`: see `chatpulse::fuzzing::dns_reply`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| chatpulse::fuzzing::dns_reply(data));
