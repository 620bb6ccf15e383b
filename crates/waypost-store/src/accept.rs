//! The batch write of accepted outbound messages: one statement per table per
//! chunk of rows instead of several per message, the idempotency claims first
//! so a message whose key another request already holds writes nothing.

use std::collections::HashSet;

use crate::messaging::{AcceptOutcome, NewOutboundMessage};

/// Which messages of `batch` repeat an idempotency key an earlier message of
/// the same batch already carries (their claim could only fail).
pub(crate) fn repeated_keys(batch: &[NewOutboundMessage]) -> Vec<bool> {
    let mut seen = HashSet::new();
    batch
        .iter()
        .map(|m| {
            m.idempotency
                .as_ref()
                .is_some_and(|i| !seen.insert((m.message.workspace_id.as_str(), i.key.as_str())))
        })
        .collect()
}

/// The outcome of each message, given which idempotency record ids were claimed.
pub(crate) fn outcomes(
    batch: &[NewOutboundMessage],
    claimed: &HashSet<String>,
) -> Vec<AcceptOutcome> {
    batch
        .iter()
        .map(|m| match &m.idempotency {
            Some(i) if !claimed.contains(&i.id) => AcceptOutcome::DuplicateKey,
            _ => AcceptOutcome::Accepted,
        })
        .collect()
}

