//! Fuzz target `config`: see `chatpulse::fuzzing::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| chatpulse::fuzzing::config(data));
