//! Fuzz target `mtproto_answer`: see `chatpulse::fuzzing::mtproto_answer`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| chatpulse::fuzzing::mtproto_answer(data));
