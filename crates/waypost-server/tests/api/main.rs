//! HTTP-level tests against the real application on 127.0.0.1:0, each on
//! SQLite and on PostgreSQL.

mod bearer;
mod helpers;
mod users;

mod audiences;
mod audit_chain;
mod backup;
mod bsuid;
mod campaigns;
mod contact_imports;
mod contacts_by_user_id;
mod conversations;
mod dashboard;
mod dashboard_webhooks;
mod dispatch;
mod edge;
mod encryption;
mod errors;
mod events_stream;
mod identity_events;
mod inbound;
mod inbound_content;
mod incidents;
mod isolation;
mod keys;
mod keys_api;
mod login;
mod media;
mod members;
mod messaging;
mod messaging_fixture;
mod mfa;
mod operations;
mod outbound_policy;
mod passkeys;
mod pricing;
mod privacy;
mod retention;
mod scheduled_backups;
mod sending;
mod setup;
mod shield;
mod templates;
mod tls;
mod webhooks;
