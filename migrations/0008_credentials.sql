-- Credentials that reach every edge through the signed stream: revoked
-- tokens, revoked subjects, API keys with an expiry. Each change takes a
-- registry version and writes one outbox row with op 'credentials',
-- record = the change as nexus_protocol::CredentialChange serialises it,
-- context and alias empty (like op 'contexts'), so edges receive it in
-- version order with the alias changes around it.

-- An API key may expire; edges refuse it from then on without being told.
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS expires_at TIMESTAMPTZ;

-- A revoked token id, refused until `until`: the latest `exp` a token
-- minted here can carry (revocation time + TOKEN_MAX_TTL), after which the
-- row can refuse nothing and snapshots leave it out.
CREATE TABLE IF NOT EXISTS revoked_tokens (
    jti VARCHAR(128) PRIMARY KEY,
    until TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_by VARCHAR(255) NOT NULL
);
CREATE INDEX IF NOT EXISTS revoked_tokens_until ON revoked_tokens(until);

-- Every token of `sub` issued before `before` is refused until `until`.
-- Revoking again moves both forward, never back.
CREATE TABLE IF NOT EXISTS revoked_subjects (
    sub VARCHAR(255) PRIMARY KEY,
    before TIMESTAMPTZ NOT NULL,
    until TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_by VARCHAR(255) NOT NULL
);

-- Safe to run twice: the constraint is dropped (if there) and re-added.
ALTER TABLE changes DROP CONSTRAINT IF EXISTS changes_op_check;
ALTER TABLE changes ADD CONSTRAINT changes_op_check
    CHECK (op IN ('upsert', 'remove', 'contexts', 'credentials'));
