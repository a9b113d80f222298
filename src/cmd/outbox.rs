//! `chatpulse outbox [--channel NAME] [--json]`: the alerts waiting for
//! delivery (id, channel, event, attempts, last error); `chatpulse outbox
//! drop ID`: gives one up, recorded as failed — for a message whose channel
//! was removed, or one its receiver will never take. Both read and write
//! the history store beside a running `chatpulse run`.

use std::io::Write;

use crate::config::Config;
use crate::store::outbox::{Waiting, give_up};
use crate::store::{Reader, StoreError};
use crate::time::{from_unix, rfc3339, unix};

/// What an outbox command could not do.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `drop` names a message that is not waiting.
    #[error("no message {0} waits in the outbox (`chatpulse outbox` lists those that do)")]
    NotWaiting(i64),
    /// Output failed.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

/// `chatpulse outbox`.
pub fn list(config: &Config, channel: Option<&str>, json: bool, out: &mut dyn Write) -> Result<(), OutboxError> {
    let waiting = Reader::open(&config.storage.path)?.waiting(channel)?;
    if json {
        writeln!(out, "{}", serde_json::json!({ "waiting": waiting.iter().map(view).collect::<Vec<_>>() }))?;
        return Ok(());
    }
    if waiting.is_empty() {
        writeln!(out, "nothing waits in the outbox{}", channel.map(|c| format!(" for {c}")).unwrap_or_default())?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = waiting
        .iter()
        .map(|w| {
            vec![
                w.id.to_string(),
                w.channel.clone(),
                w.event.clone(),
                w.attempts.to_string(),
                rfc3339(from_unix(w.created_at)),
                w.last_error.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    super::print_table(out, &["ID", "CHANNEL", "EVENT", "ATTEMPTS", "QUEUED", "LAST ERROR"], &rows)?;
    Ok(())
}

fn view(w: &Waiting) -> serde_json::Value {
    serde_json::json!({
        "id": w.id,
        "channel": w.channel,
        "event": w.event,
        "subject": w.subject,
        "attempts": w.attempts,
        "queued_at": rfc3339(from_unix(w.created_at)),
        "last_error": w.last_error,
    })
}

/// `chatpulse outbox drop ID`.
pub fn drop(config: &Config, id: i64, out: &mut dyn Write) -> Result<(), OutboxError> {
    let now = unix(std::time::SystemTime::now());
    let channel = give_up(&config.storage.path, id, now)?.ok_or(OutboxError::NotWaiting(id))?;
    writeln!(out, "message {id} ({channel}) given up; it is recorded as failed and will not be sent")?;
    Ok(())
}
