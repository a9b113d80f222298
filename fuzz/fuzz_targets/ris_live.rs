//! Fuzz target `ris_live`: see `chatpulse::fuzzing::ris_live`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| chatpulse::fuzzing::ris_live(data));
