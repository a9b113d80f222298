//! Seeding from RIPEstat's looking glass: every RIS peer's current route for
//! a prefix, so visibility is known seconds after start instead of after the
//! next update (which for a stable prefix may be days away).
//!
//! `GET {seed_url}/data/looking-glass/data.json?resource=PREFIX` answers
//! `data.rrcs[] = {rrc, peers[] = {peer, asn_origin, prefix, ...}}`; numbers
//! may arrive as strings.

use std::time::Duration;

use serde::Deserialize;

use super::event::{FeedEvent, PeerKey};
use crate::prefix::Prefix;

#[derive(Deserialize)]
struct Answer {
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    #[serde(default)]
    rrcs: Vec<Rrc>,
}

#[derive(Deserialize)]
struct Rrc {
    rrc: String,
    #[serde(default)]
    peers: Vec<Route>,
}

#[derive(Deserialize)]
struct Route {
    peer: String,
    #[serde(default)]
    asn_origin: serde_json::Value,
    prefix: String,
}

/// Why seeding failed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The request failed.
    #[error("the RIPEstat looking glass could not be asked about {prefix}: {why}")]
    Http {
        /// The prefix asked about.
        prefix: Prefix,
        /// Why, in the innermost error's words.
        why: String,
    },
    /// The answer was larger than [`MAX_ANSWER`].
    #[error("the RIPEstat looking glass answer for {prefix} is larger than {} MiB; not read", MAX_ANSWER >> 20)]
    TooLarge {
        /// The prefix asked about.
        prefix: Prefix,
    },
    /// The answer was not the looking glass's JSON.
    #[error("looking glass answer for {prefix} is not understood: {why}")]
    Format {
        /// The prefix asked about.
        prefix: Prefix,
        /// Why.
        why: String,
    },
}

/// The largest looking-glass answer read (a /23 seen by every RIS peer is
/// about 1 MiB); a body that never ends is cut here.
pub const MAX_ANSWER: usize = 32 << 20;

/// Parses an AS number that may be a JSON number or a string.
pub fn asn(value: &serde_json::Value) -> Option<u32> {
    match value {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Parses a prefix, clearing host bits rather than refusing them (feeds are
/// not configs: a sloppy prefix is still a route).
pub fn lenient_prefix(text: &str) -> Option<Prefix> {
    let (addr, len) = text.split_once('/')?;
    Prefix::new(addr.trim().parse().ok()?, len.trim().parse().ok()?)
}

/// Every RIS peer's route for `prefix`, as announcements.
pub async fn looking_glass(
    client: &reqwest::Client,
    seed_url: &str,
    prefix: Prefix,
) -> Result<Vec<FeedEvent>, SeedError> {
    let url = format!("{seed_url}/data/looking-glass/data.json?resource={prefix}");
    let failed = |e: reqwest::Error| SeedError::Http { prefix, why: crate::error_text::root_cause(&e) };
    let mut response = client
        .get(url)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(failed)?;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(SeedError::TooLarge { prefix });
        }
        body.extend_from_slice(&chunk);
    }
    let answer: Answer = serde_json::from_slice(&body).map_err(|e| SeedError::Format { prefix, why: e.to_string() })?;
    let mut events = Vec::new();
    for rrc in answer.data.rrcs {
        let collector = rrc.rrc.to_ascii_lowercase();
        for route in rrc.peers {
            let (Ok(ip), Some(routed)) = (route.peer.trim().parse(), lenient_prefix(&route.prefix)) else {
                continue;
            };
            events.push(FeedEvent::Announce {
                peer: PeerKey { collector: collector.clone(), ip },
                prefix: routed,
                path_id: 0,
                origin: asn(&route.asn_origin),
            });
        }
    }
    Ok(events)
}
