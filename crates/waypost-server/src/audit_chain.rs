//! Verifying audit chains and signing their heads.
//!
//! Verification walks every event of a chain in pages, recomputing hashes and
//! links, then checks each signed checkpoint: its signature under the server's
//! key, that the event it names still has the signed hash, and that no chain
//! ends before its latest checkpoint (a truncated tail).

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use waypost_core::audit::{GENESIS_HASH, chain_start_message, checkpoint_message, verify_chain};
use waypost_store::checkpoints::CheckpointRecord;
use waypost_store::retention::AuditChainStart;
use waypost_store::{Store, StoreError};

const PAGE: u32 = 1000;

/// What verification found for one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub chain: String,
    pub events: u64,
    pub checkpoints: u64,
    /// The first problem, naming the event or checkpoint.
    pub problem: Option<String>,
}

pub async fn verify_chain_in_store(
    store: &dyn Store,
    chain: &str,
    trusted: &VerifyingKey,
) -> Result<ChainReport, StoreError> {
    let checkpoints = store.checkpoints(chain).await?;
    let mut report = ChainReport {
        chain: chain.to_owned(),
        events: 0,
        checkpoints: 0,
        problem: None,
    };
    let mut hashes_at_checkpoints = std::collections::HashMap::new();
    // A purged chain is walked from its signed start; anything older is ignored.
    let start = store.audit_chain_start(chain).await?;
    let started_at = start.as_ref().map(|s| s.seq);
    let (mut next_seq, mut prev) = match start {
        None => (1i64, GENESIS_HASH),
        Some(start) => match check_start(&start, trusted) {
            Ok(from) => from,
            Err(problem) => {
                report.problem = Some(problem);
                return Ok(report);
            }
        },
    };
    let checkpoints: Vec<_> = checkpoints
        .into_iter()
        .filter(|c| c.seq >= next_seq)
        .collect();
    report.checkpoints = checkpoints.len() as u64;
    loop {
        let page = store.audit_chain(chain, next_seq - 1, PAGE).await?;
        if let Err(e) = verify_chain(&page, (next_seq, prev)) {
            report.problem = Some(e.to_string());
            return Ok(report);
        }
        for event in &page {
            if checkpoints.iter().any(|c| c.seq == event.seq) {
                hashes_at_checkpoints.insert(event.seq, event.hash);
            }
        }
        report.events += page.len() as u64;
        match page.last() {
            Some(last) => (next_seq, prev) = (last.seq + 1, last.hash),
            None => break,
        }
        if (page.len() as u32) < PAGE {
            break;
        }
    }
    if let Some(seq) = started_at.filter(|_| report.events == 0) {
        report.problem = Some(format!(
            "chain start at seq {seq}: the kept events are missing"
        ));
        return Ok(report);
    }
    for c in &checkpoints {
        if let Some(problem) = check_checkpoint(c, trusted, hashes_at_checkpoints.get(&c.seq)) {
            report.problem = Some(problem);
            return Ok(report);
        }
    }
    Ok(report)
}

/// The position and link a verified start record lets the walk begin from.
fn check_start(start: &AuditChainStart, trusted: &VerifyingKey) -> Result<(i64, [u8; 32]), String> {
    let at = format!(
        "chain start at seq {} (signed {})",
        start.seq,
        start.signed_at.to_rfc3339()
    );
    if start.public_key.as_slice() != trusted.as_bytes() {
        return Err(format!("{at}: signed by a key other than this server's"));
    }
    let (Ok(prev), Ok(signature)) = (
        <[u8; 32]>::try_from(start.prev_hash.as_slice()),
        Signature::from_slice(&start.signature),
    ) else {
        return Err(format!("{at}: malformed hash or signature"));
    };
    let message = chain_start_message(&start.chain, start.seq, &prev, start.signed_at);
    if trusted.verify(&message, &signature).is_err() {
        return Err(format!(
            "{at}: signature does not verify (the start record was altered)"
        ));
    }
    Ok((start.seq, prev))
}

/// Signs where a chain's kept part begins: event `seq`, linking back to `prev_hash`.
pub fn sign_chain_start(
    key: &SigningKey,
    chain: &str,
    seq: i64,
    prev_hash: &[u8],
    now: DateTime<Utc>,
) -> AuditChainStart {
    use chrono::SubsecRound;
    let signed_at = now.trunc_subsecs(6);
    let signature = key.sign(&chain_start_message(chain, seq, prev_hash, signed_at));
    AuditChainStart {
        chain: chain.to_owned(),
        seq,
        prev_hash: prev_hash.to_vec(),
        signed_at,
        public_key: key.verifying_key().as_bytes().to_vec(),
        signature: signature.to_bytes().to_vec(),
    }
}

fn check_checkpoint(
    c: &CheckpointRecord,
    trusted: &VerifyingKey,
    event_hash: Option<&[u8; 32]>,
) -> Option<String> {
    let at = format!(
        "checkpoint at seq {} (signed {})",
        c.seq,
        c.signed_at.to_rfc3339()
    );
    if c.public_key.as_slice() != trusted.as_bytes() {
        return Some(format!("{at}: signed by a key other than this server's"));
    }
    let (Ok(hash), Ok(signature)) = (
        <[u8; 32]>::try_from(c.hash.as_slice()),
        Signature::from_slice(&c.signature),
    ) else {
        return Some(format!("{at}: malformed hash or signature"));
    };
    if trusted
        .verify(
            &checkpoint_message(&c.chain, c.seq, &hash, c.signed_at),
            &signature,
        )
        .is_err()
    {
        return Some(format!(
            "{at}: signature does not verify (the checkpoint was altered)"
        ));
    }
    match event_hash {
        None => Some(format!(
            "{at}: the event it covers is missing (events were removed from the tail)"
        )),
        Some(h) if *h != hash => Some(format!(
            "{at}: event {} no longer has the signed hash",
            c.seq
        )),
        Some(_) => None,
    }
}

/// Signs the head of every chain that grew since its last checkpoint; returns how many were signed.
pub async fn checkpoint_chains(
    store: &dyn Store,
    key: &SigningKey,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    use chrono::SubsecRound;
    let now = now.trunc_subsecs(6);
    let mut signed = 0;
    for chain in store.audit_chains().await? {
        let Some((seq, hash)) = store.audit_chain_head(&chain).await? else {
            continue;
        };
        let latest = store.latest_checkpoint(&chain).await?;
        if latest.is_some_and(|c| c.seq >= seq) {
            continue;
        }
        let Ok(hash) = <[u8; 32]>::try_from(hash.as_slice()) else {
            return Err(StoreError::Corrupt(format!(
                "audit chain {chain}: head hash has the wrong length"
            )));
        };
        let signature = key.sign(&checkpoint_message(&chain, seq, &hash, now));
        let checkpoint = CheckpointRecord {
            id: format!("acp_{}", ulid::Ulid::new()),
            chain,
            seq,
            hash: hash.to_vec(),
            signed_at: now,
            public_key: key.verifying_key().as_bytes().to_vec(),
            signature: signature.to_bytes().to_vec(),
        };
        store.insert_checkpoint(&checkpoint).await?;
        signed += 1;
    }
    Ok(signed)
}
