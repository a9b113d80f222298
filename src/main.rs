//! The `chatpulse` binary (commands arrive with the monitor).

fn main() {}
