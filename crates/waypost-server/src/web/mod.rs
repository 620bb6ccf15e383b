//! The dashboard: server-rendered pages in the same binary, on the same
//! operations and permission checks as the JSON API (a page never does what
//! the member's role may not). Pages work without JavaScript; htmx and one
//! small script add live updates over the event stream. Strict CSP (no inline
//! script or style), CSRF tokens in every form, session cookies only.

mod assets;
mod backups;
mod campaign;
mod campaigns;
mod channels;
mod contacts;
mod developers;
mod email_link;
mod form;
mod imports;
mod inbox;
mod inbox_actions;
mod incidents;
mod invitations;
mod members;
mod operator;
mod page;
mod passkey_signin;
mod passkeys;
mod policies;
mod recovery;
mod security;
mod segments;
mod signin;
mod templates;
mod thread;
mod tools;
mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::state::AppState;

pub use page::PAGE_CSP;

/// The dashboard's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(signin::home))
        .route("/assets/{name}", get(assets::serve))
        .route("/login", get(signin::form).post(signin::submit))
        .route("/login/second-factor", post(signin::second_factor))
        .route("/login/passkey", post(passkey_signin::without_script))
        .route("/login/passkey/start", post(passkey_signin::start))
        .route("/login/passkey/finish", post(passkey_signin::finish))
        .route(
            "/login/passkey/second-factor/start",
            post(passkey_signin::second_factor_start),
        )
        .route(
            "/login/passkey/second-factor/finish",
            post(passkey_signin::second_factor_finish),
        )
        .route("/logout", post(signin::logout))
        .route("/forgot", get(recovery::forgot_form).post(recovery::forgot))
        .route("/reset", get(recovery::reset_form).post(recovery::reset))
        .route(
            "/account/email",
            get(email_link::form).post(email_link::confirm),
        )
        .route(
            "/invitations/accept",
            get(invitations::form).post(invitations::accept),
        )
        .route("/workspace", post(signin::switch_workspace))
        .route("/reauth", get(signin::reauth_form).post(signin::reauth))
        .route("/reauth/passkey/start", post(passkey_signin::step_up_start))
        .route(
            "/reauth/passkey/finish",
            post(passkey_signin::step_up_finish),
        )
        .route("/inbox", get(inbox::index))
        .route("/inbox/list", get(inbox::list_partial))
        .route("/inbox/media/{id}", get(inbox::media))
        .route("/inbox/{id}", get(inbox::show))
        .route("/inbox/{id}/thread", get(inbox::thread_partial))
        .route("/inbox/{id}/reply", post(inbox_actions::reply))
        .route("/inbox/{id}/change", post(inbox_actions::change))
        .route("/inbox/{id}/notes", post(inbox_actions::add_note))
        .route("/templates", get(templates::index).post(templates::create))
        .route("/templates/sync", post(templates::sync))
        .route("/campaigns", get(campaigns::index).post(campaigns::create))
        .route("/campaigns/new", get(campaigns::new_form))
        .route("/campaigns/{id}", get(campaign::show))
        .route("/campaigns/{id}/live", get(campaign::live))
        .route("/campaigns/{id}/start", post(campaign::start))
        .route("/campaigns/{id}/pause", post(campaign::pause))
        .route("/campaigns/{id}/resume", post(campaign::resume))
        .route("/campaigns/{id}/cancel", post(campaign::cancel))
        .route("/campaigns/{id}/outcomes.csv", get(campaign::export))
        .route("/shield", get(tools::shield).post(tools::scan))
        .route("/audit", get(tools::audit))
        .route(
            "/audiences/segments",
            get(segments::index).post(segments::create),
        )
        .route("/audiences/segments/{id}/delete", post(segments::delete))
        // The edge caps an import's body at the upload limit (see `http::middleware`).
        .route(
            "/audiences/imports",
            get(imports::new_form)
                .post(imports::upload)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/audiences/imports/{id}", get(imports::show))
        .route("/audiences/imports/{id}/results.csv", get(imports::results))
        .route("/operator", get(operator::home))
        .route(
            "/operator/login",
            get(operator::form).post(operator::submit),
        )
        .route("/operator/logout", post(operator::logout))
        .route(
            "/operator/incidents",
            get(incidents::index).post(incidents::create),
        )
        .route(
            "/operator/incidents/{id}",
            get(incidents::show).post(incidents::change),
        )
        .route("/operator/incidents/{id}/close", post(incidents::close))
        .route("/operator/backups", get(backups::index))
        .route("/contacts", get(contacts::index))
        .route("/contacts/{id}", get(contacts::show))
        .route("/contacts/{id}/export", post(contacts::export))
        .route("/contacts/{id}/restrict", post(contacts::restrict))
        .route("/contacts/{id}/unrestrict", post(contacts::unrestrict))
        .route("/contacts/{id}/erase", post(contacts::erase))
        .route(
            "/developers/keys",
            get(developers::index).post(developers::create),
        )
        .route("/channels", get(channels::index).post(channels::create))
        .route("/channels/{id}", get(channels::show).post(channels::update))
        .route("/channels/{id}/check", post(channels::check))
        .route("/channels/{id}/delete", post(channels::delete))
        .route("/developers/keys/{id}/revoke", post(developers::revoke))
        .route(
            "/developers/webhooks",
            get(webhooks::index).post(webhooks::create),
        )
        .route(
            "/developers/webhooks/{id}",
            get(webhooks::show).post(webhooks::update),
        )
        .route("/developers/webhooks/{id}/test", post(webhooks::send_test))
        .route("/developers/webhooks/{id}/replay", post(webhooks::replay))
        .route("/developers/webhooks/{id}/rotate", post(webhooks::rotate))
        .route("/developers/webhooks/{id}/delete", post(webhooks::delete))
        .route(
            "/developers/webhooks/{id}/resend/{event}",
            post(webhooks::resend),
        )
        .route("/security/sessions", get(security::sessions))
        .route("/security/sessions/{id}/revoke", post(security::revoke))
        .route(
            "/security/mfa",
            get(security::mfa).post(security::mfa_change),
        )
        .route(
            "/security/passkeys",
            get(passkeys::index).post(passkeys::without_script),
        )
        .route(
            "/security/passkeys/register/start",
            post(passkeys::register_start),
        )
        .route(
            "/security/passkeys/register/finish",
            post(passkeys::register_finish),
        )
        .route("/security/passkeys/{id}/rename", post(passkeys::rename))
        .route("/security/passkeys/{id}/remove", post(passkeys::remove))
        .route(
            "/security/workspace",
            get(policies::show).post(policies::update),
        )
        .route("/security/workspace/export", get(policies::export))
        .route("/security/workspace/deletion", post(policies::delete))
        .route(
            "/security/workspace/deletion/cancel",
            post(policies::cancel_deletion),
        )
        .route("/security/members", get(members::members))
        .route(
            "/security/members/{user_id}/role",
            post(members::change_role),
        )
        .route("/security/members/{user_id}/remove", post(members::remove))
        .route(
            "/security/members/{user_id}/elevation",
            post(members::elevate),
        )
        .route(
            "/security/members/{user_id}/elevation/end",
            post(members::end_elevation),
        )
        .route("/security/members/invitations", post(members::invite))
        .route(
            "/security/members/invitations/{id}/revoke",
            post(members::revoke_invitation),
        )
}
