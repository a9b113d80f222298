//! Fuzz target `whatsapp_answer`: see `chatpulse::fuzzing::whatsapp_answer`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| chatpulse::fuzzing::whatsapp_answer(data));
