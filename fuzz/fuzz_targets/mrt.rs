//! Fuzz target `mrt`: see `chatpulse::fuzzing::mrt`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| chatpulse::fuzzing::mrt(data));
