//! Errors told in words: the innermost cause of an error chain, which is
//! what actually happened ("connection refused", "certificate expired"),
//! where the outer layers only say "error sending request".

/// The error chain, descending into `io::Error`s too (whose `source()` skips
/// the error they wrap, which is where hyper-rustls puts TLS failures).
pub fn chain<'e>(e: &'e (dyn std::error::Error + 'static)) -> Vec<&'e (dyn std::error::Error + 'static)> {
    let mut out: Vec<&(dyn std::error::Error + 'static)> = vec![e];
    while let Some(last) = out.last().copied() {
        let next = match last.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => last.source(),
        };
        match next {
            Some(n) if out.len() < 16 => out.push(n),
            _ => break,
        }
    }
    out
}

/// The innermost error message.
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    chain(e).last().map(|err| err.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_innermost_message_is_told() {
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let outer = std::io::Error::other(inner);
        assert_eq!(super::root_cause(&outer), "connection refused");
    }
}