/// Defines `accept_batch(conn, batch)` for a backend, with `seal_audits`, `insert_audits`,
/// `insert_statuses`, `insert_events` and `write_usage` in scope. The accepted messages are
/// counted (by type, by the category they are sent in, active contacts) in the same transaction.
macro_rules! accept_batch_fn {
    ($conn:ty) => {
        pub(crate) async fn accept_batch(
            conn: &mut $conn,
            batch: &[$crate::messaging::NewOutboundMessage],
        ) -> $crate::Result<Vec<$crate::messaging::AcceptOutcome>> {
            use $crate::bulk::{chunks, values};
            // Claim the keys. An expired record is taken over; a live one is not.
            let repeated = $crate::accept::repeated_keys(batch);
            let claims: Vec<_> = batch
                .iter()
                .zip(&repeated)
                .filter(|(_, r)| !**r)
                .filter_map(|(m, _)| m.idempotency.as_ref().map(|i| (m, i)))
                .collect();
            // Rows claimed are counted, not returned (each returned row is a hop
            // to SQLite's worker thread); only when some key was taken are the
            // records ids looked up, to tell which.
            let mut claimed_count = 0;
            for range in chunks(claims.len()) {
                let sql = format!(
                    "INSERT INTO idempotency_records (id, workspace_id, idempotency_key, request_hash,
                        state, response_status, response_body, locked_until, created_at, expires_at)
                     VALUES {}
                     ON CONFLICT (workspace_id, idempotency_key) DO UPDATE SET
                        id = excluded.id, request_hash = excluded.request_hash, state = excluded.state,
                        response_status = excluded.response_status, response_body = excluded.response_body,
                        locked_until = excluded.locked_until, created_at = excluded.created_at,
                        expires_at = excluded.expires_at
                     WHERE idempotency_records.expires_at <= excluded.created_at",
                    values(10, range.len())
                );
                let mut q = sqlx::query(&sql);
                for (m, i) in &claims[range] {
                    q = q
                        .bind(&i.id)
                        .bind(&m.message.workspace_id)
                        .bind(&i.key)
                        .bind(&i.request_hash)
                        .bind("completed")
                        .bind(i.response_status as i64)
                        .bind(&i.response_body)
                        .bind(i.created_at)
                        .bind(i.created_at)
                        .bind(i.expires_at);
                }
                claimed_count += q.execute(&mut *conn).await?.rows_affected();
            }
            let mut claimed: std::collections::HashSet<String> = Default::default();
            if claimed_count as usize == claims.len() {
                claimed.extend(claims.iter().map(|(_, i)| i.id.clone()));
            } else {
                for chunk in claims.chunks(64) {
                    let ids: Vec<&String> = chunk.iter().map(|(_, i)| &i.id).collect();
                    let ids = $crate::padded(&ids);
                    let sql = format!(
                        "SELECT id FROM idempotency_records WHERE id IN ({})",
                        $crate::placeholders(1, ids.len())
                    );
                    let mut q = sqlx::query_scalar::<_, String>(&sql);
                    for id in ids {
                        q = q.bind(*id);
                    }
                    claimed.extend(q.fetch_all(&mut *conn).await?);
                }
            }
            let outcomes = $crate::accept::outcomes(batch, &claimed);
            let accepted: Vec<&$crate::messaging::NewOutboundMessage> = batch
                .iter()
                .zip(&outcomes)
                .filter(|(_, o)| **o == $crate::messaging::AcceptOutcome::Accepted)
                .map(|(m, _)| m)
                .collect();

            if accepted.is_empty() {
                return Ok(outcomes);
            }
            let rows: Vec<&$crate::messaging::MessageRow> = accepted.iter().map(|a| &a.message).collect();
            insert_messages(&mut *conn, &rows, false).await?;
            for range in chunks(accepted.len()) {
                let sql = format!(
                    "INSERT INTO message_statuses (message_id, status, provider_code, provider_title,
                        occurred_at, recorded_at)
                     VALUES {}",
                    values(6, range.len())
                );
                let mut q = sqlx::query(&sql);
                for a in &accepted[range] {
                    let m = &a.message;
                    q = q
                        .bind(&m.id)
                        .bind(&m.status)
                        .bind(None::<i64>)
                        .bind(None::<String>)
                        .bind(m.created_at)
                        .bind(m.created_at);
                }
                q.execute(&mut *conn).await?;
            }
            for range in chunks(accepted.len()) {
                let sql = format!(
                    "INSERT INTO outbox (message_id, workspace_id, channel_id, contact_id, payload, attempts,
                        next_attempt_at, deadline_at)
                     VALUES {}",
                    values(8, range.len())
                );
                let mut q = sqlx::query(&sql);
                for a in &accepted[range] {
                    let o = &a.outbox;
                    q = q
                        .bind(&o.message_id)
                        .bind(&o.workspace_id)
                        .bind(&o.channel_id)
                        .bind(&o.contact_id)
                        .bind(&o.payload)
                        .bind(o.attempts)
                        .bind(o.next_attempt_at)
                        .bind(o.deadline_at);
                }
                q.execute(&mut *conn).await?;
            }
            let touches: Vec<$crate::conversations::ConversationTouch> = accepted
                .iter()
                .map(|a| $crate::conversations::ConversationTouch {
                    message_id: a.message.id.clone(),
                    workspace_id: a.message.workspace_id.clone(),
                    channel_id: a.message.channel_id.clone(),
                    contact_id: a.message.contact_id.clone(),
                    at: a.message.created_at,
                    inbound_wamid: None,
                })
                .collect();
            touch_conversations(&mut *conn, &touches).await?;
            let audits =
                seal_audits(&mut *conn, accepted.iter().map(|a| a.audit.clone()).collect()).await?;
            insert_audits(&mut *conn, &audits).await?;
            let events: Vec<_> = accepted
                .iter()
                .flat_map(|a| a.events.iter().cloned())
                .collect();
            insert_events(&mut *conn, &events).await?;
            let mut usage = $crate::usage::UsageBatch::default();
            for a in &accepted {
                let m = &a.message;
                let at = m.created_at;
                usage.add(
                    &m.workspace_id,
                    &m.channel_id,
                    at,
                    waypost_core::usage::message_metric(&m.direction, &m.message_type),
                    1,
                );
                usage.add(
                    &m.workspace_id,
                    &m.channel_id,
                    at,
                    waypost_core::usage::accepted_metric(m.category.as_deref()),
                    1,
                );
                usage.active(&m.workspace_id, &m.channel_id, &m.contact_id, at);
            }
            write_usage(&mut *conn, &usage).await?;
            Ok(outcomes)
        }
    };
}
pub(crate) use accept_batch_fn;
