//! The statements a webhook's transaction runs, for both backends: keyword
//! consent, and statuses applied through the state machine or kept until their message
//! is known.

/// `apply_status`, `apply_unmatched`, `record_keyword_consent` and
/// `record_status`, inside the caller's transaction.
macro_rules! inbound_fns {
    ($conn:ty, $insert_status:path, $insert_events:path) => {
        /// Moves a message to `status` if the state machine allows it, with its
        /// history row and event; returns whether it moved. The `IN` list makes
        /// the check and the change one statement, so concurrent webhooks on
        /// PostgreSQL cannot both move it.
        #[allow(clippy::too_many_arguments)]
        pub(crate) async fn apply_status(
            conn: &mut $conn,
            m: &$crate::inbound::MessageRef,
            wamid: Option<&String>,
            status: &str,
            code: Option<i64>,
            title: Option<&str>,
            occurred_at: chrono::DateTime<chrono::Utc>,
            now: chrono::DateTime<chrono::Utc>,
            seal: $crate::dispatch::EventSealer<'_>,
        ) -> $crate::Result<bool> {
            let from = $crate::inbound::allowed_from(status);
            if from.is_empty() {
                return Ok(false);
            }
            let list = from.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "UPDATE messages SET status = $2, error_code = COALESCE($3, error_code),
                    error_title = COALESCE($4, error_title), updated_at = $5
                 WHERE id = $1 AND status IN ({list})"
            );
            let done = sqlx::query(&sql)
                .bind(&m.id)
                .bind(status)
                .bind(code)
                .bind(title)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            $insert_status(&mut *conn, &m.id, status, code, title, occurred_at, now).await?;
            let change = $crate::dispatch::StatusChange {
                message_id: m.id.clone(),
                workspace_id: m.workspace_id.clone(),
                channel_id: m.channel_id.clone(),
                contact_id: m.contact_id.clone(),
                status: status.to_owned(),
                wamid: wamid.cloned(),
                error_code: code,
                error_title: title.map(str::to_owned),
                occurred_at,
            };
            $insert_events(&mut *conn, &[seal(&change)]).await?;
            Ok(true)
        }

        /// Applies, oldest first, the statuses that arrived for `wamid` before it was known.
        pub(crate) async fn apply_unmatched(
            conn: &mut $conn,
            m: &$crate::inbound::MessageRef,
            wamid: &String,
            now: chrono::DateTime<chrono::Utc>,
            seal: $crate::dispatch::EventSealer<'_>,
        ) -> $crate::Result<usize> {
            let waiting: Vec<(i64, String, Option<i64>, Option<String>, chrono::DateTime<chrono::Utc>)> =
                sqlx::query_as(
                    "SELECT id, status, provider_code, provider_title, occurred_at FROM unmatched_statuses
                     WHERE channel_id = $1 AND provider_message_id = $2 ORDER BY id",
                )
                .bind(&m.channel_id)
                .bind(wamid)
                .fetch_all(&mut *conn)
                .await?;
            if waiting.is_empty() {
                return Ok(0);
            }
            // Oldest state first, so history reads in the order things happened.
            let mut sorted = waiting.clone();
            sorted.sort_by_key(|(_, s, ..)| s.parse().map_or(u8::MAX, waypost_core::MessageStatus::rank));
            let mut applied = 0;
            for (_, status, code, title, at) in &sorted {
                if apply_status(conn, m, Some(wamid), status, *code, title.as_deref(), *at, now, seal).await? {
                    applied += 1;
                }
            }
            sqlx::query("DELETE FROM unmatched_statuses WHERE channel_id = $1 AND provider_message_id = $2")
                .bind(&m.channel_id)
                .bind(wamid)
                .execute(&mut *conn)
                .await?;
            if sorted.iter().any(|w| w.1 == "failed") {
                sqlx::query("DELETE FROM outbox WHERE message_id = $1")
                    .bind(&m.id)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(applied)
        }

        /// An inbound keyword's consent change: the contact's state and the history row.
        pub(crate) async fn record_keyword_consent(
            conn: &mut $conn,
            k: &$crate::inbound::KeywordConsent,
        ) -> $crate::Result<()> {
            write_consent(&mut *conn, &k.consent, &k.state).await?;
            Ok(())
        }

        /// One status from a webhook: applied to its message when known (or to a
        /// send whose answer was lost, named by its callback data), kept for
        /// later otherwise; a reported price is counted and stored.
        #[allow(clippy::too_many_arguments)]
        pub(crate) async fn record_status(
            conn: &mut $conn,
            channel_id: &str,
            s: &$crate::inbound::IncomingStatus,
            now: chrono::DateTime<chrono::Utc>,
            seal: $crate::dispatch::EventSealer<'_>,
            usage: &mut $crate::usage::UsageBatch,
            out: &mut $crate::inbound::WebhookOutcome,
        ) -> $crate::Result<()> {
            let found: Option<$crate::inbound::MessageRef> = sqlx::query_as(
                "SELECT id, workspace_id, channel_id, contact_id FROM messages
                 WHERE channel_id = $1 AND provider_message_id = $2",
            )
            .bind(channel_id)
            .bind(&s.wamid)
            .fetch_optional(&mut *conn)
            .await?;
            let target = match found {
                Some(t) => t,
                None => {
                    // Our message id as callback data: a send whose answer we never
                    // saw (lost response, crash). The wamid becomes known here.
                    let reconciled: Option<$crate::inbound::MessageRef> = match &s.callback_data {
                        Some(id) => sqlx::query_as(
                            "UPDATE messages SET provider_message_id = $3, updated_at = $4
                             WHERE id = $1 AND channel_id = $2 AND direction = 'outbound'
                               AND provider_message_id IS NULL
                             RETURNING id, workspace_id, channel_id, contact_id",
                        )
                        .bind(id)
                        .bind(channel_id)
                        .bind(&s.wamid)
                        .bind(now)
                        .fetch_optional(&mut *conn)
                        .await?,
                        None => None,
                    };
                    match reconciled {
                        Some(t) => {
                            sqlx::query("DELETE FROM outbox WHERE message_id = $1")
                                .bind(&t.id)
                                .execute(&mut *conn)
                                .await?;
                            apply_status(&mut *conn, &t, Some(&s.wamid), "sent", None, None, s.occurred_at, now, seal)
                                .await?;
                            apply_unmatched(&mut *conn, &t, &s.wamid, now, seal).await?;
                            t
                        }
                        None => {
                            sqlx::query(
                                "INSERT INTO unmatched_statuses (channel_id, provider_message_id, callback_data,
                                    status, provider_code, provider_title, occurred_at, received_at)
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                            )
                            .bind(channel_id)
                            .bind(&s.wamid)
                            .bind(&s.callback_data)
                            .bind(&s.status)
                            .bind(s.error_code)
                            .bind(&s.error_title)
                            .bind(s.occurred_at)
                            .bind(now)
                            .execute(&mut *conn)
                            .await?;
                            out.statuses_unmatched += 1;
                            return Ok(());
                        }
                    }
                }
            };
            let moved = apply_status(
                &mut *conn,
                &target,
                Some(&s.wamid),
                &s.status,
                s.error_code,
                s.error_title.as_deref(),
                s.occurred_at,
                now,
                seal,
            )
            .await?;
            if let Some(p) = &s.pricing {
                count_price(&mut *conn, &target, p, usage).await?;
                // Whatever the status order, the latest report of the price wins.
                sqlx::query(
                    "UPDATE messages SET pricing_model = $2, pricing_type = $3,
                        pricing_category = $4, billable = $5
                     WHERE id = $1",
                )
                .bind(&target.id)
                .bind(&p.pricing_model)
                .bind(&p.pricing_type)
                .bind(&p.pricing_category)
                .bind(p.billable)
                .execute(&mut *conn)
                .await?;
            }
            if moved {
                out.statuses_applied += 1;
                if s.status == "failed" {
                    sqlx::query("DELETE FROM outbox WHERE message_id = $1")
                        .bind(&target.id)
                        .execute(&mut *conn)
                        .await?;
                }
            } else {
                out.statuses_ignored += 1;
            }
            Ok(())
        }
    };
}
pub(crate) use inbound_fns;
