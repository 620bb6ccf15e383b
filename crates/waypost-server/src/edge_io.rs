//! The byte stream under hyper, with one job: hyper answers requests it cannot
//! parse (a malformed request line or path: 400, a request target too long:
//! 414, header fields too many or too large: 431) itself, with an empty body,
//! before any of our layers see them. [`EdgeIo`] recognises such an answer as
//! hyper writes it (an error status with `content-length: 0`; every answer of
//! ours to an error carries a problem document, so it cannot be one of ours)
//! and writes the same status with a problem document instead.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::{PROBLEM_JSON, Problem};

/// Statuses hyper answers by itself.
const HYPER_ANSWERS: [u16; 3] = [400, 414, 431];
/// The longest head hyper writes for such an answer (status line, date, length).
const MAX_BARE_HEAD: usize = 256;

pub struct EdgeIo<T> {
    inner: T,
    /// A rewritten answer and how much of it is written.
    pending: Option<(Vec<u8>, usize)>,
}

impl<T> EdgeIo<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            pending: None,
        }
    }
}

impl<T: AsyncWrite + Unpin> EdgeIo<T> {
    /// Writes what is left of a rewritten answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, done)) = &mut self.pending {
            if *done == bytes.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*done..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *done += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for EdgeIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for EdgeIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if let Some(answer) = problem_answer(buf) {
            this.pending = Some((answer, 0));
            // Written now or by the flush hyper does next.
            if let Poll::Ready(Err(e)) = this.poll_pending(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// The problem-document answer for a bare error head hyper wrote, if `buf` is one.
fn problem_answer(buf: &[u8]) -> Option<Vec<u8>> {
    if buf.len() > MAX_BARE_HEAD || !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let head = std::str::from_utf8(buf).ok()?;
    let rest = head.strip_prefix("HTTP/1.1 ")?;
    let status: u16 = rest.get(..3)?.parse().ok()?;
    if !HYPER_ANSWERS.contains(&status) {
        return None;
    }
    let mut lines: Vec<&str> = head[..head.len() - 4].split("\r\n").collect();
    let length = lines
        .iter()
        .position(|l| l.eq_ignore_ascii_case("content-length: 0"))?;
    lines.remove(length);
    let request_id = ulid::Ulid::new().to_string();
    let problem = Problem {
        request_id: Some(request_id.clone()),
        ..problem_for(StatusCode::from_u16(status).ok()?)
    };
    let body = serde_json::to_vec(&problem).ok()?;
    let mut out = lines.join("\r\n");
    out.push_str(&format!(
        "\r\ncontent-type: {PROBLEM_JSON}\r\ncontent-length: {}\r\nx-request-id: {request_id}\r\ncache-control: no-store\r\nx-content-type-options: nosniff\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut out = out.into_bytes();
    out.extend_from_slice(&body);
    Some(out)
}

fn problem_for(status: StatusCode) -> Problem {
    match status.as_u16() {
        400 => Problem::new(
            status,
            "malformed-request",
            "Malformed request",
            "The request line, path or a header is not valid HTTP/1.1.",
        ),
        _ => Problem::for_status(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_error_heads_become_problem_documents() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Mon, 07 Dec 2026 01:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(problem_answer(head).unwrap()).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 "), "{head}");
        assert!(head.contains("content-type: application/problem+json"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("date: Mon"));
        let p: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(p["status"], 431);
        assert!(
            p["type"]
                .as_str()
                .unwrap()
                .ends_with("/header-fields-too-large")
        );
    }

    #[test]
    fn other_writes_pass_untouched() {
        for bytes in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 120\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: 10\r\n\r\n",
            b"{\"x\": \"HTTP/1.1 400 \r\ncontent-length: 0\r\n\r\n",
            b"",
        ] {
            assert!(problem_answer(bytes).is_none());
        }
    }
}
