//! chatpulse watches messaging platforms from the outside at three layers —
//! BGP visibility, DNS, HTTP — and says not only that a platform is down but
//! why. (Module map grows with the system.)

pub mod bgp;
pub mod config;
pub mod probe;
pub mod time;
