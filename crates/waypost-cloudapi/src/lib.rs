//! The WhatsApp Business Cloud API as Waypost speaks it: serde wire types
//! for sends, responses, errors, webhooks and management bodies; an async
//! client for the Graph endpoints we use; the error classification every
//! caller branches on; send limits; and the `X-Hub-Signature-256` webhook
//! signature. The server and the sandbox both build on these types.
//!
//! Types round-trip exactly (parse then serialise gives the same JSON) except
//! for documented normalisations: unknown fields are dropped, empty arrays are
//! omitted, template component `type` is lower-cased on send bodies, and
//! `file_size` / `message_template_id` are written as numbers. Unknown enum
//! values, message types and webhook fields are kept, never rejected; inbound
//! data is parsed leniently (a malformed message or sub-object is kept raw or
//! read as absent) so one odd item never fails a whole webhook. No I/O
//! outside `client`.
#![forbid(unsafe_code)]

pub mod classify;
pub mod client;
pub mod error;
pub mod inbound;
pub mod interactive;
pub mod limits;
pub mod manage;
pub mod send;
pub mod signature;
pub mod status;
pub mod template;
pub mod webhook;
mod wire;

pub use classify::{ErrorClass, classify_code, classify_response};
pub use client::{AddressGuard, ClientConfig, ClientError, CloudApiClient, DownloadedMedia};
pub use error::{ErrorEnvelope, MetaError, WebhookError};
pub use inbound::{InboundContent, InboundMessage};
pub use limits::{LimitViolation, check_limits};
pub use send::{OutboundContent, OutboundMessage, SendResponse};
pub use signature::{SIGNATURE_HEADER, sign, verify_signature};
pub use status::{Status, StatusKind};
pub use webhook::{Change, WebhookPayload};
pub use wire::Unsupported;
