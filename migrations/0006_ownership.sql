-- Alias ownership: every alias row has an owner, the name of whoever may
-- change or deactivate it besides admins (unless its context's governance
-- sets shared_ownership). A new row is owned by its creator (created_by:
-- the token subject, or api_key:<id>:<name>); an admin moves it with
-- POST /api/admin/aliases/{context}/{alias}/owner (audited as
-- alias.transfer, a new version like any change).
ALTER TABLE aliases ADD COLUMN IF NOT EXISTS owner VARCHAR(255);

-- Backfill: the row's creator; for seed rows without one, the user of the
-- first alias.create audit row of that key; else 'system:unknown', which
-- only admins (or a shared context) may change until it is transferred.
UPDATE aliases a SET owner = COALESCE(
    a.created_by,
    (SELECT l."user" FROM audit_logs l
     WHERE l.action = 'alias.create' AND l.target = a.context || '/' || a.alias
     ORDER BY l.id LIMIT 1),
    'system:unknown')
WHERE a.owner IS NULL;

-- The ledger's one statement inserts rows without naming the owner: a new
-- row takes its creator, here, so every write path (create, import, apply)
-- gets the same rule. An upsert that updates keeps the owner (the ledger
-- never sets it); only a transfer changes it.
CREATE OR REPLACE FUNCTION aliases_default_owner() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.owner := COALESCE(NEW.owner, NEW.created_by, 'system:unknown');
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS aliases_default_owner ON aliases;
CREATE TRIGGER aliases_default_owner BEFORE INSERT ON aliases
    FOR EACH ROW EXECUTE FUNCTION aliases_default_owner();
ALTER TABLE aliases ALTER COLUMN owner SET NOT NULL;
CREATE INDEX IF NOT EXISTS aliases_owner ON aliases(owner) WHERE is_active;

-- The outbox record carries the owner too, so the history of an alias shows
-- who owned each version. Edges decode the record as
-- nexus_protocol::AliasRecord, which ignores the field.
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
        'updated_at_ms', (extract(epoch FROM a.updated_at) * 1000)::BIGINT,
        'owner', a.owner)
$$;
