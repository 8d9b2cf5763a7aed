-- What the design adds to the seed: zoned times, versions, the outbox, the
-- audit hash chain, API keys.

-- The seed's TIMESTAMP columns carry no zone, so a server in another zone
-- would read other instants. Same names, zoned type, values taken as UTC.
ALTER TABLE aliases
    ALTER COLUMN expires_at TYPE TIMESTAMPTZ USING expires_at AT TIME ZONE 'UTC',
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING created_at AT TIME ZONE 'UTC',
    ALTER COLUMN updated_at TYPE TIMESTAMPTZ USING updated_at AT TIME ZONE 'UTC',
    ALTER COLUMN created_at SET DEFAULT now(),
    ALTER COLUMN updated_at SET DEFAULT now(),
    ALTER COLUMN is_active SET NOT NULL,
    ALTER COLUMN created_at SET NOT NULL,
    ALTER COLUMN updated_at SET NOT NULL,
    -- The protocol allows canonicals up to 2048 bytes; governance sets the
    -- limit in force.
    ALTER COLUMN canonical TYPE VARCHAR(2048);
ALTER TABLE aliases
    ADD COLUMN IF NOT EXISTS version BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS updated_by VARCHAR(255);
-- At most one active alias per (context, alias): racing creators meet here.
CREATE UNIQUE INDEX IF NOT EXISTS aliases_active_key ON aliases(context, alias) WHERE is_active;
CREATE INDEX IF NOT EXISTS aliases_version ON aliases(version);
CREATE INDEX IF NOT EXISTS aliases_alias_active ON aliases(alias) WHERE is_active;

ALTER TABLE audit_logs
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING created_at AT TIME ZONE 'UTC',
    ALTER COLUMN archived_at TYPE TIMESTAMPTZ USING archived_at AT TIME ZONE 'UTC',
    ALTER COLUMN created_at SET DEFAULT now(),
    ALTER COLUMN created_at SET NOT NULL,
    ALTER COLUMN is_archived SET NOT NULL;
ALTER TABLE audit_logs
    ADD COLUMN IF NOT EXISTS target TEXT,
    ADD COLUMN IF NOT EXISTS before_state JSONB,
    ADD COLUMN IF NOT EXISTS after_state JSONB,
    ADD COLUMN IF NOT EXISTS request_id VARCHAR(128),
    -- row_hash = SHA-256(prev_hash || canonical content); see audit/chain.rs.
    ADD COLUMN IF NOT EXISTS prev_hash BYTEA,
    ADD COLUMN IF NOT EXISTS row_hash BYTEA;
CREATE INDEX IF NOT EXISTS audit_logs_user ON audit_logs("user");
CREATE INDEX IF NOT EXISTS audit_logs_action ON audit_logs(action);

ALTER TABLE conflicts
    ALTER COLUMN created_at TYPE TIMESTAMPTZ USING created_at AT TIME ZONE 'UTC',
    ALTER COLUMN resolved_at TYPE TIMESTAMPTZ USING resolved_at AT TIME ZONE 'UTC',
    ALTER COLUMN created_at SET DEFAULT now(),
    ALTER COLUMN created_at SET NOT NULL;
ALTER TABLE conflicts
    ADD COLUMN IF NOT EXISTS existing JSONB,
    ADD COLUMN IF NOT EXISTS incoming JSONB,
    ADD COLUMN IF NOT EXISTS existing_id INTEGER,
    ADD COLUMN IF NOT EXISTS resolved_by VARCHAR(255);
CREATE INDEX IF NOT EXISTS conflicts_open ON conflicts(id) WHERE resolution IS NULL;

-- The one registry row: its epoch (random at creation; a restored database
-- gets a new one by hand), the version of the last committed change, and
-- the head of the audit chain. Every write locks this row, so commit order
-- is version order and audit appends are serialised.
CREATE TABLE IF NOT EXISTS registry (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    epoch BIGINT NOT NULL,
    version BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    audit_head_id INTEGER,
    audit_head_hash BYTEA NOT NULL DEFAULT '\x0000000000000000000000000000000000000000000000000000000000000000',
    -- Hash of the last purged audit row: where verification starts.
    audit_anchor_hash BYTEA NOT NULL DEFAULT '\x0000000000000000000000000000000000000000000000000000000000000000'
);
INSERT INTO registry (id, epoch)
VALUES (1, 1 + floor(random() * 9007199254740990)::BIGINT)
ON CONFLICT (id) DO NOTHING;

-- The transactional outbox: one row per version, written in the same
-- transaction as the change. `record` is the whole alias as
-- nexus_protocol::AliasRecord serialises it (see alias_record below), so a
-- publisher builds deltas from these rows alone. A deactivation is an
-- upsert with is_active false; 'remove' is reserved for real deletions.
CREATE TABLE IF NOT EXISTS changes (
    version BIGINT PRIMARY KEY,
    epoch BIGINT NOT NULL,
    committed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    op VARCHAR(16) NOT NULL CHECK (op IN ('upsert', 'remove')),
    context VARCHAR(50) NOT NULL,
    alias VARCHAR(255) NOT NULL,
    record JSONB NOT NULL
);

-- One definition of the outbox record, used by every write path.
CREATE OR REPLACE FUNCTION alias_record(a aliases) RETURNS JSONB
LANGUAGE SQL IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'id', a.id,
        'context', a.context,
        'alias', a.alias,
        'canonical', a.canonical,
        'description', a.description,
        'expires_at_ms', (extract(epoch FROM a.expires_at) * 1000)::BIGINT,
        'is_active', a.is_active,
        'version', a.version,
        'updated_at_ms', (extract(epoch FROM a.updated_at) * 1000)::BIGINT)
$$;

-- API keys: only the SHA-256 digest of the key is kept.
CREATE TABLE IF NOT EXISTS api_keys (
    id SERIAL PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    role VARCHAR(16) NOT NULL CHECK (role IN ('admin', 'editor', 'viewer', 'resolver')),
    contexts TEXT[] NOT NULL,
    key_digest BYTEA NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_by VARCHAR(255) NOT NULL,
    revoked_at TIMESTAMPTZ
);
