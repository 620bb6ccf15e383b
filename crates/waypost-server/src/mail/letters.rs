//! The text of every mail Waypost sends, in English. Each letter is a list of
//! paragraphs rendered twice: plain text and minimal HTML (escaped, no remote
//! content). To localise, add a language here; nothing else builds mail text.

use super::Letter;

enum Part {
    Text(String),
    Link(String),
}

fn letter(to: &str, subject: &str, parts: Vec<Part>) -> Letter {
    let text = parts
        .iter()
        .map(|p| match p {
            Part::Text(t) | Part::Link(t) => t.as_str(),
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    let body: String = parts
        .iter()
        .map(|p| match p {
            Part::Text(t) => format!("<p>{}</p>\n", escape(t)),
            Part::Link(l) => format!("<p><a href=\"{0}\">{0}</a></p>\n", escape(l)),
        })
        .collect();
    Letter {
        to: to.to_owned(),
        subject: subject.to_owned(),
        text: format!("{text}\n\n-- \nWaypost\n"),
        html: format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body style=\"font-family: sans-serif; line-height: 1.5\">\n{body}<p style=\"color: #555\">Waypost</p>\n</body></html>\n",
            escape(subject)
        ),
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn t(s: impl Into<String>) -> Part {
    Part::Text(s.into())
}

const NOT_YOU: &str = "If this was not you, reset your password at once and review your sessions and two-step verification in Waypost's Security page.";

pub fn password_reset(to: &str, link: &str) -> Letter {
    letter(
        to,
        "Reset your Waypost password",
        vec![
            t(
                "Someone asked to reset the password of the Waypost account for this address. To choose a new password, open this link within 30 minutes:",
            ),
            Part::Link(link.to_owned()),
            t(
                "It works once. Choosing a new password signs out every session. If you did not ask for this, ignore this mail: your password stays as it is.",
            ),
        ],
    )
}

pub fn invitation(to: &str, workspace: &str, role: &str, link: &str) -> Letter {
    letter(
        to,
        &format!("You are invited to {workspace} on Waypost"),
        vec![
            t(format!(
                "You are invited to join the workspace \"{workspace}\" on Waypost as {role}. To accept, open this link within 7 days:"
            )),
            Part::Link(link.to_owned()),
            t("If you did not expect this invitation, ignore this mail."),
        ],
    )
}

pub fn new_sign_in(to: &str, when: &str, network: &str, device: &str) -> Letter {
    letter(
        to,
        "New sign-in to your Waypost account",
        vec![
            t(format!(
                "Your Waypost account was signed in to from a network or device it had not used before, at {when}."
            )),
            t(format!("Network: {network}\nDevice: {device}")),
            t(NOT_YOU),
        ],
    )
}

pub fn password_changed(to: &str, when: &str) -> Letter {
    letter(
        to,
        "Your Waypost password was changed",
        vec![
            t(format!(
                "The password of your Waypost account was changed at {when}. Other sessions were signed out."
            )),
            t(NOT_YOU),
        ],
    )
}

pub fn mfa_added(to: &str, method: &str) -> Letter {
    letter(
        to,
        "Two-step verification added to your Waypost account",
        vec![
            t(format!(
                "A second factor was added to your Waypost account: {method}."
            )),
            t(NOT_YOU),
        ],
    )
}

pub fn mfa_removed(to: &str, method: &str) -> Letter {
    letter(
        to,
        "Two-step verification removed from your Waypost account",
        vec![
            t(format!(
                "A second factor was removed from your Waypost account: {method}."
            )),
            t(NOT_YOU),
        ],
    )
}

pub fn api_key_created(to: &str, key_name: &str, prefix: &str) -> Letter {
    letter(
        to,
        "A Waypost API key was created",
        vec![
            t(format!(
                "You created the API key \"{key_name}\" ({prefix}…) in Waypost. Anyone holding it can act on the workspace within its scopes."
            )),
            t(
                "If this was not you, revoke the key in the Developers page and reset your password.",
            ),
        ],
    )
}

/// To a workspace owner: something in the workspace was suspended or reinstated.
pub fn suspension(to: &str, what: &str, id: &str, suspended: bool, reason: &str) -> Letter {
    let (subject, body) = if suspended {
        (
            "Something in your Waypost workspace was suspended",
            format!("The {what} {id} was suspended. Reason: {reason}"),
        )
    } else {
        (
            "A suspension in your Waypost workspace was lifted",
            format!("The {what} {id} works again."),
        )
    };
    letter(
        to,
        subject,
        vec![
            t(body),
            t(
                "Security alerts and suspensions are listed at GET /v1/security/alerts and GET /v1/security/suspensions.",
            ),
        ],
    )
}

pub fn recovery_code_used(to: &str, remaining: i64) -> Letter {
    letter(
        to,
        "A recovery code of your Waypost account was used",
        vec![
            t(format!(
                "A recovery code was used to sign in to your Waypost account. {remaining} unused codes remain; each works once."
            )),
            t(NOT_YOU),
        ],
    )
}

pub fn account_deletion_scheduled(to: &str, due: &str) -> Letter {
    letter(
        to,
        "Your Waypost account will be deleted",
        vec![
            t(format!(
                "You asked to delete your Waypost account. It will be deleted on {due}, with your memberships, sessions and second factors."
            )),
            t(
                "Changed your mind? Sign in before then and cancel the deletion (DELETE /v1/account/deletion). If you did not ask for this, sign in, cancel it and reset your password.",
            ),
        ],
    )
}

pub fn workspace_deletion_scheduled(to: &str, workspace: &str, due: &str) -> Letter {
    letter(
        to,
        "A Waypost workspace you own will be deleted",
        vec![
            t(format!(
                "An owner asked to delete the workspace {workspace}. On {due} its contacts, messages, channels, templates, campaigns, webhooks and audit log will be removed and its keys destroyed; this cannot be undone."
            )),
            t(
                "Download what you need to keep before then (GET /v1/workspace/export and GET /v1/audit-events/export). Any owner can cancel the deletion until then (DELETE /v1/workspace/deletion).",
            ),
        ],
    )
}

pub fn workspace_deletion_cancelled(to: &str, workspace: &str) -> Letter {
    letter(
        to,
        "The deletion of a Waypost workspace was cancelled",
        vec![t(format!(
            "The deletion of the workspace {workspace} was cancelled; nothing was removed."
        ))],
    )
}

pub fn verify_address(to: &str, link: &str) -> Letter {
    letter(
        to,
        "Confirm your address for Waypost",
        vec![
            t(
                "Confirm that this address belongs to your Waypost account by opening this link within 24 hours:",
            ),
            Part::Link(link.to_owned()),
            t("If you did not ask for this, ignore this mail."),
        ],
    )
}

pub fn change_requested(to: &str, new_address: &str) -> Letter {
    letter(
        to,
        "A change of your Waypost sign-in address was asked for",
        vec![
            t(format!(
                "Someone signed in to your Waypost account asked to change its address to {new_address}. Nothing changes until that address confirms it; if it does, this address gets a link to undo the change."
            )),
            t(NOT_YOU),
        ],
    )
}

pub fn email_changed(to: &str, new_address: &str, undo_link: &str) -> Letter {
    letter(
        to,
        "Your Waypost sign-in address was changed",
        vec![
            t(format!(
                "Your Waypost account now signs in with {new_address}. If you did not do this, undo it within 7 days with this link; it also signs out every session:"
            )),
            Part::Link(undo_link.to_owned()),
            t("Then reset your password from the sign-in page."),
        ],
    )
}

pub fn email_restored(to: &str) -> Letter {
    letter(
        to,
        "Your Waypost sign-in address was restored",
        vec![
            t(
                "The change of your Waypost account's address was undone: it signs in with this address again, and every session was signed out.",
            ),
            t(
                "Reset your password now from the sign-in page (\"Forgot password?\") and check your two-step verification.",
            ),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_and_text_keeps_the_link() {
        let l = invitation(
            "a@example.com",
            "<Acme & Co>",
            "agent",
            "https://w.example/x?a=1&b=2",
        );
        assert!(l.html.contains("&lt;Acme &amp; Co&gt;"));
        assert!(!l.html.contains("<Acme"));
        assert!(l.text.contains("https://w.example/x?a=1&b=2"));
        assert!(l.html.contains("href=\"https://w.example/x?a=1&amp;b=2\""));
    }
}
