// A typed client generated from openapi.json (openapi-typescript + openapi-fetch).
// `tsc --strict --noEmit` over this file is the CI check that the document is
// usable from a strictly typed language; `npm run live` also runs it against a
// server (WAYPOST_URL, WAYPOST_API_KEY, WAYPOST_CHANNEL), as .ci/schemathesis.sh does.
import createClient from "openapi-fetch";
import type { components, paths } from "./waypost";

type Problem = components["schemas"]["Problem"];
type MessageStatus = components["schemas"]["MessageView"]["status"];
type SendMessage = components["schemas"]["SendMessage"];

/** A problem for people: its stable `type`, the detail, and where it applies. */
export function describe(p: Problem): string {
  const places = (p.errors ?? []).map((e) => `${e.pointer || "(body)"}: ${e.detail ?? ""}`);
  const field = p.field !== undefined ? ` (field ${p.field})` : "";
  return `${p.status} ${p.type}: ${p.detail}${field}${places.length ? ` at ${places.join("; ")}` : ""}`;
}

function done(status: MessageStatus): boolean {
  switch (status) {
    case "delivered":
    case "read":
    case "failed":
    case "received":
      return true;
    case "queued":
    case "sending":
    case "sent":
      return false;
  }
}

export async function tour(baseUrl: string, key: string, channelId: string): Promise<void> {
  const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${key}` } });
  const phone = `+4915${String(Date.now()).slice(-9)}`;

  const created = await client.POST("/v1/contacts", {
    body: { phone, name: "Typed Client", tags: ["ci"] },
  });
  if (created.error) throw new Error(describe(created.error));
  const contactId: string = created.data.id;

  const message: SendMessage = {
    channel_id: channelId,
    contact_id: contactId,
    type: "text",
    text: { body: "Hello from a generated client" },
  };
  const idempotencyKey = `ci-${Date.now()}`;
  const sent = await client.POST("/v1/messages", {
    params: { header: { "Idempotency-Key": idempotencyKey } },
    body: message,
  });
  // A new contact has not written in: outside the 24-hour window a text is refused.
  if (sent.error) {
    if (sent.error.type !== "https://waypost.dev/problems/outside-window") {
      throw new Error(describe(sent.error));
    }
    console.log(`send refused as expected: ${describe(sent.error)}`);
  } else {
    console.log(`queued ${sent.data.id}`);
  }

  const page = await client.GET("/v1/messages", {
    params: { query: { contact_id: contactId, direction: "outbound", limit: 50 } },
  });
  if (page.error) throw new Error(describe(page.error));
  for (const m of page.data.data) {
    console.log(`${m.id} ${m.direction} ${m.status}${done(m.status) ? " (final)" : ""}`);
  }

  // A refused request: the problem's type, detail and the places at fault.
  const refused = await client.POST("/v1/contacts", { body: { phone: "not a number" } });
  if (!refused.error) throw new Error("an invalid phone was accepted");
  const problem: Problem = refused.error;
  console.log(describe(problem));
  const pointers: string[] = (problem.errors ?? []).map((e) => e.pointer);
  console.log(`problem type ${problem.type}, ${pointers.length} pointer(s)`);
}

const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};
if (env.WAYPOST_URL && env.WAYPOST_API_KEY && env.WAYPOST_CHANNEL) {
  tour(env.WAYPOST_URL, env.WAYPOST_API_KEY, env.WAYPOST_CHANNEL).catch((e: unknown) => {
    console.error(e);
    (globalThis as { process?: { exitCode?: number } }).process!.exitCode = 1;
  });
}
